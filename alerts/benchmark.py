"""The bundled labelled benchmark: synthetic per-minute streams with injected surges of known size and time.

Built by a deterministic generator (seeded numpy) rather than shipped as data, and writable to / readable
from a labelled JSON file (``save``/``load``) so a backtest can run on other labelled data too.

What makes it realistic rather than easy (see docs/alerts.md for the numbers):

* hourly pattern: an Asian-session bump, a European morning, the US session peak, quiet nights; weekends at
  ~35 % of weekday volume; topics spanning two orders of magnitude of volume (some too sparse to ever alert);
* day-to-day and hour-to-hour drift of both volume (log-normal) and negative share (logit-normal), i.e.
  over-dispersed counts, which a plain binomial/Poisson test would mistake for surges;
* neutral news bursts (volume x2-4 in every sentiment) in quiet data: busy is not the same as negative;
* a surge adds extra *negative* documents for 30-150 minutes, enough to lift the negative rate (the share of
  documents that are negative) to ``factor`` times its baseline (capped at 95 %); the other documents keep
  flowing as before, so volume rises too. A surge is *eligible* (counted by the recall target) when its
  factor is >= 3 and the expected number of documents per evaluation window during it is >= 20; smaller
  ones (factor 2, or thin topics) are injected too and reported apart;
* sparse subjects (an entity: a small company, a country), 0.5 to 4 documents an hour on average, whatever topic
  the model gives each document: bursts of 8-20 negative documents within 15-30 minutes (eligible when at least
  10 of them fall in 15 minutes on average), and in every sparse stream neutral bursts (8-20 documents at the
  usual share) and, in the quiet ones, single-story copy storms (one negative story re-posted 30 times within
  15-30 minutes: 30 documents, one story).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from alerts.errors import BenchmarkError
from inference.labels import TOPICS

START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
# Relative volume by UTC hour: Asia (01-07), Europe (07-13), US session (13:30-20), night.
HOURLY = np.array([0.25, 0.35, 0.45, 0.45, 0.4, 0.4, 0.45, 0.6, 0.75, 0.8, 0.75, 0.7,
                   0.8, 1.0, 1.0, 0.95, 0.9, 0.9, 0.85, 0.9, 0.6, 0.4, 0.3, 0.25])
WEEKEND = 0.35
MAX_SHARE = 0.95


SPARSE_RATE = (0.5, 4.0)  # documents per hour, on average over a weekday
SPARSE_BURST = (8, 20)  # negative documents in a burst
SPARSE_MINUTES = (15, 30)  # ... within this many minutes
COPY_STORM = 30  # documents of one story in a copy storm
TOPIC, SPARSE = "topic", "sparse"  # stream kinds: busy topics, sparse subjects (entities)


@dataclass(frozen=True)
class Surge:
    start_minute: int
    minutes: int
    factor: float  # for a sparse burst: its negative documents
    docs_per_window: float  # expected documents per evaluation window while it lasts
    eligible: bool


@dataclass
class Stream:
    name: str
    quiet: bool
    n: np.ndarray  # documents per minute
    k: np.ndarray  # negative documents per minute
    surges: list[Surge] = field(default_factory=list)
    kind: str = TOPIC
    copies: np.ndarray | None = None  # negative documents per minute that repeat a story already counted

    def stories(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct stories and negative stories per minute (the documents less the copies)."""
        if self.copies is None:
            return self.n, self.k
        return self.n - self.copies, self.k - self.copies


@dataclass
class Benchmark:
    start: datetime
    warmup_days: int
    days: int
    step_minutes: int
    streams: list[Stream]


