"""Settings: one pydantic-settings class per stage, read from the environment and an optional TOML file.

Precedence: explicit arguments > environment variables (``FINMON_<STAGE>_<FIELD>``) > the ``[<stage>]`` table
of the TOML file named by ``FINMON_CONFIG`` > defaults. Classes are built by functions, never at import time,
so tests can override them. Secrets are ``SecretStr`` and print masked.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from inference.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
# Span scores a learned entity needs to be kept: calibrated for the served model on the hand-checked tweet spans
# (MODEL_CARD.md, "Calibrated span scores"); a span the knowledge graph knows needs less evidence from the head.
ENTITY_MIN_SCORE = 0.85
LINKED_ENTITY_MIN_SCORE = 0.5
MIN_SCORES = (ENTITY_MIN_SCORE, LINKED_ENTITY_MIN_SCORE)  # a predictor's (unlinked, linked) default bars
DEFAULT_HOME = Path(os.environ.get("FINMON_HOME", Path.home() / ".cache" / "finmon"))


class _TomlTableSource(PydanticBaseSettingsSource):
    """Reads the table named ``settings_cls.section`` from the TOML file in ``FINMON_CONFIG``."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("FINMON_CONFIG")
        data: dict[str, Any] = {}
        if path:
            try:
                with open(path, "rb") as fh:
                    data = tomllib.load(fh).get(getattr(settings_cls, "section", ""), {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"FINMON_CONFIG={path} cannot be read: {exc}") from exc
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class _SecretFileSource(PydanticBaseSettingsSource):
    """``<PREFIX><FIELD>_FILE`` names a file holding a secret field's value (Docker/Kubernetes secrets), so that a
    password need not sit in the environment. A trailing newline is dropped; a missing file is an error."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefix = self.settings_cls.model_config.get("env_prefix", "")
        found: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if "SecretStr" not in str(field.annotation):
                continue
            variable = f"{prefix}{name}_FILE".upper()
            path = os.environ.get(variable)
            if path:
                try:
                    found[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
                except OSError as exc:
                    raise SecretFileError(f"{variable}: cannot read the secret file {path}: {exc.strerror}") from None
        return found


class SecretFileError(ConfigError):
    """A ``*_FILE`` secret variable names a file that cannot be read."""


_URL_PASSWORD = re.compile(r"(//[^:/@\s]+:)[^@/\s]*@")


class StageSettings(BaseSettings):
    """Base class of every stage's settings."""

    section: ClassVar[str] = ""
    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SecretFileSource(settings_cls), file_secret_settings,
                _TomlTableSource(settings_cls))

    def masked(self) -> dict[str, Any]:
        """The settings as a dict safe to log: secrets are shown as '**********', passwords in URLs as '***'."""
        return {k: ("**********" if isinstance(v, SecretStr) and v else
                    _URL_PASSWORD.sub(r"\1***@", v) if isinstance(v, str) else v) for k, v in self.__dict__.items()}


class ModelSettings(StageSettings):
    """Where the model lives and how the in-process predictor runs (env prefix ``FINMON_MODEL_``)."""

    section: ClassVar[str] = "model"
    model_config = SettingsConfigDict(env_prefix="FINMON_MODEL_", extra="ignore")

    repository: Path = REPO_ROOT / "models" / "triton"  # Triton model repository (the shipped model lives here)
    name: str = "finmon_mtl"
    version: str = ""  # empty: the newest version folder in the repository
    max_length: int = 128
    batch_size: int = 32
    threads: int = 0  # onnxruntime intra-op threads; 0 lets onnxruntime decide
    entity_min_score: float = Field(ENTITY_MIN_SCORE, ge=0.0, le=1.0)  # an unlinked learned span below it is dropped
    linked_entity_min_score: float = Field(LINKED_ENTITY_MIN_SCORE, ge=0.0, le=1.0)  # the same, linked to a graph node

    @property
    def min_scores(self) -> tuple[float, float]:
        return self.entity_min_score, self.linked_entity_min_score


def model_settings(**overrides: Any) -> ModelSettings:
    return ModelSettings(**overrides)
