"""Password policy and bcrypt hashing (off the event loop)."""

from __future__ import annotations

import asyncio
import functools

import bcrypt

from cognitionos.services.errors import BadUserInput

__all__ = ["check_password_policy", "hash_password", "verify_password"]

MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything after this; refuse rather than truncate


@functools.lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> bytes:
    """Compared against when there is no hash to check, so every login attempt costs one
    bcrypt check at the configured cost (one per cost, 12 to 16)."""
    return bcrypt.hashpw(b"cognitionos-timing-equalizer", bcrypt.gensalt(rounds))


def check_password_policy(password: str, *, min_length: int, email: str | None = None) -> None:
    problems = []
    if len(password) < min_length:
        problems.append(f"at least {min_length} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        problems.append(f"at most {MAX_PASSWORD_BYTES} bytes")
    if not any(c.isalpha() for c in password) or not any(not c.isalpha() for c in password):
        problems.append("both letters and digits or symbols")
    if email and password.lower() == email.lower():
        problems.append("something other than the email address")
    if problems:
        raise BadUserInput("password must have " + ", ".join(problems), field="password")


async def hash_password(password: str, *, rounds: int) -> str:
    digest = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(rounds))
    return digest.decode()


async def verify_password(password: str, password_hash: str | None, *, rounds: int) -> bool:
    """One bcrypt check whatever happens; ``rounds`` is the cost of the check made when
    there is nothing real to compare (no such account, an over-long password)."""
    encoded = password.encode()
    if password_hash is None or len(encoded) > MAX_PASSWORD_BYTES:
        dummy = await asyncio.to_thread(_dummy_hash, rounds)
        await asyncio.to_thread(bcrypt.checkpw, b"x", dummy)
        return False
    return await asyncio.to_thread(bcrypt.checkpw, encoded, password_hash.encode())
