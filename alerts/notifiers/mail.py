"""Email over SMTP: STARTTLS (587), implicit TLS (465) or plain (tests, relays on localhost); AUTH when a
username is configured; a multipart/alternative body with plain-text and HTML parts.

Options: host, port, security (starttls | ssl | none), sender, recipients, ca_file (a private CA, e.g. the
bank's relay), verify (default true). Secrets: username_env, password_env.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from alerts.errors import NotifyError, RulesError
from alerts.message import Message
from alerts.rules import Channel


def _context(channel: Channel) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=channel.options.get("ca_file"))
    if not channel.options.get("verify", True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build(channel: Channel, message: Message, delivery_id: str) -> EmailMessage:
    recipients = channel.options.get("recipients") or []
    sender = channel.options.get("sender")
    if not recipients or not sender:
        raise RulesError(f"channel {channel.name!r}: email needs 'sender' and 'recipients'")
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    # Stable across retries: a mail system that sees the same Message-ID twice can drop the copy.
    mail["Message-ID"] = make_msgid(idstring=delivery_id, domain="finmon.alerts")
    mail["X-Finmon-Delivery"] = delivery_id
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return mail


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN when offered (one attempt, one clear answer), else smtplib's own choice of mechanism."""
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the server offers no AUTH (is TLS required first?)")
    if "PLAIN" in smtp.esmtp_features["auth"].upper().split():
        smtp.user, smtp.password = username, password
        smtp.auth("PLAIN", smtp.auth_plain)
    else:
        smtp.login(username, password)


def send(channel: Channel, message: Message, delivery_id: str, timeout: float) -> None:
    opts = channel.options
    security = str(opts.get("security", "starttls")).lower()
    if security not in ("starttls", "ssl", "none"):
        raise RulesError(f"channel {channel.name!r}: security must be starttls, ssl or none")
    host, port = str(opts.get("host", "localhost")), int(opts.get("port", 465 if security == "ssl" else 587))
    mail = build(channel, message, delivery_id)
    username = channel.secret("username", required=False)
    try:
        if security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_context(channel))
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if security == "starttls":
                smtp.starttls(context=_context(channel))
                smtp.ehlo()
            if username:
                _login(smtp, username, channel.secret("password") or "")
            smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyError(f"email:{channel.name}: authentication refused ({exc.smtp_code})", retryable=False,
                          code=str(exc.smtp_code)) from None
    except smtplib.SMTPResponseException as exc:
        raise NotifyError(f"email:{channel.name}: SMTP {exc.smtp_code}", retryable=exc.smtp_code < 500,
                          code=str(exc.smtp_code)) from None
    except (smtplib.SMTPException, ssl.SSLError, socket.timeout, OSError) as exc:
        raise NotifyError(f"email:{channel.name}: {type(exc).__name__}: {exc}", retryable=True) from None
