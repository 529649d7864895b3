"""Notifiers: one module per channel type, each a function ``send(channel, message, delivery_id, timeout)``.

A notifier either returns (the service accepted the message) or raises ``NotifyError``; ``retryable`` tells
the delivery loop whether another attempt can help. ``delivery_id`` is stable across retries and restarts;
services that accept an idempotency key receive it.
"""

from __future__ import annotations

from collections.abc import Callable

from alerts.errors import RulesError
from alerts.message import Message
from alerts.rules import Channel

Send = Callable[[Channel, Message, str, float], None]


def sender(channel: Channel) -> Send:
    from alerts.notifiers import chat, console, mail, webhook

    table: dict[str, Send] = {
        "console": console.send, "email": mail.send, "webhook": webhook.send, "slack": chat.send_slack,
        "feishu": chat.send_feishu, "dingtalk": chat.send_dingtalk, "wecom": chat.send_wecom,
    }
    try:
        return table[channel.type]
    except KeyError as exc:
        raise RulesError(f"channel {channel.name!r}: no notifier for type {channel.type!r}") from exc
