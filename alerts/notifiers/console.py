"""The console channel: the message goes to the log (local runs, the demo)."""

from __future__ import annotations

import logging

from alerts.message import Message
from alerts.rules import Channel

log = logging.getLogger(__name__)


def send(channel: Channel, message: Message, delivery_id: str, timeout: float) -> None:
    log.warning("ALERT %s [%s]\n%s", message.title, delivery_id, message.text)
