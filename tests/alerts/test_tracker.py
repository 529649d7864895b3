"""The alert life cycle: hysteresis, escalation, resolution, cooldown, deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.detection import DetectorConfig, Severity
from alerts.tracker import ESCALATED, FIRING, RESOLVED, Subject, TrackState, advance

T0 = datetime(2026, 11, 9, 14, 0, tzinfo=UTC)
S = Subject("topic", "Financials")
W, M, C = int(Severity.WARNING), int(Severity.MAJOR), int(Severity.CRITICAL)


def _run(steps: list[tuple[bool, bool, int]], state: TrackState | None = None, config: DetectorConfig | None = None):
    config = config or DetectorConfig(resolve_after=2, cooldown=3)
    state = state or TrackState()
    out = []
    for i, (significant, holding, severity) in enumerate(steps):
        e = advance(config, state, S, T0 + timedelta(minutes=15 * i), significant, holding, severity, {})
        out.append(e and (e.status, e.severity))
    return out, state


def test_fires_once_holds_escalates_and_resolves_after_calm_steps() -> None:
    out, state = _run([(True, True, W), (False, True, 0), (True, True, C), (False, False, 0), (False, False, 0)])
    assert out == [(FIRING, Severity.WARNING), None, (ESCALATED, Severity.CRITICAL), None,
                   (RESOLVED, Severity.CRITICAL)]
    assert not state.open and state.cooldown == 3


def test_one_calm_step_does_not_resolve() -> None:
    out, _ = _run([(True, True, W), (False, False, 0), (True, True, W), (False, False, 0)])
    assert out == [(FIRING, Severity.WARNING), None, None, None]


def test_cooldown_suppresses_a_flicker_but_not_a_critical() -> None:
    flicker = [(True, True, W), (False, False, 0), (False, False, 0), (True, True, M), (True, True, W)]
    out, _ = _run(flicker)
    assert out == [(FIRING, Severity.WARNING), None, (RESOLVED, Severity.WARNING), None, None]
    out, _ = _run(flicker[:3] + [(True, True, C)])
    assert out[-1] == (FIRING, Severity.CRITICAL)


def test_ids_are_deterministic_and_name_the_episode() -> None:
    config = DetectorConfig()
    a = advance(config, TrackState(), S, T0, True, True, W, {"docs": 1.0})
    b = advance(config, TrackState(), S, T0, True, True, W, {"docs": 2.0})
    c = advance(config, TrackState(), S, T0 + timedelta(minutes=15), True, True, W, {})
    assert a and b and c
    assert a.event_id == b.event_id and a.alert_id == b.alert_id  # stats do not change identity
    assert a.alert_id != c.alert_id
    assert Subject("entity", "wfc", "Wells Fargo") == Subject("entity", "wfc", "WELLS FARGO & CO")


def test_state_survives_a_round_trip() -> None:
    _, state = _run([(True, True, W)])
    restored = TrackState(**state.to_dict())
    out, _ = _run([(False, False, 0), (False, False, 0)], restored)
    assert out[-1] == (RESOLVED, Severity.WARNING)
