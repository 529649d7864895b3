"""What the model returns for one text: the contract between inference and every later stage."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """An entity as a character span ``text[start:end]`` of the ORIGINAL input text."""

    start: int
    end: int
    label: str
    text: str
    score: float = 1.0
    company_id: str | None = None  # the linked company's id (its primary ticker); TICKER spans: the raw symbol
    entity_id: str | None = None  # what it is counted under: a graph id (AAPL, loc:US, org:FED) or its normal name
    name: str | None = None  # the graph's display name ("Apple Inc.", "United States"), else the text
    sector: str | None = None  # a linked company's sector ("Financials")


@dataclass(frozen=True, slots=True)
class Prediction:
    topic: str
    topic_probs: dict[str, float]
    sentiment: str
    sentiment_score: float  # probability of the predicted sentiment label
    sentiment_probs: dict[str, float]
    entities: list[EntitySpan] = field(default_factory=list)
    model_version: str = ""
    truncated: bool = False  # True when the text was longer than the model's window (see predictor docs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Prediction":
        fields = dict(data)
        fields["entities"] = [EntitySpan(**e) for e in fields.get("entities", [])]
        return cls(**fields)
