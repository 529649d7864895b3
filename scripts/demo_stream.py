#!/usr/bin/env python3
"""Build the bundled demo stream: ingest/samples/demo_stream.jsonl.gz and its manifest demo_stream.json.

Deterministic (fixed seed, gzip mtime 0): re-running it gives the same bytes. Texts come ONLY from the MIT-licensed
Twitter financial-news topic and sentiment training sets (../shared/data); the injected surge adds short negative
headlines written for this project. What it makes:
- ~4,000 documents over four days (Fri-Mon), more by day than by night and on weekdays than at the weekend;
- news (headline-like tweets, via "newswire" or news accounts on "twitter") and posts (cashtag chatter, via
  "stocktwits" or "twitter"), with stable ids and urls under the reserved .example domain;
- one surge: on Monday afternoon (UTC), ~50 clearly negative items about Wells Fargo ($WFC) results (profit,
  estimates, guidance, loan-loss provisions: the dataset's "Financials" topic) within 90 minutes, several times the
  normal rate of negative items;
- a few exact redeliveries (same id and payload again, as at-least-once delivery does) and a handful of malformed
  lines for the dead-letter path. The manifest lists the surge window, company, topic and the malformed lines.

Usage: python scripts/demo_stream.py [--data ../shared/data] [--out ingest/samples]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEED = 20261109
START = datetime(2026, 11, 6, tzinfo=UTC)  # a Friday
DAYS = 4
N_TOPIC, N_SENT = 2300, 1650
SURGE_START = datetime(2026, 11, 9, 14, 20, tzinfo=UTC)  # the Monday
SURGE_MINUTES = 90
REDELIVERED = 25
TOPIC_NAMES = (  # the dataset's label ids, for meta only (the model's names live in inference.labels)
    "Analyst Update", "Fed | Central Banks", "Company | Product News", "Treasuries | Corporate Debt", "Dividend",
    "Earnings", "Energy | Oil", "Financials", "Currencies", "General News | Opinion", "Gold | Metals | Materials",
    "IPO", "Legal | Regulation", "M&A | Investments", "Macro", "Markets", "Politics", "Personnel Change",
    "Stock Commentary", "Stock Movement",
)
SENTIMENT_NAMES = {"0": "negative", "1": "positive", "2": "neutral"}  # the sentiment set's ids: 0 bearish, 1 bullish
COMPANY = re.compile(r"wells fargo|\$WFC\b", re.I)
NEGATIVE = re.compile(r"\b(miss|misses|slumps|falls|fall|drop|losses|class action|weaker|peril|fell short)\b", re.I)
EVENTS = (  # results news, the dataset's "Financials" topic: profit, estimates, guidance, provisions
    "profit slumps {p}% on higher loan loss reserves",
    "misses analysts' earnings estimates as bad-loan provisions jump",
    "issues a profit warning as credit losses mount",
    "slashes full-year net interest income guidance",
    "quarterly profit falls {p}% as the bank sets aside more for soured loans",
    "revenue falls short of estimates, lowers full-year guidance",
    "profit plunges as mortgage banking revenue collapses",
    "posts weaker-than-expected results as charge-offs double",
    "cuts its earnings outlook after loan losses widen",
    "reports a surprise quarterly loss on commercial property write-downs",
)
NEWS_FORMATS = ("Wells Fargo {e} $WFC", "$WFC - Wells Fargo {e}", "BREAKING: Wells Fargo {e} $WFC",
                "Wells Fargo ($WFC) {e}; shares down {q}%")
POST_FORMATS = ("$WFC getting crushed. Wells Fargo {e}, dumping my shares", "Wells Fargo {e}?! $WFC holders in pain")
EPS_FORMAT = "$WFC - Wells Fargo GAAP EPS of ${eps:.2f} misses by ${miss:.2f}, revenue of ${rev:.2f}B misses by ${rmiss:.2f}B"
SURGE_NEWS, SURGE_POSTS, SURGE_EPS = 24, 8, 6
NEWS_ACCOUNTS = ("MarketDeskWire", "StreetBriefNews", "EconDailyFeed", "TickerTapeNews", "BankWatchDesk")
MALFORMED = (  # (how to break a valid document, the reason ingest.records reports)
    ("truncated_json", "invalid_json"),
    ("drop_text", "missing_field:text"),
    ("naive_timestamp", "bad_timestamp"),
    ("garbage_timestamp", "bad_timestamp"),
    ("not_an_object", "not_an_object"),
    ("bad_kind", "invalid_field:kind"),
    ("empty_id", "invalid_field:id"),
    ("future_schema", "unsupported_schema_version"),
)


def _norm(text: str) -> str:
    """Key for near-duplicates: the datasets repeat headlines with different t.co links."""
    return re.sub(r"\W+", " ", re.sub(r"https?://\S+", " ", text)).strip().lower()


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _hour_weight(t: datetime) -> float:
    """Relative volume: US market hours (UTC 13-21) busiest, nights quiet, weekends about a third."""
    h = t.hour
    w = 0.12 if h < 6 else 0.45 if h < 12 else 1.0 if h < 22 else 0.35
    return w * (0.35 if t.weekday() >= 5 else 1.0)


def _timestamps(rng: random.Random, n: int) -> list[datetime]:
    hours = [START + timedelta(hours=i) for i in range(DAYS * 24)]
    picks = rng.choices(hours, weights=[_hour_weight(h) for h in hours], k=n)
    return sorted(h + timedelta(seconds=rng.randrange(3600), milliseconds=rng.randrange(1000)) for h in picks)


def _is_post(text: str) -> bool:
    return text.lstrip().startswith("$") or len(re.findall(r"\$[A-Za-z]{1,5}\b", text)) >= 2


def _document(rng: random.Random, text: str, ts: datetime, meta: dict, post: bool | None = None) -> dict:
    post = _is_post(text) if post is None else post
    source = rng.choice(("stocktwits", "stocktwits", "twitter")) if post else rng.choice(("newswire", "twitter"))
    digest = hashlib.sha1(f"{source}|{text}".encode()).hexdigest()[:16]
    doc_id = f"{source}:{digest}"
    doc: dict = {"schema_version": 1, "id": doc_id, "source": source, "kind": "post" if post else "news",
                 "published_at": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "text": text}
    if source == "newswire":
        doc["title"] = re.sub(r"\s*https?://\S+", "", text).strip()
        doc["url"] = f"https://newswire.example/story/{digest}"
    elif source == "twitter":
        doc["author"] = rng.choice(NEWS_ACCOUNTS) if not post else f"user{rng.randrange(10**6):06d}"
        doc["url"] = f"https://twitter.example/{doc['author']}/status/{int(digest[:12], 16)}"
    else:
        doc["author"] = f"trader{rng.randrange(10**5):05d}"
        doc["url"] = f"https://stocktwits.example/message/{int(digest[:12], 16)}"
    doc["lang"] = "en"
    doc["meta"] = meta
    return doc


def _surge(rng: random.Random, topic_rows: list[dict]) -> list[tuple[str, dict, bool]]:
    """(text, meta, is_post) of the surge: the dataset's negative Wells Fargo results news plus templated items."""
    real = [(r["text"], {"origin": "tfn_topic", "gold_topic": TOPIC_NAMES[int(r["label"])]}, _is_post(r["text"]))
            for r in topic_rows if COMPANY.search(r["text"]) and NEGATIVE.search(r["text"])
            and r["label"] in ("5", "7", "19") and not re.search(r"defeats|will wells fargo also", r["text"], re.I)]
    made = []
    for formats, n, post in ((NEWS_FORMATS, SURGE_NEWS, False), (POST_FORMATS, SURGE_POSTS, True)):
        for event, fmt in rng.sample([(e, f) for e in EVENTS for f in formats], n):
            text = fmt.format(e=event.format(p=rng.randrange(12, 45)), q=rng.randrange(3, 9))
            made.append((text, {"origin": "surge_template"}, post))
    for _ in range(SURGE_EPS):
        eps, rev = rng.randrange(20, 70) / 100, rng.randrange(1500, 1700) / 100
        text = EPS_FORMAT.format(eps=eps, miss=rng.randrange(15, 45) / 100, rev=rev, rmiss=rng.randrange(40, 160) / 100)
        made.append((text, {"origin": "surge_template"}, False))
    seen, out = set(), []
    for text, meta, post in real + made:
        if _norm(text) not in seen:
            seen.add(_norm(text))
            out.append((text, {**meta, "surge": True}, post))
    return out


