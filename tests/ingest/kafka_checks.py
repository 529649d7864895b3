"""Helpers of the Kafka integration tests: produce a stream, and check what went through the worker, read back
from the real broker and the real ClickHouse."""

from __future__ import annotations

from collections import Counter

import httpx

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from ingest import queries
from ingest.produce import kafka_producer, replay
from ingest.records import DeadLetter
from ingest.settings import IngestSettings
from ingest.store import DOCUMENTS, PREDICTIONS, Store
from tests.fixtures.kafka import IngestTopics
from tests.ingest.stream_data import Stream


def produce(topics: IngestTopics, messages: list[bytes]) -> None:
    """Send ``messages`` to the raw topics (routed by kind) and wait for the broker's acknowledgements."""
    settings = IngestSettings(**topics.settings())
    producer = kafka_producer(settings)
    try:
        stats = replay(messages, producer, settings)
    finally:
        producer.close()
    assert stats.sent == len(messages)


def read_topic(bootstrap: str, topic: str) -> dict[tuple[str, int, int], bytes]:
    """Every record of ``topic`` as {(topic, partition, offset): value}."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records: dict[tuple[str, int, int], bytes] = {}
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for batch in consumer.poll(timeout_ms=1000).values():
                for r in batch:
                    records[(r.topic, r.partition, r.offset)] = r.value
        return records
    finally:
        consumer.close()


def consumer_lag(topics: IngestTopics) -> dict[tuple[str, int], int]:
    """End offset minus the group's committed offset, per partition of the raw topics (from the broker)."""
    admin = KafkaAdminClient(bootstrap_servers=topics.bootstrap_servers)
    consumer = KafkaConsumer(bootstrap_servers=topics.bootstrap_servers)
    try:
        committed = admin.list_group_offsets(topics.group_id)[topics.group_id]
        parts = [TopicPartition(t, p) for t in (topics.news_topic, topics.posts_topic)
                 for p in consumer.partitions_for_topic(t) or ()]
        ends = consumer.end_offsets(parts)
        return {(tp.topic, tp.partition): end - (committed[tp].offset if tp in committed else 0)
                for tp, end in ends.items()}
    finally:
        admin.close()
        consumer.close()


def check_store(store: Store, stream: Stream, model_version: str, one_worker: bool = True) -> int:
    """Every valid document exactly once, with its prediction, in the tables and in the aggregates.

    A repost (same content, new id) is dropped by the worker that saw the original; several workers of a group
    each keep their own content memory, so there (``one_worker=False``) a repost may be stored as well.
    """
    rows = store.query(f"SELECT doc_id FROM {DOCUMENTS} FINAL")
    ids = [r["doc_id"] for r in rows]
    assert len(ids) == len(set(ids))
    stored = set(ids)
    missing = stream.expected_ids - stored
    assert not missing, f"{len(missing)} valid documents missing, e.g. {sorted(missing)[:5]}"
    for original, repost in stream.reposts:
        assert original in stored or repost in stored, (original, repost)
        assert not one_worker or (original in stored) != (repost in stored), (original, repost)
    assert stored <= stream.expected_ids | {i for pair in stream.reposts for i in pair}
    if one_worker:
        assert len(stored) == len(stream.expected_ids) + len(stream.reposts)
    preds = store.query(f"SELECT doc_id, model_version FROM {PREDICTIONS} FINAL")
    assert {p["doc_id"] for p in preds} == stored and len(preds) == len(stored)
    assert {p["model_version"] for p in preds} == {model_version}
    # what dashboards and alerts read: the per-minute aggregates count each document once
    assert sum(r["docs"] for r in queries.topic_counts(store, bucket_seconds=None)) == len(stored)
    assert queries.document_count(store) == len(stored)
    return len(stored)


def check_dead_letters(topics: IngestTopics, stream: Stream, exact: bool) -> None:
    """Each malformed message is in a dead-letter topic with its reason and where it came from; with
    ``exact`` each exactly once (after a crash, a replayed tail may dead-letter a message twice)."""
    sources: dict[tuple[str, int, int], bytes] = {}
    for topic in (topics.news_topic, topics.posts_topic):
        sources.update(read_topic(topics.bootstrap_servers, topic))
    letters = []
    for topic in (topics.news_dlq_topic, topics.posts_dlq_topic):
        letters += [DeadLetter.from_json(v) for v in read_topic(topics.bootstrap_servers, topic).values()]
    origins = Counter((d.topic, d.partition, d.offset) for d in letters)
    for letter in letters:
        assert sources[(letter.topic, letter.partition, letter.offset)] == letter.payload()
    by_origin = {(d.topic, d.partition, d.offset): d.reason for d in letters}
    assert Counter(by_origin.values()) == Counter(stream.malformed)
    if exact:
        assert max(origins.values()) == 1 and len(letters) == sum(stream.malformed.values())


def stored_so_far(port: int) -> float:
    """Documents a running worker stored so far, read from its /metrics (0 before it serves them)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("finmon_documents_total{") and 'outcome="stored"' in line)
