"""deploy/kustomization.yaml and deploy/k8s/ (checked by parsing): every resource file exists and parses, every
container has probes and resources, Triton asks for a GPU, Secrets/ConfigMaps/Services/HPA point at things that
exist, and the ingest workers cannot scale past the Kafka partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def docs(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for resource in kustomization["resources"]:
        path = DEPLOY / resource
        assert path.is_file(), resource
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _containers(doc: dict[str, Any], init: bool = True) -> list[dict[str, Any]]:
    spec = _pod(doc)
    return spec["containers"] + (spec.get("initContainers", []) if init else [])


def test_every_document_is_a_named_kubernetes_object(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        assert d["apiVersion"] and d["kind"] and d["metadata"]["name"], d
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names))
    assert {"finmon-ingest", "finmon-alerts", "triton", "grafana", "prometheus"} <= set(_kind(docs, "Deployment"))
    assert {"kafka", "clickhouse"} <= set(_kind(docs, "StatefulSet"))
    assert {"finmon-migrate", "kafka-topics"} <= set(_kind(docs, "Job"))


def test_generated_configmaps_come_from_existing_files(kustomization: dict[str, Any]) -> None:
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (DEPLOY / entry.split("=")[-1]).is_file(), entry


def test_containers_have_resources_and_long_running_ones_have_probes(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        for c in _containers(d):
            assert c["resources"]["requests"] and c["resources"]["limits"], (d["metadata"]["name"], c["name"])
            assert ":" in c["image"] and not c["image"].endswith(":latest")
        if d["kind"] != "Job":
            for c in _containers(d, init=False):
                assert c.get("readinessProbe") and c.get("livenessProbe"), (d["metadata"]["name"], c["name"])


def test_probes_and_services_use_declared_ports(docs: list[dict[str, Any]]) -> None:
    workloads = [d for d in docs if d["kind"] in WORKLOADS - {"Job"}]
    for d in workloads:
        for c in _containers(d, init=False):
            ports = {p["containerPort"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                spec = c.get(probe, {})
                port = (spec.get("httpGet") or spec.get("tcpSocket") or {}).get("port")
                assert port is None or port in ports, (d["metadata"]["name"], probe, port)
    for name, svc in _kind(docs, "Service").items():
        targets = [d for d in workloads
                   if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                          for k, v in svc["spec"]["selector"].items())]
        assert targets, f"Service {name} selects no pods"
        ports = {p["containerPort"] for d in targets for c in _containers(d, init=False) for p in c.get("ports", [])}
        assert {p.get("targetPort", p["port"]) for p in svc["spec"]["ports"]} <= ports, name


def test_triton_requests_a_gpu_and_gets_the_model_repository(docs: list[dict[str, Any]], finmon_parser: Any) -> None:
    triton = _kind(docs, "Deployment")["triton"]
    container = _pod(triton)["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert f"--model-repository={mounts['models']}" in container["args"]
    init = _pod(triton)["initContainers"][0]
    args = finmon_parser.parse_args(init["args"])  # the GPU copy of the repository: the same weights, fp32
    assert args.kind == "gpu" and str(args.source) == "/app/models/triton"  # where deploy/Dockerfile puts it
    assert {m["mountPath"] for m in init["volumeMounts"] if m["name"] == "models"} == {str(args.out)}
    assert "COPY models ./models" in (DEPLOY / "Dockerfile").read_text() and "WORKDIR /app" in \
        (DEPLOY / "Dockerfile").read_text()


def test_secrets_and_configmaps_referenced_exist(docs: list[dict[str, Any]], kustomization: dict[str, Any]) -> None:
    example = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    secrets = {example["metadata"]["name"]: set(example["stringData"])}
    configmaps = {g["name"] for g in kustomization["configMapGenerator"]}
    refs = 0
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        for c in _containers(d):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs += 1
                    assert ref["key"] in secrets.get(ref["name"], set()), (d["metadata"]["name"], ref)
        for volume in _pod(d).get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, volume
    assert refs >= 6


def test_no_secret_value_is_written_into_a_manifest(docs: list[dict[str, Any]]) -> None:
    for d in docs:
        assert d["kind"] != "Secret", "Secrets are created out of band (k8s/secret.example.yaml)"
        for c in (_containers(d) if d["kind"] in WORKLOADS else []):
            for env in c.get("env", []):
                if any(w in env["name"] for w in ("PASSWORD", "DSN", "WEBHOOK", "TOKEN")):
                    assert "valueFrom" in env, (d["metadata"]["name"], env["name"])


def test_ingest_autoscaling_is_bound_by_the_partitions(docs: list[dict[str, Any]]) -> None:
    hpa = _kind(docs, "HorizontalPodAutoscaler")["finmon-ingest"]
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] in _kind(docs, "Deployment")
    topics = _pod(_kind(docs, "Job")["kafka-topics"])["containers"][0]
    partitions = int(next(e["value"] for e in topics["env"] if e["name"] == "PARTITIONS"))
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    assert _kind(docs, "Deployment")["finmon-alerts"]["spec"]["replicas"] == 1


def test_finmon_containers_run_real_commands_with_real_settings(
    docs: list[dict[str, Any]], finmon_parser: Any, settings_fields: dict[str, set[str]]
) -> None:
    seen = 0
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        for c in _containers(d, init=False):
            if c["image"].split(":")[0] != "finmon":
                continue
            seen += 1
            assert callable(finmon_parser.parse_args(c["args"]).handler)
            for env in c.get("env", []):
                prefix = next((p for p in settings_fields if env["name"].startswith(p)), None)
                if prefix:
                    assert env["name"][len(prefix):].lower() in settings_fields[prefix], env["name"]
    assert seen == 3  # migrate, ingest, alerts


def test_prometheus_scrapes_the_ingest_headless_service(docs: list[dict[str, Any]]) -> None:
    config = yaml.safe_load((DEPLOY / "k8s" / "prometheus.yml").read_text())
    sd = next(j for j in config["scrape_configs"] if j["job_name"] == "finmon-ingest")["dns_sd_configs"][0]
    service = _kind(docs, "Service")[sd["names"][0]]
    assert service["spec"]["clusterIP"] == "None" and sd["port"] in {p["port"] for p in service["spec"]["ports"]}


def test_the_alerts_probe_passes_only_while_the_worker_checkpoints(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """The alerts worker has no HTTP endpoint; its probe script reads the detector checkpoint from ClickHouse.
    Run it for real against an embedded ClickHouse: no checkpoint -> unhealthy; a fresh one -> healthy."""
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime

    from alerts import history
    from ingest.store import Store

    container = _pod(_kind(docs, "Deployment")["finmon-alerts"])["containers"][0]
    command = container["livenessProbe"]["exec"]["command"]
    assert command == container["readinessProbe"]["exec"]["command"] and command[:2] == ["python", "-c"]
    dsn = f"chdb://{tmp_path / 'chdb'}"
    env = {**os.environ, "FINMON_ALERTS_CLICKHOUSE_DSN": dsn, "FINMON_ALERTS_CLICKHOUSE_DATABASE": "finmon"}

    def probe() -> int:  # a separate process, as kubelet runs it (and chdb allows one process per data dir)
        return subprocess.run([sys.executable, "-c", command[2]], env=env, timeout=300, capture_output=True).returncode

    with Store.open(dsn, "finmon") as store:
        store.migrate()
        history.migrate(store)
    assert probe() == 1
    with Store.open(dsn, "finmon") as store:
        history.save_state(store, {}, datetime.now(UTC))
    assert probe() == 0