def _break(doc: dict, how: str) -> str:
    bad = dict(doc, id=doc["id"] + "-bad")
    if how == "truncated_json":
        return json.dumps(bad)[: len(json.dumps(bad)) // 2]
    if how == "drop_text":
        bad.pop("text")
    elif how == "naive_timestamp":
        bad["published_at"] = bad["published_at"].rstrip("Z")
    elif how == "garbage_timestamp":
        bad["published_at"] = "yesterday afternoon"
    elif how == "not_an_object":
        return json.dumps([bad["id"], bad["text"]])
    elif how == "bad_kind":
        bad["kind"] = "tweet"
    elif how == "empty_id":
        bad["id"] = ""
    elif how == "future_schema":
        bad["schema_version"] = 99
    return json.dumps(bad, ensure_ascii=False)


def build(data: Path, out: Path) -> dict:
    rng = random.Random(SEED)
    topic_rows = _read(data / "twitter_financial_news_topic" / "topic_train.csv")
    sent_rows = _read(data / "twitter_financial_news_sentiment" / "sent_train.csv")
    surge = _surge(rng, topic_rows)
    rng.shuffle(surge)
    seen = {_norm(t) for t, _, _ in surge}
    pool: list[tuple[str, dict]] = []
    for rows, n, origin in ((topic_rows, N_TOPIC, "tfn_topic"), (sent_rows, N_SENT, "tfn_sentiment")):
        picked = 0
        for r in rng.sample(rows, len(rows)):
            key = _norm(r["text"])
            if picked == n or not key or key in seen:
                continue
            seen.add(key)
            gold = ({"gold_topic": TOPIC_NAMES[int(r["label"])]} if origin == "tfn_topic"
                    else {"gold_sentiment": SENTIMENT_NAMES[r["label"]]})
            pool.append((r["text"], {"origin": origin, **gold}))
            picked += 1
    rng.shuffle(pool)
    docs = [_document(rng, t, ts, m) for (t, m), ts in zip(pool, _timestamps(rng, len(pool)), strict=True)]
    surge_times = sorted(SURGE_START + timedelta(seconds=rng.randrange(SURGE_MINUTES * 60)) for _ in surge)
    surge_docs = [_document(rng, t, ts, m, p) for (t, m, p), ts in zip(surge, surge_times, strict=True)]
    docs = sorted(docs + surge_docs, key=lambda d: (d["published_at"], d["id"]))
    assert len({d["id"] for d in docs}) == len(docs), "ids must be unique"

    lines = [json.dumps(d, ensure_ascii=False) for d in docs]
    for i in sorted(rng.sample(range(len(docs) - 200), REDELIVERED), reverse=True):  # a redelivery arrives later
        lines.insert(i + rng.randint(5, 150), lines[i])
    broken: dict[int, tuple[str, str]] = {}  # id(line object) -> (how, expected reason)
    for how, reason in MALFORMED:
        line = _break(rng.choice(docs), how)
        broken[id(line)] = (how, reason)
        lines.insert(rng.randrange(len(lines)), line)
    bad_lines = [  # 1-based line numbers in the final file
        {"line": n, "kind": broken[id(line)][0], "expected_reason": broken[id(line)][1]}
        for n, line in enumerate(lines, start=1) if id(line) in broken
    ]

    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
    (out / "demo_stream.jsonl.gz").write_bytes(buf.getvalue())
    manifest = {
        "file": "demo_stream.jsonl.gz",
        "built_by": "scripts/demo_stream.py",
        "seed": SEED,
        "licence": "texts from zeroshot/twitter-financial-news-topic and -sentiment (MIT); surge templates: this project",
        "lines": len(lines),
        "documents": len(docs),
        "redelivered": REDELIVERED,
        "malformed": {"count": len(bad_lines), "lines": bad_lines},
        "start": START.isoformat(),
        "end": (START + timedelta(days=DAYS)).isoformat(),
        "kinds": {k: sum(d["kind"] == k for d in docs) for k in ("news", "post")},
        "sources": {s: sum(d["source"] == s for d in docs) for s in sorted({d["source"] for d in docs})},
        "surge": {
            "start": SURGE_START.isoformat(),
            "end": (SURGE_START + timedelta(minutes=SURGE_MINUTES)).isoformat(),
            "company": "Wells Fargo",
            "ticker": "WFC",
            "entity_keys": ["WFC", "wells fargo"],
            "topic": "Financials",
            "sentiment": "negative",
            "documents": len(surge_docs),
            "ids": [d["id"] for d in surge_docs],
        },
    }
    (out / "demo_stream.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "ingest" / "samples")
    args = parser.parse_args()
    manifest = build(args.data, args.out)
    size = (args.out / manifest["file"]).stat().st_size
    print(f"{manifest['lines']} lines, {manifest['documents']} documents, surge {manifest['surge']['documents']}, "
          f"{manifest['malformed']['count']} malformed, {size / 1e6:.2f} MB -> {args.out}")


if __name__ == "__main__":
    main()
