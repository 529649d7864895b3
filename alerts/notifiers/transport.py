"""The one HTTP POST all webhook notifiers use, with the error classification they share."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from alerts.errors import NotifyError

log = logging.getLogger(__name__)

class _RedactUrls(logging.Filter):
    """httpx logs every request URL at INFO; for chat robots the URL *is* the credential (token, key)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(_redact(a) if isinstance(a, httpx.URL | str) and "://" in str(a) else a
                                for a in record.args)
        return True


def _redact(url: object) -> str:
    parsed = httpx.URL(str(url))
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}/***"


if not any(isinstance(f, _RedactUrls) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactUrls())

# Returns an error text when the (HTTP 200) response body says the service refused the message, plus whether
# retrying can help; None when accepted.
Verdict = Callable[[httpx.Response], tuple[str, bool] | None]


def post(
    url: str, body: bytes, *, headers: Mapping[str, str], timeout: float, verdict: Verdict | None = None,
    service: str,
) -> httpx.Response:
    """POST ``body``; raise NotifyError on transport errors, non-2xx answers and refusals in the body.

    The URL is never put in an error or a log line: for chat robots it *is* the credential.
    """
    try:
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers},
                              timeout=timeout)
    except httpx.HTTPError as exc:
        raise NotifyError(f"{service}: {type(exc).__name__} while sending", retryable=True) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise NotifyError(f"{service}: HTTP {response.status_code}", retryable=True, code=str(response.status_code))
    if response.status_code >= 300:
        raise NotifyError(f"{service}: HTTP {response.status_code} {response.text[:200]!r}", retryable=False,
                          code=str(response.status_code))
    if verdict is not None:
        refused = verdict(response)
        if refused is not None:
            text, retryable = refused
            raise NotifyError(f"{service}: refused: {text}", retryable=retryable)
    return response


def json_body(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def errcode_verdict(field: str, retry_codes: frozenset[int]) -> Verdict:
    """A verdict for services answering ``{"<field>": 0, ...}`` on success (DingTalk, WeCom, Feishu)."""

    def verdict(response: httpx.Response) -> tuple[str, bool] | None:
        try:
            doc = response.json()
        except ValueError:
            return f"not JSON: {response.text[:200]!r}", True
        code = doc.get(field, doc.get("StatusCode", 0))
        if code in (0, None):
            return None
        return f"{field}={code} {doc.get('errmsg') or doc.get('msg') or ''}".strip(), int(code) in retry_codes

    return verdict
