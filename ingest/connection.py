"""A first connection to Kafka that fails fast and says why: refused credentials, an untrusted certificate, or no
broker at the address.

Both Kafka clients retry a refused login until a timeout and then report only "unable to bootstrap" (kafka-python
after 30 s), so the worker, ``finmon produce`` and ``finmon poll`` open one connection with aiokafka's
``create_conn`` first: its exception carries the broker's answer. The password is never part of a message.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError

from ingest.settings import IngestSettings, KafkaUnavailable

log = logging.getLogger(__name__)


class KafkaAuthenticationFailed(KafkaUnavailable):
    """The broker refused the SASL credentials (or the client refused the broker's certificate)."""


def _hosts(bootstrap_servers: str) -> list[tuple[str, int]]:
    hosts = []
    for item in filter(None, (part.strip() for part in bootstrap_servers.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise KafkaUnavailable(f"invalid bootstrap server {item!r}: expected host:port")
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise KafkaUnavailable("no Kafka bootstrap servers configured (FINMON_INGEST_BOOTSTRAP_SERVERS)")
    return hosts


def classify(settings: IngestSettings, exc: BaseException) -> KafkaUnavailable:
    """The finmon error for a failed first connection, phrased for the operator."""
    text = f"{type(exc).__name__}: {exc}"
    where = f"Kafka at {settings.bootstrap_servers}"
    if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
        return KafkaAuthenticationFailed(
            f"{where} refused the credentials of user {settings.sasl_username!r} ({settings.sasl_mechanism}): "
            "check FINMON_INGEST_SASL_USERNAME and the password")
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return KafkaAuthenticationFailed(f"{where}: its TLS certificate is not trusted ({exc}); check "
                                         "FINMON_INGEST_SSL_CAFILE")
    if isinstance(exc, ssl.SSLError):
        return KafkaUnavailable(f"{where}: TLS handshake failed ({exc}); is the listener SSL/SASL_SSL?")
    return KafkaUnavailable(f"cannot reach {where}: {text}")


async def probe_kafka(settings: IngestSettings, timeout_s: float = 15.0) -> None:
    """Open and close one connection to the first bootstrap server that answers; raise KafkaUnavailable (or
    KafkaAuthenticationFailed) with the reason when none does."""
    security = settings.kafka_security()
    last: BaseException | None = None
    for host, port in _hosts(settings.bootstrap_servers):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, client_id=f"{settings.client_id}-probe",
                            request_timeout_ms=int(timeout_s * 1000), **security),
                timeout_s)
        except (OSError, asyncio.TimeoutError, KafkaError) as exc:
            error = classify(settings, exc)
            if isinstance(error, KafkaAuthenticationFailed):
                raise error from exc  # another broker of the cluster would say the same
            log.debug("%s:%d: %s", host, port, error)
            last = exc
            continue
        conn.close()
        return
    assert last is not None
    raise classify(settings, last) from last


def probe_kafka_sync(settings: IngestSettings, timeout_s: float = 15.0) -> None:
    """``probe_kafka`` for synchronous callers (kafka-python producers), also when called from inside a running
    event loop (then on a thread with its own loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(probe_kafka(settings, timeout_s))
        return
    with ThreadPoolExecutor(1, thread_name_prefix="kafka-probe") as pool:
        pool.submit(asyncio.run, probe_kafka(settings, timeout_s)).result()
