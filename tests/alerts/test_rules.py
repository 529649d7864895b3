"""Routing YAML: validation, matching, quiet hours, the example file, and the message contents."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts import rules
from alerts.detection import Severity
from alerts.errors import RulesError
from alerts.message import Evidence, Headline, compose
from alerts.tracker import FIRING, RESOLVED, Event, Subject

AT = datetime(2026, 11, 9, 23, 30, tzinfo=UTC)


def _event(kind="topic", name="Financials", severity=Severity.MAJOR, status=FIRING, display=""):
    return Event(Subject(kind, name, display), status, severity, AT, AT,
                 {"window_minutes": 30, "docs": 50, "negatives": 30, "share": 0.6, "expected_share": 0.2,
                  "expected_negatives": 8, "ratio": 3.0, "count_ratio": 3.75, "pvalue": 1e-9})


def test_the_example_rules_file_parses() -> None:
    r = rules.load(Path(rules.__file__).with_name("rules.example.yaml"))
    assert {c.type for c in r.channels.values()} == set(rules.CHANNEL_TYPES)


@pytest.mark.parametrize("doc, message", [
    ({"channels": {"x": {"type": "pager"}}}, "type 'pager'"),
    ({"channels": {"x": {"type": "slack", "url": "https://hooks.slack.com/x"}}}, "use <option>_env"),
    ({"channels": {"x": {"type": "console"}}, "routes": [{"channels": ["y"]}]}, "unknown: ['y']"),
    ({"channels": {"x": {"type": "console"}}, "routes": [{"channels": ["x"], "match": {"topics": ["Crypto"]}}]},
     "unknown topics"),
    ({"channels": {"x": {"type": "console"}}, "routes": [{"channels": ["x"], "match": {"min_severity": "huge"}}]},
     "huge"),
])
def test_bad_rules_are_refused_clearly(doc, message) -> None:
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        rules.parse(doc)


def test_routing_by_topic_company_and_severity_with_quiet_hours() -> None:
    r = rules.parse({
        "channels": {"a": {"type": "console"}, "b": {"type": "console"}, "c": {"type": "console"}},
        "routes": [
            {"channels": ["a"], "match": {"topics": ["Financials"]}},
            {"channels": ["b"], "match": {"companies": ["Wells Fargo"], "min_severity": "critical"}},
            {"channels": ["c"], "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Europe/London"},
             "resolved": False},
        ],
    })
    targets = {c.name: t for c, t in r.targets(_event())}
    assert targets["a"] == AT and targets["c"] == datetime(2026, 11, 10, 7, 0, tzinfo=UTC)  # London = UTC in Nov
    entity = {c.name for c, _ in r.targets(_event("entity", "wfc", Severity.CRITICAL, display="Wells Fargo"))}
    assert entity == {"b", "c"}  # critical passes quiet hours; company matched by display name
    assert {c.name for c, _ in r.targets(_event("entity", "wfc", Severity.MAJOR, display="Wells Fargo"))} == {"c"}
    assert {c.name for c, _ in r.targets(_event(status=RESOLVED))} == {"a"}


def test_a_missing_secret_is_a_clear_error_naming_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("NOPE_URL", raising=False)
    channel = rules.parse({"channels": {"s": {"type": "slack", "url_env": "NOPE_URL"}}}).channels["s"]
    with pytest.raises(RulesError, match="NOPE_URL"):
        channel.secret("url")


def test_message_says_what_by_how_much_over_which_window_with_links() -> None:
    ev = Evidence((Headline("WFC fined <again>", "https://n.test/1?a=1&b=2"),), (("Wells Fargo", 12),))
    m = compose([(_event(severity=Severity.WARNING), Evidence()), (_event("entity", "wfc", Severity.CRITICAL,
                 display="Wells Fargo"), ev)], "https://grafana.test/d/finmon")
    assert m.title.startswith("[CRITICAL] negative talk about entity Wells Fargo") and "(+1 more)" in m.title
    assert "30 of 50 distinct stories, a negative share of 60% against a baseline of 20% (3.0x)" in m.text
    assert "over the 30 min from 23:00 to 2026-11-09 23:30 UTC" in m.text
    assert "https://n.test/1?a=1&b=2" in m.text and "Top entities: Wells Fargo (12)" in m.text
    assert "WFC fined &lt;again&gt;" in m.html and 'href="https://n.test/1?a=1&amp;b=2"' in m.html
    assert "var-entity=wfc" in m.text and "var-topic=Financials" in m.text
    assert m.id == compose(list(reversed([(_event(severity=Severity.WARNING), Evidence()), (_event(
        "entity", "wfc", Severity.CRITICAL, display="Wells Fargo"), ev)]))).id  # order-independent identity
