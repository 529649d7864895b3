"""Hosted chat robots: Slack incoming webhook, Feishu/Lark custom bot, DingTalk robot, WeCom group robot.

Payloads and signatures follow each vendor's documentation:

* Slack: POST JSON ``{"text": fallback, "blocks": [...]}``; answers ``ok`` (HTTP 200) or an error status.
* Feishu/Lark: POST JSON ``{"timestamp": "<unix s>", "sign": ..., "msg_type": "text", "content": {"text": ...}}``
  where ``sign = base64(HMAC-SHA256(key = timestamp + "\\n" + secret, msg = ""))``; answers ``{"code": 0}``.
* DingTalk: ``&timestamp=<unix ms>&sign=<urlencoded base64(HMAC-SHA256(key = secret,
  msg = timestamp + "\\n" + secret))>`` appended to the robot URL; JSON ``{"msgtype": "markdown",
  "markdown": {"title": ..., "text": ...}}``; answers ``{"errcode": 0}``.
* WeCom: POST JSON ``{"msgtype": "markdown", "markdown": {"content": ...}}`` to the URL carrying ``key``
  (content at most 4096 bytes); answers ``{"errcode": 0}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

from alerts.message import Message
from alerts.notifiers.transport import errcode_verdict, json_body, post
from alerts.rules import Channel

SLACK_TEXT_LIMIT = 3000  # a section block's text limit
WECOM_MARKDOWN_BYTES = 4096
# Rate-limit / busy codes worth retrying: DingTalk 130101 (send too fast), WeCom 45009 (api freq), Feishu 9499
# and 11232 (frequency limited).
DINGTALK_RETRY = frozenset({130101})
WECOM_RETRY = frozenset({45009, -1})
FEISHU_RETRY = frozenset({9499, 11232})


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def send_slack(channel: Channel, message: Message, delivery_id: str, timeout: float) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(message.title, 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(_slack_mrkdwn(message.markdown),
                                                                     SLACK_TEXT_LIMIT)}},
    ]
    body = json_body({"text": _clip(message.text, 40000), "blocks": blocks})
    post(channel.secret("url") or "", body, headers={}, timeout=timeout, service=f"slack:{channel.name}")


def _slack_mrkdwn(markdown: str) -> str:
    """Slack's mrkdwn: *bold* and <url|label> links instead of **bold** and [label](url)."""
    import re

    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", markdown)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"<\2|\1>", text)


def feishu_sign(timestamp: str, secret: str) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def send_feishu(channel: Channel, message: Message, delivery_id: str, timeout: float) -> None:
    payload: dict[str, object] = {"msg_type": "text", "content": {"text": message.text}}
    secret = channel.secret("secret", required=False)
    if secret:
        timestamp = str(int(time.time()))
        payload = {"timestamp": timestamp, "sign": feishu_sign(timestamp, secret), **payload}
    post(channel.secret("url") or "", json_body(payload), headers={}, timeout=timeout,
         verdict=errcode_verdict("code", FEISHU_RETRY), service=f"feishu:{channel.name}")


def dingtalk_sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def send_dingtalk(channel: Channel, message: Message, delivery_id: str, timeout: float) -> None:
    url = channel.secret("url") or ""
    secret = channel.secret("secret", required=False)
    if secret:
        timestamp = str(int(time.time() * 1000))
        url = f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={dingtalk_sign(timestamp, secret)}"
    payload = {"msgtype": "markdown", "markdown": {"title": _clip(message.title, 64), "text": message.markdown}}
    post(url, json_body(payload), headers={}, timeout=timeout, verdict=errcode_verdict("errcode", DINGTALK_RETRY),
         service=f"dingtalk:{channel.name}")


def send_wecom(channel: Channel, message: Message, delivery_id: str, timeout: float) -> None:
    content = message.markdown.encode("utf-8")[:WECOM_MARKDOWN_BYTES].decode("utf-8", errors="ignore")
    payload = {"msgtype": "markdown", "markdown": {"content": content}}
    post(channel.secret("url") or "", json_body(payload), headers={}, timeout=timeout,
         verdict=errcode_verdict("errcode", WECOM_RETRY), service=f"wecom:{channel.name}")
