"""Rules and routing, from YAML: which alerts go to which channels, quiet hours, per-channel rate limits.

A route matches an event when its subject is one of ``topics`` (topic alerts), ``companies`` or ``entities``
(entity alerts — companies, places, institutions — by graph id or display name, case-insensitive: ``TSLA``,
``Tesla``, ``org:FED``, ``Federal Reserve``) or ``sectors`` (sector alerts: ``Financials``), or when all lists
are empty, and its severity is at least ``min_severity``. Quiet hours *defer* an event to the end of the quiet period (critical ones pass by default);
a rate limit *defers* sends beyond ``count`` per ``per_minutes``. Nothing is dropped. Secrets live in the
environment: a channel names the variables (``url_env``, ``secret_env``, ``password_env``...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from alerts.detection import Severity
from alerts.errors import RulesError
from alerts.tracker import Event
from inference.labels import TOPICS
from inference.linking.graph import SECTORS

CHANNEL_TYPES = ("email", "slack", "feishu", "dingtalk", "wecom", "webhook", "console")


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    options: dict[str, Any]  # non-secret options (host, port, recipients, security...)
    secret_envs: dict[str, str]  # option name -> environment variable holding it
    rate_count: int = 0  # 0: unlimited
    rate_minutes: int = 60

    def secret(self, option: str, required: bool = True) -> str | None:
        """The secret ``option`` (e.g. ``url``) read from its environment variable at call time, or from the file
        that ``<variable>_FILE`` names (a mounted secret)."""
        env = self.secret_envs.get(option)
        value = os.environ.get(env) if env else None
        if env and not value and os.environ.get(f"{env}_FILE"):
            try:
                value = Path(os.environ[f"{env}_FILE"]).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise RulesError(f"channel {self.name!r}: cannot read {env}_FILE: {exc.strerror}") from None
        if required and not value:
            raise RulesError(f"channel {self.name!r}: environment variable {env or option + '_env'} is not set")
        return value


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    tz: ZoneInfo
    allow: frozenset[Severity] = frozenset({Severity.CRITICAL})

    def release(self, at: datetime, severity: Severity) -> datetime:
        """When an event of ``severity`` raised at ``at`` may be sent (``at`` itself outside quiet hours)."""
        if severity in self.allow:
            return at
        local = at.astimezone(self.tz)
        now = local.time()
        inside = (self.start <= now < self.end) if self.start < self.end else (now >= self.start or now < self.end)
        if not inside:
            return at
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(at.tzinfo)


@dataclass(frozen=True)
class Route:
    name: str
    channels: tuple[str, ...]
    topics: frozenset[str] = frozenset()
    companies: frozenset[str] = frozenset()
    sectors: frozenset[str] = frozenset()
    entities: frozenset[str] = frozenset()  # places, institutions or any entity by graph id or name
    min_severity: Severity = Severity.WARNING
    resolved: bool = True  # also notify when the alert resolves
    quiet: QuietHours | None = None

    def matches(self, event: Event) -> bool:
        if event.severity < self.min_severity or (event.status == "resolved" and not self.resolved):
            return False
        if not (self.topics or self.companies or self.sectors or self.entities):
            return True
        if event.subject.kind == "topic":
            return event.subject.name in self.topics
        if event.subject.kind == "sector":
            return event.subject.name.casefold() in self.sectors
        names = {event.subject.name.casefold(), event.subject.title.casefold()}
        return bool(names & (self.companies | self.entities))


@dataclass(frozen=True)
class Rules:
    channels: dict[str, Channel]
    routes: tuple[Route, ...] = field(default_factory=tuple)

    def targets(self, event: Event) -> list[tuple[Channel, datetime]]:
        """The channels an event goes to, each with the earliest time it may be sent (quiet hours)."""
        out: dict[str, datetime] = {}
        for route in self.routes:
            if route.matches(event):
                release = route.quiet.release(event.at, event.severity) if route.quiet else event.at
                for name in route.channels:
                    out[name] = min(out.get(name, release), release)
        return [(self.channels[name], release) for name, release in sorted(out.items())]


def console_rules() -> Rules:
    """Every alert to the log: the default when no rules file is configured, and the demo's routing."""
    return parse({"channels": {"console": {"type": "console"}}, "routes": [{"channels": ["console"]}]})


def load(path: Path) -> Rules:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from exc
    return parse(doc, str(path))


def parse(doc: dict[str, Any], where: str = "rules") -> Rules:
    if not isinstance(doc, dict):
        raise RulesError(f"{where}: the top level must be a mapping")
    channels = {name: _channel(name, spec or {}, where) for name, spec in (doc.get("channels") or {}).items()}
    routes = tuple(_route(i, spec or {}, channels, where) for i, spec in enumerate(doc.get("routes") or []))
    return Rules(channels, routes)


def _channel(name: str, spec: dict[str, Any], where: str) -> Channel:
    kind = spec.get("type")
    if kind not in CHANNEL_TYPES:
        raise RulesError(f"{where}: channel {name!r} has type {kind!r}; expected one of {', '.join(CHANNEL_TYPES)}")
    secrets = {k[: -len("_env")]: str(v) for k, v in spec.items() if k.endswith("_env")}
    leaked = {"url", "secret", "password", "token"} & set(spec)
    if leaked:
        raise RulesError(f"{where}: channel {name!r} sets {sorted(leaked)} in the file; use <option>_env instead")
    options = {k: v for k, v in spec.items() if not k.endswith("_env") and k not in ("type", "rate_limit")}
    rate = spec.get("rate_limit") or {}
    return Channel(name, kind, options, secrets, int(rate.get("count", 0)), int(rate.get("per_minutes", 60)))


def _route(i: int, spec: dict[str, Any], channels: dict[str, Channel], where: str) -> Route:
    name = str(spec.get("name", f"route-{i}"))
    targets = tuple(spec.get("channels") or ())
    unknown = [c for c in targets if c not in channels]
    if not targets or unknown:
        raise RulesError(f"{where}: route {name!r} needs known channels (unknown: {unknown})")
    match = spec.get("match") or {}
    topics = frozenset(match.get("topics") or ())
    bad = sorted(topics - set(TOPICS))
    if bad:
        raise RulesError(f"{where}: route {name!r} names unknown topics {bad}")
    try:
        min_severity = Severity.parse(str(match.get("min_severity", "warning")))
        quiet = _quiet(spec["quiet_hours"]) if spec.get("quiet_hours") else None
    except (KeyError, ValueError, ZoneInfoNotFoundError) as exc:
        raise RulesError(f"{where}: route {name!r}: {exc}") from exc
    companies = frozenset(str(c).casefold() for c in match.get("companies") or ())
    entities = frozenset(str(c).casefold() for c in match.get("entities") or ())
    sectors = frozenset(str(c).casefold() for c in match.get("sectors") or ())
    unknown = sorted(sectors - {s.casefold() for s in SECTORS})
    if unknown:
        raise RulesError(f"{where}: route {name!r} names unknown sectors {unknown}; expected some of {list(SECTORS)}")
    return Route(name, targets, topics, companies, sectors, entities, min_severity, bool(spec.get("resolved", True)),
                 quiet)


def _quiet(spec: dict[str, Any]) -> QuietHours:
    allow = frozenset(Severity.parse(s) for s in spec.get("allow", ["critical"]))
    return QuietHours(time.fromisoformat(str(spec["start"])), time.fromisoformat(str(spec["end"])),
                      ZoneInfo(str(spec.get("tz", "UTC"))), allow)
