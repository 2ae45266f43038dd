"""Credential changes that long-lived connections must hear about.

A revoked API key, an ended login, a suspension or a role change is committed in one
process, but websockets authenticated with that credential live in every web replica.
Each change is described here, published after commit (``services.events``), and every
replica re-checks the sockets it matches.

Each change also sets the user's *stamp* in Redis to a new random value: processes that
remember who a credential is (``cache.CredentialCache``) read the stamp with every
request and read the database again when it moved.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from cognitionos.services.auth.principal import Principal

__all__ = ["ALL_USERS_STAMP", "STAMP_TTL_SECONDS", "CredentialChange", "new_stamp", "stamp_key"]

# Set when anything may have changed for anyone (rows edited outside the API).
ALL_USERS_STAMP = "cognitionos:cred:all"
# Longer than any cache entry lives: an expired stamp (back to none) can only make a
# reader read again, never match an entry written before the change.
STAMP_TTL_SECONDS = 86_400


def stamp_key(user_id: uuid.UUID) -> str:
    return f"cognitionos:cred:{user_id}"


def new_stamp() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class CredentialChange:
    """What changed: a user's account, or only one of their API keys or logins."""

    user_id: uuid.UUID
    api_key_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None  # a refresh-token family

    def matches(self, principal: Principal) -> bool:
        """Whether a connection of this principal may be affected."""
        if principal.user_id != self.user_id:
            return False
        if self.api_key_id is not None and principal.api_key_id != self.api_key_id:
            return False
        return self.session_id is None or principal.session_id == self.session_id

    def as_message(self) -> dict[str, str]:
        message = {"userId": str(self.user_id)}
        if self.api_key_id is not None:
            message["apiKeyId"] = str(self.api_key_id)
        if self.session_id is not None:
            message["sessionId"] = str(self.session_id)
        return message

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> CredentialChange:
        """Raises ValueError (or KeyError) on a malformed message."""

        def optional(name: str) -> uuid.UUID | None:
            value = message.get(name)
            return uuid.UUID(str(value)) if value else None

        return cls(
            user_id=uuid.UUID(str(message["userId"])),
            api_key_id=optional("apiKeyId"),
            session_id=optional("sessionId"),
        )
