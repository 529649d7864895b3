"""Alerts on the dashboards: the alerts-history dashboard, the overview's current-alerts panels, and the
annotation that shades alert episodes on the time series. Tables, statuses and severities come from alerts/."""

from __future__ import annotations

from alerts.detection import Severity
from alerts.history import DELIVERIES, EVENTS
from alerts.tracker import RESOLVED

from dashboards import queries
from dashboards.model import Annotation, Dashboard, Panel, SqlTarget, Variable
from dashboards.panels import source_variable, stat, table, timeseries
from dashboards.queries import literal

ALERTS_UID = "finmon-alerts"
_LABELS = ", ".join(literal(s.label) for s in Severity)
RANK = f"transform(severity, [{_LABELS}], [{', '.join(str(int(s)) for s in Severity)}], 0)"  # severity as a number

# One row per alert episode. Aliases differ from column names: ClickHouse substitutes aliases inside aggregates.
# alert_events is a ReplacingMergeTree: an event recorded twice only repeats a value these aggregates ignore.
_EPISODE = (
    "SELECT alert_id, any(subject_kind) AS kind, any(subject_name) AS about, min(started) AS episode_start, "
    f"max(at) AS last_event, argMax(status, at) AS last_status, argMax(severity, {RANK}) AS top_severity, "
    f"max({RANK}) AS top_rank FROM {EVENTS}"
)


def annotation(subject_kind: str | None = None, subject_var: str | None = None) -> Annotation:
    """Alert episodes as regions (first firing to last event); with ``subject_var``, only those about it."""
    where = "$__timeFilter(at)"
    if subject_kind and subject_var:
        where += f" AND subject_kind = {literal(subject_kind)} AND subject_name IN (${{{subject_var}:singlequote}})"
    sql = (
        "SELECT episode_start AS time, last_event AS timeEnd, "
        "concat(top_severity, ' ', kind, ' alert: ', about, ' (', last_status, ')') AS text, "
        f"[kind, top_severity, last_status] AS tags FROM ({_EPISODE} WHERE {where} GROUP BY alert_id) ORDER BY time"
    )
    return Annotation("finmon alerts", SqlTarget(sql, ("time", "timeEnd", "text", "tags")))


OPEN_LOOKBACK_DAYS = 30  # an episode with no event for this long before the range end is not "current"


def _open_episodes() -> str:
    """Episodes whose latest event up to the range end is not a resolution, even if it fired before the range."""
    return (f"{_EPISODE} WHERE at <= $__toTime AND at >= $__toTime - INTERVAL {OPEN_LOOKBACK_DAYS} DAY "
            f"GROUP BY alert_id HAVING last_status != {literal(RESOLVED)}")


def open_alert_panels() -> list[Panel]:
    """The overview's current alerts: how many episodes are open at the end of the time range, and which."""
    count = SqlTarget(f"SELECT count() AS open_alerts FROM ({_open_episodes()})", ("open_alerts",))
    rows = SqlTarget(
        "SELECT kind, about AS subject, top_severity AS severity, last_status AS status, episode_start AS started, "
        f"last_event FROM ({_open_episodes()}) ORDER BY top_rank DESC, last_event DESC LIMIT 50",
        ("kind", "subject", "severity", "status", "started", "last_event"),
    )
    return [stat("Open alerts", count, unit="short", width=12,
                 description="Alert episodes (topic or company surges of negative sentiment) not yet resolved."),
            table("Current alerts", rows, width=24, height=6, description="Open alert episodes, most severe first.")]


_KIND = "$__conditionalAll(subject_kind IN (${kind:singlequote}), $kind)"


def _events_over_time() -> SqlTarget:
    return SqlTarget(
        f"SELECT $__timeInterval(at) AS time, status, uniqExact(event_id) AS events FROM {EVENTS} "
        f"WHERE $__timeFilter(at) AND {_KIND} GROUP BY time, status ORDER BY time, status",
        ("time", "status", "events"), "time_series")


def _event_log() -> SqlTarget:
    return SqlTarget(
        "SELECT at AS time, subject_kind AS kind, subject_name AS subject, status, severity, "
        "JSONExtractFloat(stats, 'share') AS negative_share, JSONExtractFloat(stats, 'expected_share') AS baseline, "
        f"started, alert_id FROM {EVENTS} FINAL WHERE $__timeFilter(at) AND {_KIND} ORDER BY time DESC LIMIT 500",
        ("time", "kind", "subject", "status", "severity", "negative_share", "baseline", "started", "alert_id"))


def _deliveries() -> SqlTarget:
    """Per channel and final state (the delivery log is append-only: a delivery's state is its latest record)."""
    latest = (
        "SELECT delivery_id, any(channel) AS via, argMax(state, (attempt, stage)) AS final_state, "
        "max(attempt) AS attempts, max(recorded_at) AS last_record, argMax(error, (attempt, stage)) AS last_error "
        f"FROM {DELIVERIES} WHERE $__timeFilter(recorded_at) GROUP BY delivery_id"
    )
    return SqlTarget(
        "SELECT via AS channel, final_state AS state, count() AS deliveries, sum(attempts) AS attempts, "
        f"max(last_record) AS last_attempt, argMax(last_error, last_record) AS last_error FROM ({latest}) "
        "GROUP BY channel, state ORDER BY channel, state",
        ("channel", "state", "deliveries", "attempts", "last_attempt", "last_error"))


def alerts_history() -> Dashboard:
    panels = [
        timeseries("Negative share by source", queries.negative_share_by_source(topic_filter=False),
                   unit="percentunit", width=24,
                   description="All topics; the shaded regions are alert episodes (annotations)."),
        timeseries("Alert events", _events_over_time(), unit="short", stack="normal",
                   description="Firing, escalated and resolved events per interval."),
        table("Deliveries", _deliveries(),
              description="Notifications per channel and final state, with the latest error."),
        table("Alert event log", _event_log(), width=24, height=12,
              overrides=[{"matcher": {"id": "byRegexp", "options": "negative_share|baseline"},
                          "properties": [{"id": "unit", "value": "percentunit"}]}],
              description="Every alert event, newest first, with the negative share that triggered it."),
    ]
    kind = Variable("kind", "Alert on", "custom", choices=("topic", "entity"), multi=True, include_all=True)
    return Dashboard(ALERTS_UID, "finmon: alerts history", "Every alert episode and its notifications.", panels,
                     variables=[kind, source_variable()], annotations=[annotation()], time_from="now-7d")
