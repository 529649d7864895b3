"""Generic JSON webhook, signed so the receiver can trust it and drop replays and duplicates.

Headers: ``X-Finmon-Timestamp`` (unix seconds), ``X-Finmon-Signature: sha256=<hex HMAC-SHA256(secret,
timestamp + "." + raw body)>`` and ``X-Finmon-Delivery`` (stable across retries and restarts: the receiver's
idempotency key). Verify by recomputing the HMAC over the raw bytes received and rejecting old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from alerts.message import Message
from alerts.notifiers.transport import json_body, post
from alerts.rules import Channel


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send(channel: Channel, message: Message, delivery_id: str, timeout: float) -> None:
    body = json_body({"delivery_id": delivery_id, "message_id": message.id, **message.payload})
    timestamp = str(int(time.time()))
    headers = {"X-Finmon-Timestamp": timestamp, "X-Finmon-Delivery": delivery_id, "User-Agent": "finmon-alerts"}
    secret = channel.secret("secret", required=False)
    if secret:
        headers["X-Finmon-Signature"] = signature(secret, timestamp, body)
    post(channel.secret("url") or "", body, headers=headers, timeout=timeout, service=f"webhook:{channel.name}")
