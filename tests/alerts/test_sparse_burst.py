"""Issue 12: a burst of negative documents about a quiet subject, spread over several topics, through the real
pipeline (validate -> batch -> predict -> stories -> store, as ``finmon demo`` runs it) and the real detector.

The predictor is an oracle that reads each document's labels from a table (the model is not what is tested);
the texts are distinct, so every document is its own story."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import numpy as np
from prometheus_client import CollectorRegistry

from alerts.runner import run_once
from alerts.settings import alerts_settings
from alerts.tracker import FIRING
from inference.decoding.prediction import EntitySpan, Prediction
from inference.labels import SENTIMENTS
from ingest.deadletter import ListDeadLetters
from ingest.metrics import IngestMetrics
from ingest.pipeline import Message, Pipeline
from ingest.settings import IngestSettings
from ingest.store import Store

DAY0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; two days of history, the burst on the third
BURST = DAY0 + timedelta(days=2, hours=14, minutes=2)
TOPICS = ("Macro", "Markets", "Politics")
PLACE = "Freedonia"  # the quiet subject: ~2 documents an hour
OTHERS = ("Sylvania", "Grand Fenwick", "Latveria")  # similar subjects: the prior
WORDS = ("rates bond yield budget deficit election trade tariff vote export import minister central bank "
         "inflation growth jobs strike protest court ruling debt currency reserve port mine harvest").split()


class OraclePredictor:
    """Topic, sentiment and entity spans from a table keyed by text."""

    model_version = "oracle-1"

    def __init__(self) -> None:
        self.labels: dict[str, tuple[str, str]] = {}

    async def apredict(self, texts: list[str]) -> list[Prediction]:
        out = []
        for text in texts:
            topic, sentiment = self.labels[text]
            spans = []
            for name in (PLACE, *OTHERS):
                start = text.find(name)
                while start >= 0:  # every mention (a document may name a place several times)
                    spans.append(EntitySpan(start, start + len(name), "LOC", name, 0.9))
                    start = text.find(name, start + 1)
            probs = {s: 0.8 if s == sentiment else 0.1 for s in SENTIMENTS}
            out.append(Prediction(topic, {topic: 0.8}, sentiment, 0.8, probs, spans, self.model_version))
        return out


def _stream(burst_sentiment: str) -> tuple[list[dict], dict[str, tuple[str, str]]]:
    rng = np.random.default_rng(12)
    docs, labels = [], {}

    def add(at: datetime, topic: str, sentiment: str, subject: str | None, mentions: int = 1) -> None:
        i = len(docs)
        words = " ".join(rng.choice(WORDS, 10))
        text = f"{i}: {' and '.join([subject] * mentions) + ' ' if subject else ''}{words} #{i}"
        labels[text] = (topic, sentiment)
        docs.append({"schema_version": 1, "id": f"t:{i}", "source": "twitter", "kind": "post",
                     "published_at": at.isoformat(), "text": text, "author": f"user{i % 97}",
                     "url": f"https://example.test/{i}"})

    minutes = 3 * 1440
    for topic in TOPICS:  # background flow: 8 documents an hour per topic
        for m in np.sort(rng.integers(0, minutes, 3 * 24 * 8)):
            add(DAY0 + timedelta(minutes=int(m)), topic, str(rng.choice(SENTIMENTS, p=[0.25, 0.5, 0.25])), None)
    for subject in (PLACE, *OTHERS):  # the quiet subjects: 2 an hour, any topic, a quarter negative
        for m in np.sort(rng.integers(0, minutes, 3 * 24 * 2)):
            add(DAY0 + timedelta(minutes=int(m)), str(rng.choice(TOPICS)),
                str(rng.choice(SENTIMENTS, p=[0.25, 0.5, 0.25])), subject, mentions=int(rng.integers(1, 4)))
    for j in range(12):  # the burst: 12 documents in 12 minutes, spread over the three topics
        add(BURST + timedelta(minutes=j), TOPICS[j % 3], burst_sentiment, PLACE, mentions=3)
    docs.sort(key=lambda d: d["published_at"])
    return docs, labels


def _replay(store: Store, docs: list[dict], labels: dict[str, tuple[str, str]]) -> None:
    predictor = OraclePredictor()
    predictor.labels = labels
    settings = IngestSettings(batch_size=400, batch_timeout_s=3600, max_future_skew_s=10 * 365 * 86400.0)
    pipeline = Pipeline(predictor, store, ListDeadLetters(), settings, IngestMetrics(CollectorRegistry()))

    async def feed() -> None:
        for offset, doc in enumerate(docs):
            await pipeline.feed(Message(json.dumps(doc).encode(), settings.news_topic, 0, offset))
            if pipeline.should_flush():
                await pipeline.flush()
        await pipeline.flush()

    asyncio.run(feed())


def _alerts(store: Store, burst_sentiment: str) -> list:
    docs, labels = _stream(burst_sentiment)
    _replay(store, docs, labels)
    return run_once(store, DAY0 + timedelta(days=2), DAY0 + timedelta(days=3), settings=alerts_settings())


def test_a_negative_burst_on_a_quiet_subject_across_three_topics_is_alerted_within_two_steps(store) -> None:
    events = _alerts(store, "negative")
    firing = [e for e in events if e.status == FIRING]
    assert [(e.subject.kind, e.subject.title) for e in firing] == [("entity", PLACE)], firing
    step = timedelta(minutes=15)
    first_step_end = BURST - timedelta(minutes=BURST.minute % 15) + step
    assert firing[0].at <= first_step_end + step  # within two steps of the burst's start
    assert firing[0].stats["negatives"] >= 10  # each document counted once, whatever its topic and mentions


def test_the_same_burst_of_neutral_documents_is_not_alerted(store) -> None:
    events = _alerts(store, "neutral")
    assert [e for e in events if e.status == FIRING] == []

