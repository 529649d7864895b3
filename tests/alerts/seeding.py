"""Test data for the runner tests: a few days of ordinary flow for two topics, then a negative surge about
Wells Fargo in Financials, written through the real Store (so the per-minute aggregates fill as in production)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from ingest.store import Store
from tests.fixtures.clickhouse import enriched

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
SURGE = datetime(2026, 11, 4, 14, 0, tzinfo=UTC)  # the surge starts here and lasts SURGE_STEPS steps
SURGE_STEPS = 3
STEP = timedelta(minutes=15)


def seed(store: Store, days: int = 2, seed: int = 1) -> None:
    """Ordinary flow from START for ``days`` days plus the day of the surge, up to SURGE + 2 hours."""
    rng = np.random.default_rng(seed)
    end = SURGE + timedelta(hours=2)
    docs, i, t = [], 0, START
    while t < end:
        surge = SURGE <= t < SURGE + SURGE_STEPS * STEP
        for topic, volume, share in (("Financials", 14, 0.2), ("Markets", 10, 0.25)):
            for _ in range(rng.poisson(volume)):
                negative = rng.random() < share
                ents = (("Wells Fargo", "ORG", "WFC"),) if rng.random() < 0.3 else ()
                docs.append(enriched(f"d{i}", t + timedelta(seconds=int(rng.integers(0, 900))), topic=topic,
                                     sentiment="negative" if negative else rng.choice(["neutral", "positive"]),
                                     entities=ents, text=None))
                i += 1
        if surge:
            for _ in range(25):
                docs.append(enriched(f"s{i}", t + timedelta(seconds=int(rng.integers(0, 900))), topic="Financials",
                                     sentiment="negative", entities=(("Wells Fargo", "ORG", "WFC"),),
                                     text=f"Wells Fargo hit by new sales scandal probe {i}"))
                i += 1
        t += STEP
    for chunk in range(0, len(docs), 2000):
        store.write_batch(docs[chunk : chunk + 2000])
