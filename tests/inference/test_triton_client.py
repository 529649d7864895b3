"""TritonPredictor against the REAL tritonserver (bundled in nvidia-pytriton) serving the exported model."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from inference.errors import ConfigError, InputError, ModelUnavailable
from inference.decoding.prediction import Prediction
from inference.serving.predictor import OnnxPredictor
from inference.settings import ModelSettings
from inference.serving.triton_client import TritonPredictor
from inference.serving.triton_repository import latest_version
from inference.serving.triton_server import free_port
from inference.serving.triton_settings import TritonSettings

pytestmark = pytest.mark.triton
TOPIC_CSV = Path("/work/shared/data/twitter_financial_news_topic/topic_train.csv")
EDGE_CASES = [
    "",
    "   ",
    "Apple Inc. (AAPL) shares fell 3% after Tim Cook said iPhone demand in China weakened. " * 12,  # truncated
    "腾讯控股 shares rose; 阿里巴巴 fell.",
    "$TSLA 🚀🚀 to the moon!!! #stocks",
    "BREAKING: FED HIKES RATES BY 75BP, POWELL SAYS MORE TO COME",
]


def sample_texts(n: int) -> list[str]:
    """n real financial tweets (shared training data) plus edge cases, deterministic."""
    texts: list[str] = []
    if TOPIC_CSV.is_file():
        from inference.training.data import read_topic_csv

        pool = [e.text for e in read_topic_csv(TOPIC_CSV)]
        texts = random.Random(11).sample(pool, n - len(EDGE_CASES))
    else:
        rng = random.Random(11)
        words = "Apple Tesla Fed rates rise fall earnings beat miss Goldman Sachs London oil gold bond yields".split()
        texts = [" ".join(rng.choices(words, k=rng.randint(3, 40))) for _ in range(n - len(EDGE_CASES))]
    return texts + EDGE_CASES


def assert_same(a: Prediction, b: Prediction, tol: float = 1e-4) -> None:
    assert (a.topic, a.sentiment, a.truncated, a.model_version) == (b.topic, b.sentiment, b.truncated, b.model_version)
    for name, p in a.topic_probs.items():
        assert b.topic_probs[name] == pytest.approx(p, abs=tol)
    for name, p in a.sentiment_probs.items():
        assert b.sentiment_probs[name] == pytest.approx(p, abs=tol)
    assert a.sentiment_score == pytest.approx(b.sentiment_score, abs=tol)
    assert [(e.start, e.end, e.label, e.text) for e in a.entities] == [(e.start, e.end, e.label, e.text)
                                                                          for e in b.entities]
    for x, y in zip(a.entities, b.entities, strict=True):
        assert x.score == pytest.approx(y.score, abs=tol)


@pytest.fixture(scope="module")
def in_process(model_repository: Path) -> OnnxPredictor:
    return OnnxPredictor(latest_version(model_repository).path, max_length=ModelSettings().max_length)


@pytest.fixture
def connect(triton_settings_for: Callable[..., TritonSettings],
            model_settings_for_tests: ModelSettings) -> Callable[..., TritonPredictor]:
    opened: list[TritonPredictor] = []

    def make(protocol: str = "grpc", **overrides: object) -> TritonPredictor:
        overrides.setdefault("request_timeout_s", 300.0)  # one CPU thread serves the real model on a busy machine
        predictor = TritonPredictor.from_settings(triton_settings_for(protocol, **overrides), model_settings_for_tests)
        opened.append(predictor)
        return predictor

    yield make
    for predictor in opened:
        predictor.close()


async def test_500_predictions_through_triton_equal_the_in_process_predictor(connect, in_process) -> None:
    texts = sample_texts(500)
    expected = in_process.predict(texts)
    predictor = connect(max_batch=32, max_in_flight=4)
    chunks = [texts[i : i + 7] for i in range(0, len(texts), 7)]  # many concurrent callers of uneven sizes
    got = [p for part in await asyncio.gather(*(predictor.apredict(c) for c in chunks)) for p in part]
    assert len(got) == len(texts)
    for a, b in zip(expected, got):
        assert_same(a, b)
    assert any(p.truncated for p in got) and any(p.entities for p in got)


def test_http_protocol_and_the_sync_api_give_the_same_predictions(connect, in_process) -> None:
    texts = sample_texts(40)
    with connect("http") as predictor:
        for a, b in zip(in_process.predict(texts), predictor.predict(texts)):
            assert_same(a, b)


def _counts(stats: dict) -> tuple[int, int, dict[int, int]]:
    """(inferences, executions, {server batch size: executions of that size}) from Triton's statistics API."""
    (model,) = stats["model_stats"]
    sizes = {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in model.get("batch_stats", [])}
    return int(model.get("inference_count", 0)), int(model.get("execution_count", 0)), sizes


