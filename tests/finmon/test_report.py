"""The report and the console summary are built from the store's exactly-once aggregates and its recorded alerts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts import history
from alerts.detection import Severity
from alerts.tracker import FIRING, Event, Subject
from finmon.report import report_alerts, summary_text, topic_series, write_report
from ingest.store import Store
from tests.fixtures.clickhouse import enriched

T0 = datetime(2026, 11, 9, 13, 0, tzinfo=UTC)


def _populate(store: Store) -> list:
    docs = []
    for i, sentiment in enumerate(["negative"] * 3 + ["neutral"] * 2 + ["positive"]):
        ents = (("Apple", "ORG", "AAPL"),) if i < 4 else ()
        docs.append(enriched(f"m{i}", T0 + timedelta(minutes=7 * i), topic="Markets", sentiment=sentiment,
                             entities=ents))
    for i in range(3):
        docs.append(enriched(f"x{i}", T0 + timedelta(hours=1, minutes=i), topic="Macro", sentiment="positive",
                             entities=(("<Fed & Co>", "ORG", None),)))
    store.write_batch(docs)
    return docs


def _alert(store: Store, at: datetime = T0 + timedelta(minutes=45)) -> Event:
    history.migrate(store)
    event = Event(Subject("topic", "Markets"), FIRING, Severity.MAJOR, at, at - timedelta(minutes=15),
                  {"window_minutes": 45, "docs": 6, "negatives": 3, "share": 0.5, "expected_share": 0.1,
                   "expected_negatives": 0.6, "ratio": 5.0, "count_ratio": 5.0, "pvalue": 1e-7})
    history.record_events(store, [event])
    return event


def _figures(html: str) -> dict[str, list[dict]]:
    """The data of every plotly chart on the page, by its div id."""
    found = {}
    for div_id, data in re.findall(r'Plotly\.newPlot\(\s*"([\w-]+)",\s*(\[.*?\]),\s*\{', html, flags=re.S):
        found[div_id] = json.loads(data)
    return found


def test_report_shows_the_stored_numbers_and_alerts(store: Store, tmp_path: Path) -> None:
    docs = _populate(store)
    store.write_batch(docs[::-1])  # a replay must not change anything
    _alert(store)
    _alert(store, at=T0 - timedelta(days=3))  # outside the report's period: not shown
    html = (write_report(store, tmp_path / "out" / "report.html")).read_text()

    assert "9 documents, 2026-11-09 13:00 UTC .. 2026-11-09 14:02 UTC; 9 distinct stories" in html
    assert "<b>1</b> alert event" in html
    figures = _figures(html)
    assert set(figures) == {"negative-share", "volume", "entities", "topics"}
    share = {t["name"]: t for t in figures["negative-share"]}
    assert share["Markets"]["y"][0] == 0.5  # hour 13: 3 of 6 negative
    (marker,) = [t for t in figures["negative-share"] if t["name"] == "alerts"]
    assert marker["x"] == ["2026-11-09T13:45:00+00:00"] and "Markets" in marker["text"][0]
    assert marker["y"] == [0.5]  # on the Markets line, in the hour it fired
    topics = {t["name"]: dict(zip(t["y"], t["x"], strict=True)) for t in figures["topics"]}
    assert topics["negative"]["Markets"] == 3 and topics["neutral"]["Markets"] == 2
    assert topics["positive"]["Macro"] == 3
    entities = {t["name"]: dict(zip(t["y"], t["x"], strict=True)) for t in figures["entities"]}
    # canonical entities: the company's display name and ticker, its kind (the graph's, else the span label)
    assert entities["negative"]["Apple (AAPL) (company)"] == 3 and "<Fed & Co> (ORG)" in entities["positive"]
    table = html[html.index("<table id='alerts'>"):]
    assert "2026-11-09 13:45 UTC" in table and "Markets" in table
    assert "href='https://example.test/m0'" in table  # the negative documents behind the alert, linked
    assert not re.search(r"<script[^>]+src=", html) and "* plotly.js v" in html  # plotly.js is inline: offline


def test_volume_and_share_per_bucket(store: Store) -> None:
    _populate(store)
    store.write_batch([enriched(f"late{i}", T0 + timedelta(hours=1, minutes=30 + i), topic="Markets",
                                sentiment="negative" if i == 0 else "neutral") for i in range(5)])  # hour 14: 1 of 5
    share, volume = topic_series(store, ["Markets", "Macro"])
    assert [v for _, v in share["Markets"]] == [0.5, 0.2]
    assert [v for _, v in volume["Markets"]] == [6.0, 5.0] and [v for _, v in volume["Macro"]] == [0.0, 3.0]
    assert [v for _, v in share["Macro"]] == [None, None]  # too few documents an hour for a share


def test_summary_lists_the_stored_alerts(store: Store) -> None:
    _populate(store)
    _alert(store)
    lines = summary_text(store).splitlines()
    assert lines[0].startswith("finmon: 9 documents")
    markets = next(line for line in lines if line.strip().startswith("Markets"))
    assert markets.split()[1:] == ["6", "50%", "/", "33%", "/", "17%"]
    apple = next(line for line in lines if line.strip().startswith("Apple"))
    assert apple.split()[:3] == ["Apple", "(AAPL)", "company"] and "4 docs, 75% negative" in apple
    assert "Alerts: 1" in lines
    alert = lines[lines.index("Alerts: 1") + 1]
    assert alert.strip().startswith("2026-11-09 13:45 UTC") and "[MAJOR]" in alert and "Markets" in alert
    (row,) = report_alerts(store, T0, T0 + timedelta(hours=2))
    assert row["documents"][0]["url"].startswith("https://example.test/m")


def test_empty_store(store: Store, tmp_path: Path) -> None:
    html = write_report(store, tmp_path / "empty.html").read_text()
    assert "0 documents, no documents" in html and "No alerts." in html
    assert summary_text(store).startswith("finmon: 0 documents")
