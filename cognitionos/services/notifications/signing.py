"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>``.

Headers on every webhook POST:

* ``X-CognitionOS-Timestamp``: Unix seconds when it was sent;
* ``X-CognitionOS-Signature``: ``v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.

A receiver recomputes the HMAC over the raw body, compares in constant time, and rejects
a timestamp more than 5 minutes away from its clock (a replay). ``verify`` does all three.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from cognitionos.config import Settings

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "sign",
    "verify",
    "webhook_secret",
]

SIGNATURE_HEADER = "X-CognitionOS-Signature"
TIMESTAMP_HEADER = "X-CognitionOS-Timestamp"
TOLERANCE_SECONDS = 300


def webhook_secret(settings: Settings) -> str:
    """The configured secret, or one derived from SECRET_KEY (stable across restarts)."""
    if settings.notification_webhook_secret:
        return settings.notification_webhook_secret
    return hmac.new(
        settings.jwt_secret.encode(), b"cognitionos:webhook-signing", hashlib.sha256
    ).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when the signature matches and the timestamp is within ``tolerance``."""
    if not timestamp or not signature:
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature)
