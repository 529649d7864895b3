"""The life of an alert for one topic or entity: firing -> (escalated) -> resolved, with hysteresis and cooldown.

* opens when a step is significant (see ``detection``); its identity is (key, first step), so replaying the
  same data yields the same alert ids: that is what makes the runner idempotent across restarts;
* hysteresis: while open, a step that is merely *holding* (weaker evidence) keeps it open;
* resolves after ``resolve_after`` consecutive calm steps;
* cooldown: for ``cooldown`` steps after a resolution, only a critical step opens a new episode, so a surge that
  flickers around the threshold pages once, not every quarter of an hour.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from alerts.detection import DetectorConfig, Severity

FIRING, ESCALATED, RESOLVED = "firing", "escalated", "resolved"


@dataclass(frozen=True)
class Subject:
    """What an alert is about: a topic or an entity (company) by name."""

    kind: str  # "topic" | "entity"
    name: str  # the topic, or the entity key (company id, ticker, casefolded name): stable, part of alert ids
    display: str = field(default="", compare=False)  # what people read ("Wells Fargo"); not part of the id

    @property
    def title(self) -> str:
        return self.display or self.name

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Event:
    """One notifiable change of an alert. ``alert_id`` names the episode, ``event_id`` this change."""

    subject: Subject
    status: str  # firing | escalated | resolved
    severity: Severity
    at: datetime  # end of the window that caused the event
    started: datetime  # end of the episode's first window
    stats: dict[str, float] = field(default_factory=dict)  # docs, negatives, share, expected_share, ratio...

    @property
    def alert_id(self) -> str:
        raw = f"{self.subject.kind}|{self.subject.name}|{self.started.isoformat()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    @property
    def event_id(self) -> str:
        raw = f"{self.alert_id}|{self.status}|{int(self.severity)}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def as_dict(self) -> dict[str, Any]:
        """A flat, JSON-friendly view (for reports and the demo)."""
        return {"event_id": self.event_id, "alert_id": self.alert_id, "status": self.status,
                "severity": self.severity.label, "kind": self.subject.kind, "subject": self.subject.title,
                "key": self.subject.name, "at": self.at.isoformat(), "started": self.started.isoformat(),
                **self.stats}


@dataclass
class TrackState:
    """What survives between steps (and, serialised, between restarts)."""

    open: bool = False
    started: str | None = None  # ISO time of the episode's first window end
    severity: int = 0
    calm: int = 0
    cooldown: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def advance(
    config: DetectorConfig,
    state: TrackState,
    subject: Subject,
    at: datetime,
    significant: bool,
    holding: bool,
    severity: int,
    stats: dict[str, float],
) -> Event | None:
    """Apply one step's verdict to ``state`` (in place); return the event to notify, if any."""
    if not state.open:
        if state.cooldown > 0:
            state.cooldown -= 1
            if severity < Severity.CRITICAL:
                return None
        if not significant:
            return None
        state.open, state.started, state.severity, state.calm = True, at.isoformat(), severity, 0
        return Event(subject, FIRING, Severity(severity), at, at, stats)
    started = datetime.fromisoformat(state.started or at.isoformat())
    if significant or holding:
        state.calm = 0
        if significant and severity > state.severity:
            state.severity = severity
            return Event(subject, ESCALATED, Severity(severity), at, started, stats)
        return None
    state.calm += 1
    if state.calm < config.resolve_after:
        return None
    event = Event(subject, RESOLVED, Severity(state.severity), at, started, stats)
    state.open, state.started, state.severity, state.calm = False, None, 0, 0
    state.cooldown = config.cooldown
    return event
