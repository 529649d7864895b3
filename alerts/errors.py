"""The alerts floor's part of the one exception tree (rooted in ``inference.errors.FinmonError``)."""

from __future__ import annotations

from inference.errors import ConfigError, FinmonError


class AlertsError(FinmonError):
    """Root of every error the alerts component raises on purpose."""


class RulesError(AlertsError, ConfigError):
    """The rules/routing YAML is invalid (unknown channel, topic, severity, bad quiet hours...)."""


class NotifyError(AlertsError):
    """A notifier could not deliver a message.

    ``retryable`` is False for failures that another attempt cannot fix (rejected credentials, malformed
    payload); the delivery loop then stops retrying and records the attempt as failed.
    """

    def __init__(self, message: str, *, retryable: bool = True, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class BenchmarkError(AlertsError):
    """A labelled benchmark file is malformed."""
