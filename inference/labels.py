"""The one place where topic, sentiment and entity label names are defined.

Every other module (training, export, predictor, storage, alerts, dashboards) reads them from here.
"""

from __future__ import annotations

# Topic head: the 20 classes of the Twitter financial-news topic set, in the dataset's id order.
TOPICS: tuple[str, ...] = (
    "Analyst Update",
    "Fed | Central Banks",
    "Company | Product News",
    "Treasuries | Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy | Oil",
    "Financials",
    "Currencies",
    "General News | Opinion",
    "Gold | Metals | Materials",
    "IPO",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)

# Sentiment head, in the project's order (NOT the Twitter set's 0 bearish / 1 bullish / 2 neutral order).
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# Entity types the token head learns (BIO), plus TICKER, which a deterministic rule adds (see inference.decoding.tickers).
LEARNED_ENTITY_TYPES: tuple[str, ...] = ("PER", "ORG", "LOC")
ENTITY_TYPES: tuple[str, ...] = LEARNED_ENTITY_TYPES + ("TICKER",)

# BIO tags of the token head, in output-index order.
NER_TAGS: tuple[str, ...] = ("O",) + tuple(f"{p}-{t}" for t in LEARNED_ENTITY_TYPES for p in ("B", "I"))

TOPIC_INDEX = {name: i for i, name in enumerate(TOPICS)}
SENTIMENT_INDEX = {name: i for i, name in enumerate(SENTIMENTS)}
NER_TAG_INDEX = {name: i for i, name in enumerate(NER_TAGS)}

# Label id used for tokens that carry no NER supervision (special tokens, continuation word pieces).
IGNORE_INDEX = -100
