"""The real-service fixtures never let CI pass by skipping: a missing service fails there, skips (with why) here."""

from __future__ import annotations

import pytest

from tests.fixtures import service_missing


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_missing_service_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="tritonserver is not available: no binary"):
        service_missing("tritonserver", "no binary")


def test_a_missing_service_skips_locally_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Kafka is not available: java not found"):
        service_missing("Kafka", "java not found")


def test_the_triton_fixture_uses_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The bundled tritonserver not found: in CI the fixture fails instead of skipping every server test."""
    import tests.fixtures.triton as triton

    def missing() -> None:
        raise FileNotFoundError("tritonserver binary not found")

    monkeypatch.setattr(triton, "bundled_tritonserver", missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="tritonserver binary not found"):
        triton.cpu_repository.__wrapped__(tmp_path, None)  # type: ignore[attr-defined]
