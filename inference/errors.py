"""The one exception tree of finmon. Every floor derives its errors from ``FinmonError``."""

from __future__ import annotations


class FinmonError(Exception):
    """Root of every error finmon raises on purpose."""


class ConfigError(FinmonError):
    """A setting is missing or invalid."""


class InferenceError(FinmonError):
    """The model could not produce predictions (bad input, broken model files, server error)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ModelUnavailable(InferenceError):
    """The model server is unreachable or not ready; the caller should back off and retry."""


class InputError(InferenceError):
    """The input cannot be predicted on (wrong type, empty batch...)."""
