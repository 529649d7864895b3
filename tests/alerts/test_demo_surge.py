"""The bundled demo stream's injected surge (ingest/samples/demo_stream.json) is raised by the detector.

The model is not needed here: the documents get oracle labels (the manifest's surge documents are negative
Financials news about Wells Fargo; the others a fixed pseudo-random topic and sentiment), so this checks that
the demo's volume and timing are enough for the detector, and exercises the API ``finmon demo`` calls."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

from alerts.runner import run_once
from alerts.settings import alerts_settings
from inference.labels import TOPICS
from ingest.stories import StoryGrouper
from tests.fixtures.clickhouse import enriched
from tests.ingest.stream_data import bundled_documents

SAMPLES = Path(__file__).resolve().parents[2] / "ingest" / "samples"


def _docs(manifest: dict) -> list:
    surge = set(manifest["surge"]["ids"])
    docs = {}
    for doc_id, at, text in bundled_documents(SAMPLES / manifest["file"]):
        if doc_id in surge:
            docs[doc_id] = enriched(doc_id, at, topic=manifest["surge"]["topic"], sentiment="negative",
                                    text=f"Wells Fargo: {text}", entities=(("Wells Fargo", "ORG", "WFC"),))
        else:
            h = int(hashlib.sha256(doc_id.encode()).hexdigest(), 16)
            sentiment = ("negative", "neutral", "neutral", "positive")[h % 4]
            docs[doc_id] = enriched(doc_id, at, topic=TOPICS[(h >> 8) % 8 + 4], sentiment=sentiment, text=text)
    return list(docs.values())


def test_the_demo_surge_raises_topic_and_company_alerts(store, caplog) -> None:
    manifest = json.loads((SAMPLES / "demo_stream.json").read_text())
    docs = sorted(_docs(manifest), key=lambda d: d.doc.published_at)
    grouper = StoryGrouper(store)  # as the pipeline does: the detector counts distinct stories
    for i in range(0, len(docs), 2000):
        store.write_batch(grouper.assign(docs[i : i + 2000]))
    start, end = (datetime.fromisoformat(manifest["surge"][k]) for k in ("start", "end"))
    events = run_once(store, datetime.fromisoformat(manifest["start"]) + timedelta(days=1),
                      datetime.fromisoformat(manifest["end"]), settings=alerts_settings())
    firing = {(e.subject.kind, e.subject.name): e for e in events if e.status == "firing"}
    assert ("topic", manifest["surge"]["topic"]) in firing and ("entity", "WFC") in firing
    for e in firing.values():
        assert start < e.at <= end  # raised while the surge runs
    assert len(firing) == 2  # and nothing else in three days of ordinary flow
    assert "ALERT [" in caplog.text and "Wells Fargo" in caplog.text  # delivered to the console channel
    rows = json.loads(json.dumps([e.as_dict() for e in events]))  # what finmon demo prints
    assert {r["subject"] for r in rows if r["status"] == "firing"} == {manifest["surge"]["topic"], "Wells Fargo"}
