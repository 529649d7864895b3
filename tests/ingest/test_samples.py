"""The bundled demo stream agrees with its manifest and has the shape the demo and the alert checks rely on."""

from __future__ import annotations

import gzip
import json
import statistics
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.records import RawDocument, RecordError

SAMPLES = Path(__file__).resolve().parents[2] / "ingest" / "samples"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MANIFEST = json.loads((SAMPLES / "demo_stream.json").read_text())


@pytest.fixture(scope="module")
def parsed() -> tuple[list[bytes], list[RawDocument], dict[int, str]]:
    lines = gzip.decompress((SAMPLES / MANIFEST["file"]).read_bytes()).splitlines()
    docs, bad = [], {}
    for n, line in enumerate(lines, start=1):
        try:
            docs.append(RawDocument.parse_json(line))
        except RecordError as exc:
            bad[n] = exc.reason
    return lines, docs, bad


def test_file_matches_manifest(parsed) -> None:
    lines, docs, bad = parsed
    assert (SAMPLES / MANIFEST["file"]).stat().st_size < 1_500_000
    assert len(lines) == MANIFEST["lines"]
    assert bad == {b["line"]: b["expected_reason"] for b in MANIFEST["malformed"]["lines"]}
    assert len(bad) == MANIFEST["malformed"]["count"] >= 5
    assert len({d.id for d in docs}) == MANIFEST["documents"]
    redelivered = len(docs) - MANIFEST["documents"]
    assert redelivered == MANIFEST["redelivered"] > 0
    by_id: dict[str, RawDocument] = {}
    for d in docs:  # a redelivery is the same document, not a different one under a reused id
        assert by_id.setdefault(d.id, d) == d


def test_realistic_time_kind_and_source_mix(parsed) -> None:
    _, docs, _ = parsed
    times = [d.published_at for d in docs]
    assert max(times) - min(times) >= timedelta(days=2)
    assert {d.kind for d in docs} == {"news", "post"}
    assert len({d.source for d in docs}) >= 3 and all(d.url for d in docs)
    weekday = [t for t in times if t.weekday() < 5]
    day = sum(13 <= t.hour < 21 for t in weekday) / 8
    night = sum(t.hour < 6 for t in weekday) / 6
    assert day > 3 * night
    per_day = Counter(t.date() for t in times)
    assert min(per_day[d] for d in per_day if d.weekday() < 5) > 2 * max(per_day[d] for d in per_day if d.weekday() >= 5)


def test_surge_is_several_times_the_normal_negative_rate(parsed) -> None:
    _, docs, _ = parsed
    surge = MANIFEST["surge"]
    start, end = datetime.fromisoformat(surge["start"]), datetime.fromisoformat(surge["end"])
    ids = set(surge["ids"])
    in_surge = {d.id: d for d in docs if d.id in ids}
    assert len(in_surge) == surge["documents"] >= 30
    assert all(start <= d.published_at < end for d in in_surge.values())
    assert all("Wells Fargo" in d.text or "$WFC" in d.text for d in in_surge.values())
    # negatives per hour: the surge's hours against ordinary weekday-daytime hours (known labels only)
    negative = Counter(d.published_at.replace(minute=0, second=0, microsecond=0) for d in docs
                       if d.id in ids or d.meta.get("gold_sentiment") == "negative")
    normal = [n for h, n in negative.items() if h.weekday() < 5 and 13 <= h.hour < 21 and not start - timedelta(
        hours=1) < h < end]
    surge_rate = sum(n for h, n in negative.items() if start - timedelta(hours=1) < h < end) / (
        (end - start).total_seconds() / 3600)
    assert surge_rate >= 3 * statistics.median(normal)


@pytest.mark.skipif(not DATA.is_dir(), reason="the source datasets are not on this machine")
def test_build_is_deterministic(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_stream", SAMPLES.parents[1] / "scripts" / "demo_stream.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(DATA, tmp_path)
    for name in (MANIFEST["file"], "demo_stream.json"):
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes()
