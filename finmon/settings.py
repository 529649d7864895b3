"""Every stage's settings in one table: `finmon settings` prints it, README.md embeds it (a test checks drift)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def settings_classes() -> list[type]:
    from alerts.settings import AlertsSettings
    from dashboards.settings import GrafanaSettings
    from inference.evaluation.promotion import PromotionSettings
    from inference.settings import ModelSettings
    from inference.serving.triton_settings import TritonSettings
    from ingest.settings import IngestSettings

    return [IngestSettings, ModelSettings, TritonSettings, AlertsSettings, GrafanaSettings, PromotionSettings]


def _default(field: Any) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr) or "secret" in str(field.annotation).lower():
        return "(secret, unset)" if not value else "(secret)"
    text = str(value) if value not in (None, "") else "–"
    from inference.settings import DEFAULT_HOME, REPO_ROOT

    # the same table whatever FINMON_HOME this machine sets (README.md embeds it, and a test compares)
    text = text.replace(str(DEFAULT_HOME), "$FINMON_HOME")
    text = text.replace(str(REPO_ROOT), "<checkout>").replace(str(Path.home()), "~")
    return text if len(text) <= 60 else text[:57] + "..."


def _comments(cls: type) -> dict[str, str]:
    """Field meanings: the Field description, else the comment after the field in the class source."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith(("pydantic", "builtins")):
            continue
        for m in re.finditer(r"^\s+(\w+):[^#\n]*#\s*(.+)$", inspect.getsource(klass), flags=re.M):
            found[m.group(1)] = m.group(2).strip()
    return found


def markdown_table() -> str:
    rows = ["| variable | TOML `[section]` key | default | meaning |", "|---|---|---|---|"]
    for cls in settings_classes():
        prefix, comments = cls.model_config.get("env_prefix", ""), _comments(cls)
        for name, field in cls.model_fields.items():
            doc = (field.description or comments.get(name, "")).replace("|", "\\|").replace("\n", " ")
            default = _default(field).replace("|", "\\|")
            rows.append(f"| `{prefix}{name.upper()}` | `[{cls.section}]` `{name}` | `{default}` | {doc} |")
    return "\n".join(rows)


def embed(readme: Path) -> bool:
    """Rewrite the settings block of ``readme``; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{markdown_table()}\n{END}"
    new = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text
