"""deploy/docker-compose.yml (no Docker engine here, so it is checked by parsing): pinned images, files that
exist, health checks on everything another service waits for, and commands/settings finmon really has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import GENERATED, build
from dashboards.provisioning import DASHBOARDS_PATH
from dashboards.settings import CLICKHOUSE_PLUGIN_VERSION, GrafanaSettings
from inference.tensors import MODEL_NAME

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
FINMON_IMAGE = "finmon:0.1.0"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest") and re.search(r"\d", tag) is not None


def _dockerfile_froms(path: Path) -> list[str]:
    return [line.split()[1] for line in path.read_text().splitlines() if line.startswith("FROM ")]


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    assert {"kafka", "kafka-init", "clickhouse", "migrate", "triton", "ingest", "alerts", "prometheus",
            "grafana"} <= set(services)


def test_images_are_pinned_and_built_images_have_their_dockerfiles(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        assert _pinned(svc["image"]), f"{name}: {svc['image']} is not pinned"
        if "build" in svc:
            dockerfile = (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve()
            assert dockerfile.is_file(), name
            assert all(_pinned(f) for f in _dockerfile_froms(dockerfile)), dockerfile
    built = {svc["image"] for svc in services.values() if "build" in svc}
    used = {svc["image"] for svc in services.values()}
    public = {"apache/kafka", "clickhouse/clickhouse-server", "nvcr.io/nvidia/tritonserver", "prom/prometheus"}
    assert {i for i in used - built if i.rpartition(":")[0] not in public} == set()


def test_dockerfiles_copy_only_what_exists() -> None:
    for dockerfile in (DEPLOY / "Dockerfile", DEPLOY / "grafana" / "Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY ") and "--from" not in line:
                sources = shlex.split(line)[1:-1]
                for src in sources:
                    assert (REPO / src).exists(), f"{dockerfile.name}: COPY {src} (context: the repository root)"


def test_bind_mounts_exist(services: dict[str, Any], compose: dict[str, Any]) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source} (relative to deploy/)"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_whoever_is_waited_for_has_a_health_check(services: dict[str, Any]) -> None:
    waited = 0
    for name, svc in services.items():
        for dep, spec in (svc.get("depends_on") or {}).items():
            waited += 1
            target = services[dep]
            condition = spec["condition"]
            if condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{name} waits for one-shot {dep}, which must not restart"
            else:
                assert condition == "service_healthy", f"{name} -> {dep}: {condition} does not wait for readiness"
                assert target.get("healthcheck", {}).get("test"), f"{dep} is waited for but has no health check"
    assert waited >= 10


def test_triton_gets_a_gpu_and_the_gpu_copy_of_the_model_repository(services: dict[str, Any],
                                                                   finmon_parser: Any) -> None:
    triton, writer = services["triton"], services["triton-repository"]
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] for d in devices)
    volume, target = triton["volumes"][0].split(":")[:2]
    assert f"--model-repository={target}" in triton["command"]
    assert triton["depends_on"]["triton-repository"]["condition"] == "service_completed_successfully"
    args = finmon_parser.parse_args(writer["command"])
    assert args.kind == "gpu" and str(args.source) == "/app/models/triton"  # where deploy/Dockerfile puts it
    assert f"{volume}:{args.out}" in writer["volumes"]
    assert "RUN mkdir /models && chown finmon /models" in (DEPLOY / "Dockerfile").read_text()
    config = REPO / "models" / "triton" / MODEL_NAME / "config.pbtxt"
    assert re.search(rf'^name: "{MODEL_NAME}"', config.read_text(), re.M), config
    assert "onnxruntime" in config.read_text()


def test_grafana_gets_the_pinned_plugin_and_the_built_provisioning(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    dockerfile = (DEPLOY / grafana["build"]["context"] / grafana["build"]["dockerfile"]).read_text()
    assert f"CLICKHOUSE_PLUGIN_VERSION={CLICKHOUSE_PLUGIN_VERSION}" in dockerfile
    assert "grafana-clickhouse-datasource ${CLICKHOUSE_PLUGIN_VERSION}" in dockerfile
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("."))
    assert (DEPLOY / next(s for s, t in mounts.items() if t == DASHBOARDS_PATH)).resolve() == GENERATED / "dashboards"
    assert (DEPLOY / next(s for s, t in mounts.items() if t == "/etc/grafana/provisioning")).resolve() == \
        GENERATED / "provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(DASHBOARDS_PATH) and (GENERATED / "dashboards" / Path(home).name).is_file()
    # the provisioned datasource expands this variable: Grafana must have it
    settings = GrafanaSettings()
    assert settings.clickhouse_password_env in grafana["environment"]
    assert "${" + settings.clickhouse_password_env + "}" in build(settings)["provisioning/datasources/finmon.yaml"]


def test_clickhouse_users_take_their_passwords_from_the_environment(services: dict[str, Any]) -> None:
    users = (DEPLOY / "clickhouse" / "users.xml").read_text()
    for var in re.findall(r'from_env="(\w+)"', users):
        assert var in services["clickhouse"]["environment"]
    assert f"<{GrafanaSettings().clickhouse_username}>" in users and "<readonly>1</readonly>" in users


def test_finmon_services_run_real_commands_with_real_settings(
    services: dict[str, Any], finmon_parser: Any, settings_fields: dict[str, set[str]]
) -> None:
    finmon = {n: s for n, s in services.items() if s["image"] == FINMON_IMAGE}
    assert {"migrate", "ingest", "alerts"} <= set(finmon)
    for name, svc in finmon.items():
        args = finmon_parser.parse_args(svc["command"])  # SystemExit here: finmon has no such command
        assert callable(args.handler), name
        for var in svc.get("environment", {}):
            prefix = next((p for p in settings_fields if var.startswith(p)), None)
            if prefix:
                assert var[len(prefix):].lower() in settings_fields[prefix], f"{name}: {var} is no setting"


def test_every_interpolated_variable_is_documented_in_the_env_example() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    example = {line.split("=")[0] for line in (DEPLOY / ".env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#")}
    assert used and used <= example, used - example


def test_prometheus_scrapes_the_ingest_workers_metrics_port(services: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "finmon-ingest")
    sd = job["dns_sd_configs"][0]
    assert sd["names"] == ["ingest"] and "ingest" in services
    assert str(sd["port"]) == services["ingest"]["environment"]["FINMON_INGEST_METRICS_PORT"]
    assert services["ingest"]["environment"]["FINMON_INGEST_METRICS_HOST"] == "0.0.0.0"
    assert str(sd["port"]) in " ".join(services["ingest"]["healthcheck"]["test"])


def test_ingest_workers_do_not_outnumber_the_partitions(services: dict[str, Any]) -> None:
    command = " ".join(services["kafka-init"]["command"])
    assert "--partitions" in command and "$$PARTITIONS" in command
    default = int(re.search(r"FINMON_PARTITIONS:-(\d+)", services["kafka-init"]["environment"]["PARTITIONS"])[1])
    assert services["ingest"]["deploy"]["replicas"] <= default
    assert "ingest" not in {d for s in services.values() for d in (s.get("depends_on") or {})} or \
        services["ingest"].get("healthcheck")
