"""The report and the console summary are built from the store's exactly-once aggregates."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finmon.report import summary_text, write_report
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


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", html, flags=re.S)]


def test_report_shows_the_stored_numbers(store: Store, tmp_path: Path) -> None:
    docs = _populate(store)
    store.write_batch(docs[::-1])  # a replay must not change anything
    alerts = [{"scope": "topic", "key": "Markets", "window_start": T0, "z": 4.25, "note": "<b>surge</b>"}]
    path = write_report(store, tmp_path / "out" / "report.html", alerts=alerts)
    html = path.read_text()

    assert "9 documents, 2026-11-09 13:00 UTC .. 2026-11-09 14:02 UTC; 9 distinct stories" in html
    bars = _svgs(html)[0]
    values = {t.text for t in bars.iter("{http://www.w3.org/2000/svg}text")}
    assert {"Markets", "Macro", "6", "3"} <= values
    assert "Markets: 3 negative" in html and "Markets: 2 neutral" in html and "Macro: 3 positive" in html
    assert "50% neg" in html  # Markets: 3 of 6
    # canonical entities: the company's display name and ticker, its kind (the graph's, else the span label)
    assert "Apple (AAPL) (company)" in html and "Apple (AAPL) (company): 3 negative" in html
    assert "&lt;Fed &amp; Co&gt; (ORG)" in html  # text from documents is escaped
    assert "<th>window_start</th>" in html and "<td>2026-11-09 13:00 UTC</td>" in html
    assert "&lt;b&gt;surge&lt;/b&gt;" in html and "<b>surge" not in html
    assert "<script" not in html and not re.search(r"(src|href)=['\"]https?:", html)
    assert len(_svgs(html)) >= 5  # every chart is well-formed inline SVG


def test_negative_share_line_follows_the_data(store: Store, tmp_path: Path) -> None:
    _populate(store)  # Markets, hour 13: 3 of 6 negative
    store.write_batch([enriched(f"late{i}", T0 + timedelta(hours=1, minutes=30 + i), topic="Markets",
                                sentiment="negative" if i == 0 else "neutral") for i in range(4)])  # hour 14: 1 of 4
    html = write_report(store, tmp_path / "r.html").read_text()
    line_chart = _svgs(html)[3]
    (polyline,) = list(line_chart.iter("{http://www.w3.org/2000/svg}polyline"))  # Macro has < 3 docs an hour
    (x1, y1), (x2, y2) = [tuple(map(float, p.split(","))) for p in polyline.get("points").split()]
    top, height = 10, 260  # the chart's plot area: y = top + height * (1 - share)
    assert (y1, y2) == (top + height * 0.5, top + height * 0.75) and x2 > x1


def test_summary_text(store: Store) -> None:
    _populate(store)
    text = summary_text(store, alerts=[{"scope": "entity", "key": "AAPL"}])
    lines = text.splitlines()
    assert lines[0].startswith("finmon: 9 documents")
    markets = next(line for line in lines if line.strip().startswith("Markets"))
    assert markets.split()[1:] == ["6", "50%", "/", "33%", "/", "17%"]
    apple = next(line for line in lines if line.strip().startswith("Apple"))
    assert apple.split()[:3] == ["Apple", "(AAPL)", "company"] and "4 docs, 75% negative" in apple
    assert "Alerts: 1" in text and "scope=entity, key=AAPL" in text


def test_empty_store(store: Store, tmp_path: Path) -> None:
    html = write_report(store, tmp_path / "empty.html").read_text()
    assert "0 documents, no documents" in html and "No alerts." in html
    assert summary_text(store).startswith("finmon: 0 documents")
