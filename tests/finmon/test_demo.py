"""`finmon demo` end to end: the bundled stream through the real model into an embedded ClickHouse, the summary
and the HTML report; a second run is idempotent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from finmon.demo import BUNDLED_STREAM, DEMO_TOPIC
from ingest import queries
from ingest.records import DeadLetter
from ingest.store import DOCUMENTS, PREDICTIONS, Store

MANIFEST = json.loads(BUNDLED_STREAM.with_name("demo_stream.json").read_text())
FINMON = str(Path(sys.executable).parent / "finmon")


def run_demo(directory: Path, *more: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([FINMON, "demo", "--dir", str(directory), "--no-progress", *more], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    done = run_demo(directory)
    (directory / "stdout.txt").write_text(done.stdout)
    return directory


def test_every_document_is_stored_once_with_a_prediction(demo_dir: Path) -> None:
    with Store.open(f"chdb://{demo_dir / 'clickhouse'}") as store:
        docs = store.query(f"SELECT count() AS n, uniqExact(doc_id) AS ids FROM {DOCUMENTS} FINAL")[0]
        preds = store.query(f"SELECT count() AS n FROM {PREDICTIONS} FINAL")[0]
        assert docs["n"] == docs["ids"] == preds["n"] == MANIFEST["documents"]
        assert queries.document_count(store) == MANIFEST["documents"]
        surge = set(MANIFEST["surge"]["ids"])
        found = store.query(f"SELECT doc_id FROM {DOCUMENTS} FINAL WHERE doc_id IN {{ids:Array(String)}}",
                            {"ids": sorted(surge)})
        assert {r["doc_id"] for r in found} == surge


def test_malformed_lines_are_dead_lettered_with_their_reason_and_line(demo_dir: Path) -> None:
    entries = [json.loads(line) for line in (demo_dir / "dead_letters.jsonl").read_text().splitlines()]
    letters = [DeadLetter.model_validate(e["letter"]) for e in entries]
    expected = {m["line"]: m["expected_reason"] for m in MANIFEST["malformed"]["lines"]}
    # the manifest numbers lines from 1; the demo's offset is the 0-based line index
    assert {d.offset + 1: d.reason for d in letters} == expected
    assert {d.topic for d in letters} == {DEMO_TOPIC}


def test_summary_and_report(demo_dir: Path) -> None:
    stdout = (demo_dir / "stdout.txt").read_text()
    assert f"finmon: {MANIFEST['documents']:,} documents" in stdout
    assert (f"{MANIFEST['documents']:,} stored, {MANIFEST['redelivered']:,} duplicates, "
            f"{MANIFEST['malformed']['count']:,} dead letters") in stdout
    html = (demo_dir / "report.html").read_text()
    assert html.startswith("<!doctype html>") and html.count("Plotly.newPlot(") == 4
    assert "<script src" not in html  # plotly.js is inlined: the page works offline


CHARTS = """return Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
  id: d.id, traces: (d.data || []).map(t => [t.name, (t.x || []).length]),
  svgs: d.querySelectorAll('svg.main-svg').length, marks: d.querySelectorAll('.trace path, .point').length,
  alerts: d.querySelectorAll('.scatterlayer .trace:last-child .point').length}))"""


def test_the_report_renders_in_a_headless_browser(demo_dir: Path, browser) -> None:
    """The demo's report in real headless Chromium, offline: every chart drawn, the alerts on the time charts and
    in the table (with links to their documents), and not one script error."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what an earlier page logged
    browser.get((demo_dir / "report.html").as_uri())
    WebDriverWait(browser, 60).until(lambda b: b.execute_script(
        "return document.readyState === 'complete' && document.querySelectorAll('.js-plotly-plot svg.main-svg')"
        ".length >= 4"))
    charts = {c["id"]: c for c in browser.execute_script(CHARTS)}
    assert set(charts) == {"negative-share", "volume", "entities", "topics"}
    for chart in charts.values():
        assert chart["svgs"] >= 1 and chart["marks"] > 3, chart  # drawn, not only laid out
    for name in ("negative-share", "volume"):
        traces = dict(charts[name]["traces"])
        assert traces.get("alerts", 0) >= 1 and charts[name]["alerts"] == traces["alerts"], charts[name]
    links = browser.execute_script("return Array.from(document.querySelectorAll('#alerts tr.alert a'))"
                                   ".map(a => a.href)")
    assert links and all(link.startswith("https://") for link in links)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    if shot := os.environ.get("FINMON_REPORT_SCREENSHOT"):  # docs/report.png is made this way
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, height)
        browser.save_screenshot(shot)


def test_a_second_run_with_keep_changes_nothing(demo_dir: Path) -> None:
    run_demo(demo_dir, "--keep", "--limit", "500")
    with Store.open(f"chdb://{demo_dir / 'clickhouse'}") as store:
        assert queries.document_count(store) == MANIFEST["documents"]
        counts = Counter(r["topic"] for r in store.query(f"SELECT topic FROM {PREDICTIONS} FINAL"))
        assert sum(counts.values()) == MANIFEST["documents"]


def test_the_bundled_surge_raises_an_alert_for_its_company(demo_dir: Path) -> None:
    """Issue 5: `finmon demo` shows the alerts its bundled surge raises, and nothing fires on the quiet days."""
    from datetime import datetime, timedelta

    from alerts.history import EVENTS
    from alerts.tracker import ESCALATED, FIRING

    surge = MANIFEST["surge"]
    stdout = (demo_dir / "stdout.txt").read_text()
    assert "surging" in stdout and surge["company"] in stdout
    with Store.open(f"chdb://{demo_dir / 'clickhouse'}") as store:
        rows = store.query(f"SELECT subject_name, status, at FROM {EVENTS} FINAL ORDER BY at")
    raised = [r for r in rows if r["status"] in (FIRING, ESCALATED)]
    assert raised, rows
    start, end = (datetime.fromisoformat(surge[k]) for k in ("start", "end"))
    subjects = {k.lower() for k in surge["entity_keys"]} | {surge["topic"].lower()}
    for r in raised:  # every alert is about the surge: its company or topic, raised during it or within the hour
        at = r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=start.tzinfo)
        assert r["subject_name"].lower() in subjects and start <= at <= end + timedelta(hours=1), r
