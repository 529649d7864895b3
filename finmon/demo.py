"""`finmon demo`: the embedded default. The bundled sample stream is replayed in-process (no Kafka) through the
SAME ingest pipeline the Kafka worker runs (validation, dedup, micro-batching, the model, ClickHouse writes) into
an embedded ClickHouse (chdb) directory; then the alerting worker's detection runs over what was stored, and the
summary (with the alerts) is printed and the HTML report written.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from datetime import timedelta

from prometheus_client import CollectorRegistry
from tqdm import tqdm

from alerts import history
from alerts.message import headline, summary
from alerts.runner import run_once
from inference.serving.predictor import Predictor, load_predictor
from inference.settings import DEFAULT_HOME, REPO_ROOT
from ingest.deadletter import FileDeadLetters
from ingest.metrics import IngestMetrics
from ingest.pipeline import Message, Pipeline
from ingest.produce import read_lines
from ingest.queries import time_bounds
from ingest.settings import ingest_settings
from ingest.store import Store

from finmon.report import summary_text, write_report

log = logging.getLogger(__name__)
BUNDLED_STREAM = REPO_ROOT / "ingest" / "samples" / "demo_stream.jsonl.gz"
DEMO_TOPIC = "demo.raw"  # the "topic" demo messages are attributed to (dead letters name it with the line offset)
TEN_YEARS_S = 10 * 365 * 24 * 3600.0


def run_demo(directory: Path | None = None, stream: Path | None = None, limit: int | None = None, keep: bool = False,
             progress: bool = True, predictor: Predictor | None = None, out: TextIO = sys.stdout) -> int:
    directory = (directory or DEFAULT_HOME / "demo").resolve()
    db_dir, letters_path = directory / "clickhouse", directory / "dead_letters.jsonl"
    if not keep:  # a fresh run each time; --keep reuses the database (writes are idempotent, nothing doubles)
        shutil.rmtree(db_dir, ignore_errors=True)
        letters_path.unlink(missing_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    # a recorded stream is replayed whatever today's date is: do not reject its timestamps as "in the future"
    settings = ingest_settings(clickhouse_dsn=f"chdb://{db_dir}", max_future_skew_s=TEN_YEARS_S, metrics_port=0)
    lines = list(read_lines(stream or BUNDLED_STREAM))[:limit]
    predictor = predictor or load_predictor()
    with Store.connect(settings) as store:
        store.migrate()
        pipeline = Pipeline(predictor, store, FileDeadLetters(letters_path), settings,
                            IngestMetrics(CollectorRegistry()))
        bar = tqdm(total=len(lines), unit="doc", desc="finmon demo", disable=not progress, file=sys.stderr)
        try:
            outcomes = asyncio.run(_replay(pipeline, lines, bar))
        finally:
            bar.close()

        detect_alerts(store)  # recorded in alert_events, where the summary and the report read them

        report = write_report(store, directory / "report.html")
        out.write(summary_text(store) + "\n")
    out.write(f"\nReplayed {len(lines):,} messages: {outcomes.get('stored', 0):,} stored, "
              f"{outcomes.get('duplicate', 0):,} duplicates, {outcomes.get('dead_letter', 0):,} dead letters"
              f"{f' ({letters_path})' if outcomes.get('dead_letter') else ''}.\n")
    out.write(f"Report: {report}\nClickHouse data: {db_dir} (summary again: finmon report --dsn chdb://{db_dir})\n")
    return 0


def detect_alerts(store: Store) -> list[dict]:
    """Run the alerting worker's detection over the stored stream (the first day only trains the baseline);
    alerts go to the console channel, and come back as rows for the summary and the report."""
    history.migrate(store)
    bounds = time_bounds(store)
    if bounds is None:
        return []
    first, last = bounds
    events = run_once(store, first + timedelta(days=1), last + timedelta(minutes=1))
    return [{"at": f"{e.at:%Y-%m-%d %H:%M} UTC", "alert": headline(e), "details": summary(e)} for e in events]


async def _replay(pipeline: Pipeline, lines: Iterable[bytes], bar: tqdm) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for offset, line in enumerate(lines):
        result = await pipeline.feed(Message(line, DEMO_TOPIC, 0, offset))
        if result is not None:
            outcomes[result.outcome.value] += 1
        if pipeline.should_flush():
            outcomes.update(r.outcome.value for r in await pipeline.flush())
        bar.update(1)
    outcomes.update(r.outcome.value for r in await pipeline.flush())
    return outcomes
