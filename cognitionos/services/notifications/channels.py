"""Channels: how a rendered notification reaches a destination. Each is a ``Sender``.

Errors are ``ChannelError``: ``retryable`` for timeouts, connection errors, 408, 429 and
5xx; a 4xx that cannot succeed (a bad address, a revoked hook) is final.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, ClassVar, Protocol

import aiosmtplib
import httpx

from cognitionos.config import Settings
from cognitionos.db.models import Channel
from cognitionos.services.notifications.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    webhook_secret,
)
from cognitionos.services.outbound import DestinationRefused, pinned_client

__all__ = ["SENDERS", "ChannelError", "Message", "Outcome", "Sender"]


class ChannelError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Message:
    """What a sender sends: one notification, or a digest of several."""

    id: str
    user_id: str
    channel: Channel
    subject: str | None
    body: str
    data: dict[str, Any]
    priority: str
    created_at: str


class Outcome:
    SENT = "SENT"  # handed over (SMTP, SMS)
    DELIVERED = "DELIVERED"  # the receiver accepted it


class Sender(Protocol):
    channel: ClassVar[Channel]
    needs_destination: ClassVar[bool]

    async def send(self, message: Message, destination: str | None, settings: Settings) -> str:
        """Send; return an ``Outcome``; raise ``ChannelError``."""
        ...


def _text(message: Message) -> str:
    return f"{message.subject}\n\n{message.body}" if message.subject else message.body


async def _post(
    url: str,
    settings: Settings,
    *,
    json_body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    data: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> None:
    try:
        async with pinned_client(
            url, settings, timeout_seconds=settings.notification_http_timeout_seconds
        ) as client:
            response = await client.post(
                url,
                json=json_body,
                content=content,
                headers=headers,
                data=data,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
    except DestinationRefused as exc:
        raise ChannelError(str(exc), retryable=exc.retryable) from None
    except httpx.TimeoutException:
        raise ChannelError(f"timed out calling {url}", retryable=True) from None
    except httpx.HTTPError as exc:
        raise ChannelError(f"cannot reach {url}: {exc}", retryable=True) from None
    status = response.status_code
    if status >= 400:
        retryable = status in (408, 425, 429) or status >= 500
        raise ChannelError(f"{url} answered {status}: {response.text[:200]}", retryable=retryable)


class InAppSender:
    """The inbox row is the delivery; the live push is done after commit by the caller."""

    channel: ClassVar[Channel] = Channel.IN_APP
    needs_destination: ClassVar[bool] = False

    async def send(self, message: Message, destination: str | None, settings: Settings) -> str:
        return Outcome.DELIVERED


class WebhookSender:
    channel: ClassVar[Channel] = Channel.WEBHOOK
    needs_destination: ClassVar[bool] = True

    async def send(self, message: Message, destination: str | None, settings: Settings) -> str:
        assert destination
        body = json.dumps(
            {
                "id": message.id,
                "userId": message.user_id,
                "subject": message.subject,
                "body": message.body,
                "data": message.data,
                "priority": message.priority,
                "createdAt": message.created_at,
            },
            separators=(",", ":"),
        ).encode()
        timestamp = int(time.time())
        await _post(
            destination,
            settings,
            content=body,
            headers={
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(webhook_secret(settings), timestamp, body),
            },
        )
        return Outcome.DELIVERED


class SlackSender:
    """Slack incoming webhooks: ``{"text": ..., "blocks": [...]}``."""

    channel: ClassVar[Channel] = Channel.SLACK
    needs_destination: ClassVar[bool] = True

    async def send(self, message: Message, destination: str | None, settings: Settings) -> str:
        assert destination
        blocks: list[dict[str, Any]] = []
        if message.subject:
            blocks.append(
                {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}}
            )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": message.body[:3000]}})
        await _post(destination, settings, json_body={"text": _text(message), "blocks": blocks})
        return Outcome.DELIVERED


class TeamsSender:
    """Microsoft Teams incoming webhooks: a MessageCard."""

    channel: ClassVar[Channel] = Channel.TEAMS
    needs_destination: ClassVar[bool] = True

    async def send(self, message: Message, destination: str | None, settings: Settings) -> str:
        assert destination
        card = {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message.subject or message.body[:80],
            "themeColor": "D7000C" if message.priority in ("HIGH", "CRITICAL") else "0076D7",
            "title": message.subject or "CognitionOS",
            "text": message.body,
        }
        await _post(destination, settings, json_body=card)
        return Outcome.DELIVERED


class SmsSender:
    """A Twilio-compatible Messages API call (form-encoded, basic auth)."""

    channel: ClassVar[Channel] = Channel.SMS
    needs_destination: ClassVar[bool] = True

    async def send(self, message: Message, destination: str | None, settings: Settings) -> str:
        assert destination
        sid, token = settings.twilio_account_sid, settings.twilio_auth_token
        if not sid or not token or not settings.sms_from:
            raise ChannelError(
                "SMS needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and COGNITIONOS_SMS_FROM",
                retryable=False,
            )
        url = f"{settings.sms_base_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
        await _post(
            url,
            settings,
            data={"To": destination, "From": settings.sms_from, "Body": _text(message)[:1600]},
            auth=(sid, token),
        )
        return Outcome.SENT


class EmailSender:
    channel: ClassVar[Channel] = Channel.EMAIL
    needs_destination: ClassVar[bool] = True

    async def send(self, message: Message, destination: str | None, settings: Settings) -> str:
        assert destination
        if not settings.smtp_host:
            raise ChannelError("email needs COGNITIONOS_SMTP_HOST", retryable=False)
        email = EmailMessage()
        email["From"] = settings.smtp_from
        email["To"] = destination
        email["Subject"] = message.subject or "Notification"
        email["X-CognitionOS-Notification"] = message.id
        email.set_content(message.body)
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                start_tls=settings.smtp_starttls and not settings.smtp_tls,
                use_tls=settings.smtp_tls,
                timeout=settings.notification_http_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(
                f"the mail server refused {destination}: {exc}", retryable=False
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            # 5xx replies are permanent in SMTP; 4xx are "try again later".
            raise ChannelError(
                f"SMTP {exc.code}: {exc.message}", retryable=exc.code < 500
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"SMTP failed: {exc}", retryable=True) from None
        return Outcome.SENT


SENDERS: dict[Channel, Sender] = {
    s.channel: s
    for s in (
        InAppSender(),
        WebhookSender(),
        SlackSender(),
        TeamsSender(),
        SmsSender(),
        EmailSender(),
    )
}