async def _counts_after(predictor, before: tuple[int, int, dict[int, int]], inferences: int):
    """Statistics once Triton has recorded ``inferences`` more (it records an execution after its responses went
    out, so a client can see its results a moment before the counts): polled, at most 10 s."""
    for _ in range(100):
        after = _counts(await predictor.statistics())
        if after[0] - before[0] >= inferences:
            break
        await asyncio.sleep(0.1)
    return after


def _new_batch_sizes(before: dict[int, int], after: dict[int, int]) -> set[int]:
    return {size for size, n in after.items() if n > before.get(size, 0)}


async def test_concurrent_single_text_requests_are_batched_by_the_server(connect) -> None:
    """Client batching off (max_batch=1): only Triton's dynamic batcher can merge the 48 requests."""
    predictor = connect(max_batch=1, max_in_flight=48)
    before = _counts(await predictor.statistics())
    texts = [f"Shares of company {i} rose after earnings" for i in range(48)]
    results = await asyncio.gather(*(predictor.apredict([t]) for t in texts))
    after = await _counts_after(predictor, before, 48)
    assert len(results) == 48 and predictor.requests_sent == 48
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences == 48
    assert executions < 48, "Triton executed every request alone: no server-side batching"
    assert max(_new_batch_sizes(before[2], after[2])) > 1


async def test_concurrent_callers_are_batched_by_the_client(connect) -> None:
    predictor = connect(max_batch=16, max_delay_ms=50, max_in_flight=2)
    before = _counts(await predictor.statistics())
    results = await asyncio.gather(*(predictor.apredict([f"Gold {i} up", f"Oil {i} down"]) for i in range(24)))
    after = await _counts_after(predictor, before, 48)
    assert [len(r) for r in results] == [2] * 24
    assert predictor.requests_sent <= 6  # 48 texts in batches of <= 16 (plus a partial one or two)
    assert after[0] - before[0] == 48 and after[1] - before[1] <= predictor.requests_sent
    assert max(_new_batch_sizes(before[2], after[2])) >= 16  # two requests of 16 may even merge


def test_start_checks_the_served_model_version(triton_settings_for, model_settings_for_tests) -> None:
    with pytest.raises(ConfigError, match="serves"):
        TritonPredictor.from_settings(triton_settings_for(expected_model_version="finmon_mtl-99-deadbeef"),
                                      model_settings_for_tests)


def test_start_fails_clearly_when_no_server_answers(model_settings_for_tests) -> None:
    settings = TritonSettings(url=f"127.0.0.1:{free_port()}", ready_timeout_s=0.5, request_timeout_s=0.5)
    with pytest.raises(ModelUnavailable, match="not ready") as info:
        TritonPredictor.from_settings(settings, model_settings_for_tests)
    assert info.value.code == "NOT_READY"


def test_bad_input_is_rejected(connect) -> None:
    predictor = connect()
    with pytest.raises(InputError):
        predictor.predict("a single string")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        predictor.predict(["ok", 3])  # type: ignore[list-item]
    assert predictor.predict([]) == []


def test_load_predictor_returns_the_triton_client_when_a_url_is_configured(
    triton_server, model_settings_for_tests, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference.serving.predictor import load_predictor

    monkeypatch.setenv("FINMON_TRITON_URL", triton_server.grpc_url)
    predictor = load_predictor(model_settings_for_tests)
    try:
        assert isinstance(predictor, TritonPredictor)
        assert predictor.model_version == latest_version(model_settings_for_tests.repository).model_version
        assert len(predictor.predict(["Oil prices jump"])) == 1
    finally:
        getattr(predictor, "close", lambda: None)()
    monkeypatch.delenv("FINMON_TRITON_URL")
    assert isinstance(load_predictor(model_settings_for_tests), OnnxPredictor)


def test_a_closed_client_says_so(connect) -> None:
    predictor = connect()
    predictor.close()
    with pytest.raises(ModelUnavailable, match="closed"):
        predictor.predict(["Oil prices jump"])
