"""A deterministic mixed stream for the Kafka integration tests: news and posts, resends and reposts, and 2%
malformed messages of many kinds, with what each one should become."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella Holdings", "Stark Industries", "Wayne Enterprises",
             "Tyrell", "Cyberdyne Systems", "Soylent", "Hooli", "Vandelay Imports", "Wonka")
EVENTS = ("shares fell {n}% after weak guidance", "beat earnings estimates by {n} cents",
          "announced a ${n} million buyback", "cut its dividend by {n}%", "faces a probe over accounting",
          "raised prices by {n}% amid strong demand", "names a new chief executive", "plans to cut {n} jobs",
          "stock jumps {n}% on takeover talk", "bonds rally as the Fed holds rates", "misses revenue forecasts")
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass
class Stream:
    messages: list[bytes] = field(default_factory=list)
    expected_ids: set[str] = field(default_factory=set)  # stored exactly once
    resent: int = 0  # same id again
    # (original id, repost id): new id, same content (differs by URL and case); exactly one of each pair is stored
    # (which one depends on the order partitions are consumed in)
    reposts: list[tuple[str, str]] = field(default_factory=list)
    malformed: dict[str, int] = field(default_factory=dict)  # expected dead-letter reason -> count


def _doc(i: int, rng: random.Random, base: datetime) -> dict:
    company, event = rng.choice(COMPANIES), rng.choice(EVENTS).format(n=rng.randint(1, 90))
    kind = "news" if i % 3 else "post"
    text = f"{company} {event} (story {i})" if kind == "news" else f"<p>${company.split()[0].upper()[:4]} {event}!!</p> #{i}"
    return {"schema_version": 1, "id": f"doc-{i:06d}", "source": "wire" if kind == "news" else "social",
            "kind": kind, "published_at": (base + timedelta(seconds=i * 7)).isoformat(), "text": text,
            "url": f"https://example.test/{i}", "title": f"{company} update" if kind == "news" else None}


def _malformed(kind: str, doc: dict) -> bytes:
    bad = dict(doc)
    match kind:
        case "invalid_json":
            return json.dumps(bad).encode()[:-7]
        case "not_utf8":
            return json.dumps(bad).encode().replace(b'"text": "', b'"text": "\xff\xfe', 1)
        case "not_an_object":
            return json.dumps([bad]).encode()
        case "missing_field:text":
            del bad["text"]
        case "missing_field:published_at":
            del bad["published_at"]
        case "bad_timestamp":
            bad["published_at"] = bad["published_at"][:19]  # naive
        case "implausible_timestamp":
            bad["published_at"] = "1970-01-01T00:00:00+00:00"
        case "too_large":
            bad["text"] = "x" * (MAX_MESSAGE_BYTES + 10)
        case "invalid_field:kind":
            bad["kind"] = "tweet"
        case "empty_text":
            bad["text"] = "<div> <br/> </div>"
        case "unsupported_schema_version":
            bad["schema_version"] = 99
        case "invalid_field:id":
            bad["id"] = "   "
        case _:
            raise ValueError(kind)
    return json.dumps(bad).encode()


MALFORMED_KINDS = ("invalid_json", "not_utf8", "not_an_object", "missing_field:text", "missing_field:published_at",
                   "bad_timestamp", "implausible_timestamp", "too_large", "invalid_field:kind", "empty_text",
                   "unsupported_schema_version", "invalid_field:id")


def build_stream(total: int, seed: int = 3) -> Stream:
    """``total`` messages: 2% malformed, 1% resends, 1% reposts, the rest unique valid documents, shuffled a bit
    (messages of one document id keep their order, as a keyed producer would)."""
    rng = random.Random(seed)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    stream = Stream()
    n_bad, n_resend, n_repost = total // 50, total // 100, total // 100
    n_valid = total - n_bad - n_resend - n_repost
    docs = [_doc(i, rng, base) for i in range(n_valid)]
    out: list[bytes] = [json.dumps(d).encode() for d in docs]
    stream.expected_ids = {d["id"] for d in docs}
    for j in range(n_resend):
        out.append(json.dumps(docs[j * 7]).encode())
    for j in range(n_repost):
        original = docs[j * 11 + 1]
        repost = dict(original, id=f"repost-{j}", url=None, text=original["text"].upper() + " https://t.co/x")
        out.append(json.dumps(repost).encode())
        stream.reposts.append((original["id"], repost["id"]))
        stream.expected_ids.discard(original["id"])
    for j in range(n_bad):
        kind = MALFORMED_KINDS[j % len(MALFORMED_KINDS)]
        out.append(_malformed(kind, _doc(n_valid + j, rng, base)))
        stream.malformed[kind] = stream.malformed.get(kind, 0) + 1
    stream.resent = n_resend
    tail = out[n_valid:]
    rng.shuffle(tail)
    # interleave the extras into the second half of the valid stream, keeping them after their originals
    head, rest = out[: n_valid // 2], out[n_valid // 2 : n_valid]
    merged = rest + tail
    stream.messages = head + merged
    return stream


def bundled_documents(path: Path) -> Iterator[tuple[str, datetime, str]]:
    """(id, published_at, text) of the well-formed lines of a bundled JSONL.gz stream (its deliberately
    malformed lines skipped); a redelivered id comes again, as it does in the stream."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            try:
                raw = json.loads(line)
                at = datetime.fromisoformat(raw["published_at"])
                doc_id, text = str(raw["id"]), str(raw["text"])
            except (ValueError, KeyError, TypeError):
                continue
            if doc_id and at.tzinfo is not None:
                yield doc_id, at, text
