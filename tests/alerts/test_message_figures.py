"""Issue 12: the figures of an alert message against a hand computation from the stored rows, and the stories
it lists (a surge that is mostly one story copied many times says so)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts import source
from alerts.message import compose
from alerts.runner import run_once
from alerts.settings import alerts_settings
from alerts.tracker import FIRING
from ingest.store import PREDICTIONS, Store
from ingest.stories import StoryGrouper
from tests.fixtures.clickhouse import enriched

DAY1 = datetime(2026, 3, 3, tzinfo=UTC)  # a Tuesday: one day of history (the store's first), then the burst day
BURST = DAY1 + timedelta(days=1, hours=14)


def _background(until: datetime) -> list:
    """16 documents an hour on Macro, exactly one of them negative (so 0.25 negatives per 15-minute step)."""
    docs, t = [], DAY1
    while t < until:
        for j in range(16):
            docs.append(enriched(f"bg-{t:%d%H}-{j}", t + timedelta(minutes=3 * j + 1), topic="Macro",
                                 sentiment="negative" if j == 2 else "neutral", text=f"note {t:%d %H} {j} on rates"))
        t += timedelta(hours=1)
    return docs


def _negatives(store: Store, start: datetime, end: datetime) -> int:
    rows = store.query(f"SELECT count() AS n FROM {PREDICTIONS} FINAL WHERE topic = 'Macro' AND sentiment = "
                       "'negative' AND published_at >= {a:DateTime64(3, 'UTC')} AND published_at < "
                       "{b:DateTime64(3, 'UTC')}", {"a": start, "b": end})
    return int(rows[0]["n"])


def test_the_expected_count_in_a_message_is_the_stored_history_rate(store: Store) -> None:
    burst = [enriched(f"burst-{i}", BURST + timedelta(minutes=i * 1.5), topic="Macro", sentiment="negative",
                      text=f"default fears {i} grow as bond auction {i * 7} fails") for i in range(19)]
    store.write_batch(_background(BURST + timedelta(hours=1)) + burst)
    events = run_once(store, DAY1 + timedelta(days=1), BURST + timedelta(hours=1), settings=alerts_settings())
    firing = [e for e in events if e.status == FIRING]
    assert [e.subject.name for e in firing] == ["Macro"]
    event = firing[0]
    minutes = int(event.stats["window_minutes"])
    # by hand: negatives per 15-minute step over the observed history (day 1), times the window's steps
    per_step = _negatives(store, DAY1, DAY1 + timedelta(days=1)) / 96
    assert per_step == 0.25
    expected = per_step * minutes / 15
    observed = _negatives(store, event.at - timedelta(minutes=minutes), event.at)
    assert abs(event.stats["expected_negatives"] - expected) < 1e-9  # not 1/14 of it (a 14-day window, 1 observed)
    assert event.stats["negatives"] == observed and abs(event.stats["count_ratio"] - observed / expected) < 1e-9
    text = compose([(event, source.evidence(store, event))]).text
    assert f"{observed} negative stories against ~{expected:.2f} expected ({observed / expected:.1f}x)" in text


def test_a_surge_mostly_made_of_one_story_copied_30_times_says_so(store: Store) -> None:
    wire = "Macro: the finance ministry admits the budget hole is twice as large as reported"
    copies = [enriched(f"copy-{i}", BURST + timedelta(seconds=20 * i), topic="Macro", sentiment="negative",
                       source="twitter", text=f"{wire} https://t.co/{i:04d}") for i in range(30)]
    copies = [d.model_copy(update={"doc": d.doc.model_copy(update={"author": f"acct{i % 12}"})})
              for i, d in enumerate(copies)]
    others = [enriched(f"other-{i}", BURST + timedelta(minutes=i), topic="Macro", sentiment="negative",
                       text=f"separate report {i}: {'abcdefghij'[i]} bank {i * 13} sees losses") for i in range(10)]
    store.write_batch(StoryGrouper(store).assign(_background(BURST + timedelta(hours=1)) + copies + others))
    events = run_once(store, DAY1 + timedelta(days=1), BURST + timedelta(hours=1), settings=alerts_settings())
    event = next(e for e in events if e.status == FIRING)
    evidence = source.evidence(store, event)
    assert evidence.stories[0].documents == 30 and evidence.stories[0].outlets == 12
    assert evidence.stories[0].url == "https://example.test/copy-0"  # the first link
    assert event.stats["negative_documents"] >= event.stats["negatives"] + 29  # documents vs stories
    text = compose([(event, evidence)]).text
    assert "Mostly one story: copied 30 times by 12 outlets" in text and wire in text


def test_an_alert_names_each_entity_once_under_its_graph_name(store: Store) -> None:
    """Issue 11: "Wells" in one headline and "WELLS FARGO" in another are one entity, Wells Fargo, in the message."""
    from dataclasses import replace

    burst = []
    for i in range(19):
        surface = "Wells" if i % 2 else "WELLS FARGO"
        doc = enriched(f"wfc-{i}", BURST + timedelta(minutes=i * 1.5), topic="Macro", sentiment="negative",
                       text=f"{surface} fined again {i}: regulator {i * 7} cites accounts", entities=((surface, "ORG", "WFC"),))
        spans = [replace(s, entity_id="WFC", name="Wells Fargo", sector="Financials") for s in doc.prediction.entities]
        burst.append(doc.model_copy(update={"prediction": replace(doc.prediction, entities=spans)}))
    store.write_batch(_background(BURST + timedelta(hours=1)) + burst)
    events = run_once(store, DAY1 + timedelta(days=1), BURST + timedelta(hours=1), settings=alerts_settings())
    event = next(e for e in events if e.status == FIRING and e.subject.name == "Macro")
    evidence = source.evidence(store, event)
    assert evidence.entities[0] == ("Wells Fargo", _negatives_mentioning(store, event))
    assert [name for name, _ in evidence.entities].count("Wells Fargo") == 1
    assert not any(name in ("Wells", "WELLS FARGO") for name, _ in evidence.entities)


def _negatives_mentioning(store: Store, event) -> int:
    minutes = int(event.stats["window_minutes"])
    rows = store.query(f"SELECT count() AS n FROM {PREDICTIONS} FINAL WHERE sentiment = 'negative' AND doc_id LIKE "
                       "'wfc-%' AND published_at >= {a:DateTime64(3, 'UTC')} AND published_at < {b:DateTime64(3, 'UTC')}",
                       {"a": event.at - timedelta(minutes=minutes), "b": event.at})
    return int(rows[0]["n"])