def generate(
    seed: int = 20261129, warmup_days: int = 14, days: int = 30, step_minutes: int = 15, topics: int = 20,
    sparse: int = 20,
) -> Benchmark:
    """Quiet and surge streams for ``topics`` topics and ``sparse`` sparse subjects over ``warmup_days + days``
    days (the sparse streams draw from their own generator, so the topic streams are those of the first version)."""
    rng = np.random.default_rng(seed)
    streams = []
    for quiet in (True, False):
        for name in TOPICS[:topics]:
            streams.append(_stream(rng, name, quiet, warmup_days, days, step_minutes))
    sparse_rng = np.random.default_rng([seed, 1])
    for quiet in (True, False):
        for i in range(sparse):
            streams.append(_sparse_stream(sparse_rng, f"subject-{i:02d}", quiet, warmup_days, days))
    return Benchmark(START, warmup_days, days, step_minutes, streams)


def _sparse_stream(rng: np.random.Generator, name: str, quiet: bool, warmup: int, days: int) -> Stream:
    total_days = warmup + days
    minutes = total_days * 1440
    per_hour = float(np.exp(rng.uniform(*np.log(SPARSE_RATE))))
    share0 = rng.uniform(0.10, 0.35)
    t = np.arange(minutes)
    day, hour = t // 1440, (t % 1440) // 60
    weekend = ((START.weekday() + day) % 7) >= 5
    rate = per_hour / 60 * HOURLY[hour] / HOURLY.mean() * np.where(weekend, WEEKEND, 1.0)
    rate = rate * np.exp(rng.normal(0, 0.25, total_days))[day]
    logit = np.log(share0 / (1 - share0)) + rng.normal(0, 0.2, total_days)[day]
    share = 1 / (1 + np.exp(-logit))
    k = rng.poisson(rate * share)
    n = k + rng.poisson(rate * (1 - share))
    copies = np.zeros(minutes, dtype=np.int64)

    def spread(count: int, start: int, length: int) -> np.ndarray:
        return np.bincount(rng.integers(start, start + length, count), minlength=minutes)

    for _ in range(rng.poisson(total_days / 3)):  # neutral bursts: a dozen documents at the usual share
        s, length = int(rng.integers(0, minutes - 60)), int(rng.integers(*SPARSE_MINUTES, endpoint=True))
        docs = int(rng.integers(*SPARSE_BURST, endpoint=True))
        negative = int(rng.binomial(docs, share[s]))
        burst_negative, burst_other = spread(negative, s, length), spread(docs - negative, s, length)
        n, k = n + burst_negative + burst_other, k + burst_negative
    surges: list[Surge] = []
    if quiet:
        for _ in range(rng.poisson(total_days / 5)):  # copy storms: one negative story re-posted 30 times
            s, length = int(rng.integers(0, minutes - 60)), int(rng.integers(*SPARSE_MINUTES, endpoint=True))
            storm = spread(COPY_STORM, s, length)
            first = int(np.nonzero(storm)[0][0])
            storm_copies = storm.copy()
            storm_copies[first] -= 1  # the first document is the story, the others repeat it
            n, k, copies = n + storm, k + storm, copies + storm_copies
    else:
        cursor = warmup * 1440 + int(rng.integers(0, 1440))
        while True:
            cursor += int(rng.uniform(1.5, 3.5) * 1440)
            length = int(rng.integers(*SPARSE_MINUTES, endpoint=True))
            if cursor + length >= minutes:
                break
            size = int(rng.integers(*SPARSE_BURST, endpoint=True))
            burst = spread(size, cursor, length)
            n, k = n + burst, k + burst
            per_window = size * 15 / length
            surges.append(Surge(cursor, length, float(size), per_window, size >= 10 and per_window >= 10))
    return Stream(name, quiet, n.astype(np.int32), k.astype(np.int32), surges, SPARSE, copies.astype(np.int32))


