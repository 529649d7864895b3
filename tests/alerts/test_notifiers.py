"""Each notifier against a real local server: aiosmtpd (STARTTLS, implicit TLS, AUTH) and an HTTP receiver that
checks what each vendor documents (payload shape, signature) and answers as the vendor does on failure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime

import pytest

from alerts.detection import Severity
from alerts.errors import NotifyError
from alerts.message import Evidence, Headline, compose
from alerts.notifiers import sender
from alerts.rules import parse
from alerts.tracker import FIRING, Event, Subject
from tests.fixtures.notify import IMPLICIT_TLS_WARNING, SMTP_PASSWORD, SMTP_USER, Request

SECRET = "SECdeadbeef-not-a-real-secret"
TOKEN = "tok-0123456789abcdef"


def _message(long: bool = False):
    at = datetime(2026, 11, 9, 14, 45, tzinfo=UTC)
    event = Event(Subject("entity", "wfc", "Wells Fargo"), FIRING, Severity.CRITICAL, at, at,
                  {"window_minutes": 30, "docs": 60, "negatives": 41, "share": 0.68, "expected_share": 0.2,
                   "expected_negatives": 9.5, "ratio": 3.4, "count_ratio": 4.3, "pvalue": 1e-12})
    heads = tuple(Headline(f"Wells Fargo fined over accounts, part {i} " + ("x" * 300 if long else ""),
                           f"https://news.test/{i}") for i in range(3 if not long else 30))
    return compose([(event, Evidence(heads, (("Wells Fargo", 41), ("CFPB", 12))))], "https://grafana.test/d/finmon")


def _channel(kind: str, monkeypatch: pytest.MonkeyPatch, url: str, **options):
    monkeypatch.setenv("T_URL", url)
    monkeypatch.setenv("T_SECRET", SECRET)
    spec = {"type": kind, "url_env": "T_URL", "secret_env": "T_SECRET", **options}
    return parse({"channels": {"c": spec}, "routes": [{"channels": ["c"]}]}).channels["c"]


def _vendor_error(code_field: str, code: int, msg: str) -> tuple[int, bytes]:
    return 200, json.dumps({code_field: code, "msg" if code_field == "code" else "errmsg": msg}).encode()


# --- Feishu/Lark custom bot: sign = base64(HMAC-SHA256(key = f"{timestamp}\n{secret}", msg = b"")) in the body.
def _feishu(req: Request) -> tuple[int, bytes]:
    body = req.json()
    ts = body.get("timestamp", "")
    expected = base64.b64encode(hmac.new(f"{ts}\n{SECRET}".encode(), b"", hashlib.sha256).digest()).decode()
    if not ts.isdigit() or abs(int(ts) - time.time()) > 3600 or body.get("sign") != expected:
        return _vendor_error("code", 19021, "sign match fail or timestamp is not within one hour from current time")
    if body.get("msg_type") != "text" or not body.get("content", {}).get("text"):
        return _vendor_error("code", 9499, "Bad Request")
    return 200, b'{"code":0,"msg":"success","data":{}}'


def test_feishu_signs_the_body_as_documented(receiver, monkeypatch) -> None:
    receiver.respond = _feishu
    channel = _channel("feishu", monkeypatch, f"{receiver.url}/open-apis/bot/v2/hook/{TOKEN}")
    sender(channel)(channel, _message(), "d1", 5.0)
    [req] = receiver.requests
    assert "Wells Fargo" in req.json()["content"]["text"] and "https://news.test/0" in req.json()["content"]["text"]


def test_feishu_signature_refusal_is_not_retried(receiver, monkeypatch) -> None:
    receiver.respond = _feishu
    channel = _channel("feishu", monkeypatch, f"{receiver.url}/hook")
    monkeypatch.setenv("T_SECRET", "another-secret")  # the receiver still checks against SECRET
    with pytest.raises(NotifyError) as err:
        sender(channel)(channel, _message(), "d1", 5.0)
    assert not err.value.retryable and "19021" in str(err.value)


# --- DingTalk robot: &timestamp=<ms>&sign=urlencode(base64(HMAC-SHA256(key=secret, msg=f"{ts}\n{secret}"))).
def _dingtalk(req: Request) -> tuple[int, bytes]:
    ts = req.query.get("timestamp", [""])[0]
    sign = req.query.get("sign", [""])[0]  # parse_qs has already url-decoded it
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest())
    if req.query.get("access_token") != [TOKEN] or not ts.isdigit() or abs(int(ts) / 1000 - time.time()) > 3600:
        return _vendor_error("errcode", 310000, "invalid timestamp or token")
    if sign != expected.decode():
        return _vendor_error("errcode", 310000, "sign not match")
    body = req.json()
    if body.get("msgtype") != "markdown" or not {"title", "text"} <= set(body.get("markdown", {})):
        return _vendor_error("errcode", 40035, "missing parameter")
    return 200, b'{"errcode":0,"errmsg":"ok"}'


def test_dingtalk_signs_the_url_as_documented(receiver, monkeypatch) -> None:
    receiver.respond = _dingtalk
    channel = _channel("dingtalk", monkeypatch, f"{receiver.url}/robot/send?access_token={TOKEN}")
    sender(channel)(channel, _message(), "d1", 5.0)
    [req] = receiver.requests
    assert req.path == "/robot/send"
    assert "[Wells Fargo fined over accounts, part 0 ](https://news.test/0)" in req.json()["markdown"]["text"]


def test_dingtalk_rate_limit_is_retryable(receiver, monkeypatch) -> None:
    receiver.respond = lambda req: _vendor_error("errcode", 130101, "send too fast")
    channel = _channel("dingtalk", monkeypatch, f"{receiver.url}/robot/send?access_token={TOKEN}")
    with pytest.raises(NotifyError) as err:
        sender(channel)(channel, _message(), "d1", 5.0)
    assert err.value.retryable


# --- WeCom group robot: key in the URL, {"msgtype": "markdown", "markdown": {"content": <= 4096 bytes}}.
def _wecom(req: Request) -> tuple[int, bytes]:
    body = req.json()
    if req.query.get("key") != [TOKEN]:
        return _vendor_error("errcode", 93000, "invalid webhook url")
    content = body.get("markdown", {}).get("content", "")
    if body.get("msgtype") != "markdown" or not content or len(content.encode()) > 4096:
        return _vendor_error("errcode", 40058, "markdown.content exceed max length 4096")
    return 200, b'{"errcode":0,"errmsg":"ok"}'


@pytest.mark.parametrize("long", [False, True])
def test_wecom_markdown_within_the_documented_size(receiver, monkeypatch, long: bool) -> None:
    receiver.respond = _wecom
    channel = _channel("wecom", monkeypatch, f"{receiver.url}/cgi-bin/webhook/send?key={TOKEN}")
    sender(channel)(channel, _message(long=long), "d1", 5.0)
    assert "Wells Fargo" in receiver.requests[0].json()["markdown"]["content"]


# --- Slack incoming webhook: JSON with text (fallback) and blocks; "ok" on success, 4xx text on errors.
def _slack(req: Request) -> tuple[int, bytes]:
    body = req.json()
    blocks = body.get("blocks", [])
    if not body.get("text") or not blocks:
        return 400, b"no_text"
    if any(b["type"] == "section" and len(b["text"]["text"]) > 3000 for b in blocks):
        return 400, b"invalid_blocks"
    if any(b["type"] == "header" and (b["text"]["type"] != "plain_text" or len(b["text"]["text"]) > 150)
           for b in blocks):
        return 400, b"invalid_blocks"
    return 200, b"ok"


def test_slack_text_and_blocks(receiver, monkeypatch) -> None:
    receiver.respond = _slack
    channel = _channel("slack", monkeypatch, f"{receiver.url}/services/T000/B000/{TOKEN}")
    sender(channel)(channel, _message(long=True), "d1", 5.0)
    section = receiver.requests[0].json()["blocks"][1]["text"]
    assert section["type"] == "mrkdwn" and "<https://news.test/0|" in section["text"]


def test_slack_client_error_is_not_retried_server_error_is(receiver, monkeypatch) -> None:
    channel = _channel("slack", monkeypatch, f"{receiver.url}/services/x")
    receiver.respond = lambda req: (404, b"no_service")
    with pytest.raises(NotifyError) as err:
        sender(channel)(channel, _message(), "d1", 5.0)
    assert not err.value.retryable
    receiver.respond = lambda req: (503, b"")
    with pytest.raises(NotifyError) as err:
        sender(channel)(channel, _message(), "d1", 5.0)
    assert err.value.retryable


# --- Generic webhook: HMAC-SHA256(secret, timestamp + "." + raw body), delivery id header.
def test_webhook_signature_verifies_over_the_raw_body(receiver, monkeypatch) -> None:
    channel = _channel("webhook", monkeypatch, f"{receiver.url}/finmon")
    sender(channel)(channel, _message(), "delivery-42", 5.0)
    [req] = receiver.requests
    ts = req.headers["x-finmon-timestamp"]
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-finmon-signature"] == f"sha256={expected}"
    assert req.headers["x-finmon-delivery"] == "delivery-42"
    alert = req.json()["alerts"][0]
    assert alert["subject"] == {"kind": "entity", "name": "wfc", "display": "Wells Fargo"}
    assert alert["severity"] == "critical" and alert["dashboard"].startswith("https://grafana.test/d/finmon?")


def test_no_secret_reaches_the_logs(receiver, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.respond = lambda req: (500, b"")
    for kind, url in (("dingtalk", f"{receiver.url}/robot/send?access_token={TOKEN}"),
                      ("webhook", f"{receiver.url}/{TOKEN}")):
        channel = _channel(kind, monkeypatch, url)
        with pytest.raises(NotifyError) as err:
            sender(channel)(channel, _message(), "d1", 5.0)
        logging.getLogger("test").warning("failed: %s", err.value)
    assert TOKEN not in caplog.text and SECRET not in caplog.text


# --- Email over real SMTP servers.
def _mail_channel(monkeypatch, box, tls_cert, security: str, password: str = SMTP_PASSWORD):
    monkeypatch.setenv("T_USER", SMTP_USER)
    monkeypatch.setenv("T_PASSWORD", password)
    spec = {"type": "email", "host": box.host, "port": box.port, "security": security, "ca_file": str(tls_cert[0]),
            "sender": "finmon@bank.test", "recipients": ["risk@bank.test", "ir@bank.test"],
            "username_env": "T_USER", "password_env": "T_PASSWORD"}
    return parse({"channels": {"m": spec}, "routes": [{"channels": ["m"]}]}).channels["m"]


def _check_mail(box) -> None:
    [mail] = box.messages
    assert box.tls_seen == [True] and box.auth_logins == [SMTP_USER]
    assert mail["Subject"].startswith("[CRITICAL]") and mail["To"] == "risk@bank.test, ir@bank.test"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mail.walk() if not p.is_multipart()}
    assert "Wells Fargo" in parts["text/plain"] and '<a href="https://news.test/0">' in parts["text/html"]
    assert "delivery-7" in mail["Message-ID"]


def test_email_starttls_with_auth(smtp_starttls, tls_cert, monkeypatch) -> None:
    channel = _mail_channel(monkeypatch, smtp_starttls, tls_cert, "starttls")
    sender(channel)(channel, _message(), "delivery-7", 10.0)
    _check_mail(smtp_starttls)


@pytest.mark.filterwarnings(IMPLICIT_TLS_WARNING)
def test_email_implicit_tls_with_auth(smtp_implicit_tls, tls_cert, monkeypatch) -> None:
    channel = _mail_channel(monkeypatch, smtp_implicit_tls, tls_cert, "ssl")
    sender(channel)(channel, _message(), "delivery-7", 10.0)
    _check_mail(smtp_implicit_tls)


def test_email_wrong_password_is_refused_and_not_retried(smtp_starttls, tls_cert, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    channel = _mail_channel(monkeypatch, smtp_starttls, tls_cert, "starttls", password="wrong-password-xyz")
    with pytest.raises(NotifyError) as err:
        sender(channel)(channel, _message(), "delivery-7", 10.0)
    assert not err.value.retryable and smtp_starttls.messages == []
    assert "wrong-password-xyz" not in caplog.text and "wrong-password-xyz" not in str(err.value)


@pytest.mark.filterwarnings(IMPLICIT_TLS_WARNING)
def test_email_refuses_an_untrusted_certificate(smtp_implicit_tls, tls_cert, monkeypatch) -> None:
    channel = _mail_channel(monkeypatch, smtp_implicit_tls, tls_cert, "ssl")
    channel.options.pop("ca_file")
    with pytest.raises(NotifyError):
        sender(channel)(channel, _message(), "delivery-7", 10.0)
    assert smtp_implicit_tls.messages == []


def test_cli_test_notify_sends_to_the_named_channel(receiver, monkeypatch, tmp_path, capsys) -> None:
    from finmon.cli import main

    rules = tmp_path / "rules.yaml"
    rules.write_text("channels:\n  hook: {type: webhook, url_env: T_URL, secret_env: T_SECRET}\n"
                     "routes:\n  - channels: [hook]\n")
    monkeypatch.setenv("T_URL", f"{receiver.url}/x")
    monkeypatch.setenv("T_SECRET", SECRET)
    assert main(["alerts", "test-notify", "hook", "--rules", str(rules)]) == 0
    assert "test notification" in receiver.requests[0].json()["alerts"][0]["headlines"][0]["title"]
    assert main(["alerts", "test-notify", "nope", "--rules", str(rules)]) == 2  # a clear error, not a traceback
