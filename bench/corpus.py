"""The texts benchmarks read: real tweets from the shared training data when present, else synthetic ones."""

from __future__ import annotations

from inference.training.data import default_data_dir, read_topic_csv

TOPIC_CSV = "twitter_financial_news_topic/topic_train.csv"


def texts(n: int) -> list[str]:
    """``n`` texts, cycling a deterministic shuffle of the pool."""
    path = default_data_dir() / TOPIC_CSV
    if path.is_file():
        pool = [e.text for e in read_topic_csv(path)]
    else:
        pool = [f"Company {i} shares moved {i % 17}% after results; the CEO spoke in London." for i in range(997)]
    return [pool[(i * 7919) % len(pool)] for i in range(n)]
