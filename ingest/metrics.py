"""Prometheus metrics of the ingest stage (names are a contract with dashboards/) and the small HTTP server
that exposes ``/metrics`` and ``/healthz``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from inference.errors import ConfigError

log = logging.getLogger(__name__)

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class IngestMetrics:
    """The ingest metrics on one registry (tests pass a fresh ``CollectorRegistry``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else REGISTRY
        r = self.registry
        self.documents = Counter("finmon_documents_total", "Documents by outcome (stored, duplicate, dead_letter)",
                                 ["source", "kind", "outcome"], registry=r)
        self.dead_letters = Counter("finmon_dead_letters_total", "Messages sent to a dead-letter topic",
                                    ["reason"], registry=r)
        self.batch_size = Histogram("finmon_batch_size", "Documents per micro-batch",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.inference_seconds = Histogram("finmon_inference_seconds", "Model time per micro-batch",
                                           buckets=_SECONDS, registry=r)
        self.insert_seconds = Histogram("finmon_clickhouse_insert_seconds", "ClickHouse insert time per batch",
                                        buckets=_SECONDS, registry=r)
        self.consumer_lag = Gauge("finmon_consumer_lag", "Messages behind the end of the partition",
                                  ["topic", "partition"], registry=r)
        self.backpressure_pauses = Counter("finmon_backpressure_pauses_total",
                                           "Consumption pauses because a downstream stage was unavailable",
                                           ["cause"], registry=r)


_default: IngestMetrics | None = None


def default_metrics() -> IngestMetrics:
    """The process-wide metrics on prometheus_client's default registry (created on first use)."""
    global _default
    if _default is None:
        _default = IngestMetrics()
    return _default


class MetricsServer:
    """Serves ``/metrics`` (Prometheus text format) and ``/healthz`` (200 when ``ready()``, else 503)."""

    def __init__(self, registry: CollectorRegistry, ready: Callable[[], bool], host: str, port: int) -> None:
        registry_, ready_ = registry, ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0] == "/metrics":
                    self._reply(200, generate_latest(registry_), CONTENT_TYPE_LATEST)
                elif self.path.split("?")[0] == "/healthz":
                    ok = ready_()
                    self._reply(200 if ok else 503, b"ok\n" if ok else b"not ready\n", "text/plain")
                else:
                    self._reply(404, b"not found\n", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("metrics http: " + format, *args)

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:  # a port in use, an address not on this machine: the operator's to fix
            raise ConfigError(f"cannot serve /metrics on {host}:{port}: {exc.strerror or exc}") from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="finmon-metrics", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", *self._server.server_address[:2])
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
