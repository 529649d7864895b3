"""Dead-letter sinks: the Kafka ``*.dlq`` topics (worker), a JSONL file (demo) and a list (tests, tools)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from ingest.records import DeadLetter

log = logging.getLogger(__name__)


class KafkaDeadLetters:
    """Sends each letter to its dead-letter topic and waits for the broker's acknowledgement.

    ``producer`` is a started ``aiokafka.AIOKafkaProducer`` (acks=all). The record key is
    ``<topic>:<partition>:<offset>`` of the source message, so a letter can be traced and deduplicated.
    """

    def __init__(self, producer: object) -> None:
        self._producer = producer

    async def send(self, topic: str, letter: DeadLetter) -> None:
        key = f"{letter.topic}:{letter.partition}:{letter.offset}".encode()
        await self._producer.send_and_wait(topic, letter.to_json().encode("utf-8"), key=key)  # type: ignore[attr-defined]


class FileDeadLetters:
    """Appends letters as JSON lines to ``path`` (one file for every dead-letter topic; ``topic`` is kept)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        path.parent.mkdir(parents=True, exist_ok=True)

    async def send(self, topic: str, letter: DeadLetter) -> None:
        line = f'{{"dlq_topic": {json.dumps(topic)}, "letter": {letter.to_json()}}}\n'
        await asyncio.to_thread(self._append, line)
        self.count += 1

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)


class ListDeadLetters:
    """Keeps (dead-letter topic, letter) pairs in memory."""

    def __init__(self) -> None:
        self.letters: list[tuple[str, DeadLetter]] = []

    async def send(self, topic: str, letter: DeadLetter) -> None:
        self.letters.append((topic, letter))