def _stream(rng: np.random.Generator, name: str, quiet: bool, warmup: int, days: int, step: int) -> Stream:
    total_days = warmup + days
    minutes = total_days * 1440
    peak = float(np.exp(rng.uniform(np.log(0.15), np.log(15.0))))  # docs per minute at the US peak
    share0 = rng.uniform(0.10, 0.35)
    t = np.arange(minutes)
    day, hour = t // 1440, (t % 1440) // 60
    weekend = ((START.weekday() + day) % 7) >= 5
    day_vol = np.exp(rng.normal(0, 0.25, total_days))
    hour_vol = np.exp(rng.normal(0, 0.2, total_days * 24))
    rate = peak * HOURLY[hour] * np.where(weekend, WEEKEND, 1.0) * day_vol[day] * hour_vol[t // 60]
    logit = np.log(share0 / (1 - share0)) + rng.normal(0, 0.2, total_days)[day] + rng.normal(
        0, 0.1, total_days * 24
    )[t // 60]
    share = 1 / (1 + np.exp(-logit))
    for _ in range(rng.poisson(total_days / 3)):  # neutral news bursts: busy, not negative
        s, length = rng.integers(0, minutes - 120), rng.integers(20, 90)
        rate[s : s + length] *= rng.uniform(2, 4)
    neg_rate = rate * share
    extra = np.zeros(minutes)
    surges: list[Surge] = []
    if not quiet:
        cursor = warmup * 1440 + int(rng.integers(0, 1440))
        while True:
            cursor += int(rng.uniform(1.5, 3.5) * 1440)
            length = int(rng.integers(30, 151))
            if cursor + length >= minutes:
                break
            factor = float(rng.choice([2.0, 3.0, 4.0, 6.0]))
            span = slice(cursor, cursor + length)
            target = np.minimum(factor * share[span], MAX_SHARE)  # negative share while it lasts
            others = rate[span] - neg_rate[span]
            extra[span] = np.maximum(others * target / (1 - target) - neg_rate[span], 0.0)
            docs = float((rate[span] + extra[span]).mean() * step)
            surges.append(Surge(cursor, length, factor, docs, factor >= 3 and docs >= 20))
    k = rng.poisson(neg_rate + extra)
    n = k + rng.poisson(rate - neg_rate)
    return Stream(name, quiet, n.astype(np.int32), k.astype(np.int32), surges)


def save(bench: Benchmark, path: Path) -> None:
    """Write a labelled benchmark file (gzip JSON: per-minute counts plus the surge labels)."""
    doc = {
        "start": bench.start.isoformat(), "warmup_days": bench.warmup_days, "days": bench.days,
        "step_minutes": bench.step_minutes,
        "streams": [
            {"name": s.name, "quiet": s.quiet, "n": s.n.tolist(), "k": s.k.tolist(),
             "surges": [asdict(x) for x in s.surges], "kind": s.kind,
             **({"copies": s.copies.tolist()} if s.copies is not None else {})}
            for s in bench.streams
        ],
    }
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(doc, fh)


def load(path: Path) -> Benchmark:
    """Read a labelled benchmark file written by ``save`` (or by hand in the same shape)."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            doc = json.load(fh)
        streams = [
            Stream(s["name"], bool(s["quiet"]), np.asarray(s["n"], dtype=np.int32),
                   np.asarray(s["k"], dtype=np.int32), [Surge(**x) for x in s.get("surges", [])],
                   str(s.get("kind", TOPIC)),
                   np.asarray(s["copies"], dtype=np.int32) if "copies" in s else None)
            for s in doc["streams"]
        ]
        start = datetime.fromisoformat(doc["start"])
        if start.tzinfo is None:
            raise BenchmarkError(f"{path}: 'start' must be timezone-aware")
        return Benchmark(start, int(doc["warmup_days"]), int(doc["days"]), int(doc["step_minutes"]), streams)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise BenchmarkError(f"{path}: not a labelled benchmark file ({exc})") from exc


def minutes_to_steps(counts: np.ndarray, step_minutes: int) -> np.ndarray:
    usable = counts.size - counts.size % step_minutes
    return counts[:usable].reshape(-1, step_minutes).sum(axis=1)


def minute_time(bench: Benchmark, minute: int) -> datetime:
    return bench.start + timedelta(minutes=minute)
