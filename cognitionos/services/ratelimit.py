"""Fixed-window rate limits kept in Redis, shared by every replica.

A hit is one Redis round trip (one script): count, set the window's expiry on the first
hit, and, when asked, read other keys in the same trip (a request's credential stamps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from cognitionos.services.errors import RateLimited

__all__ = ["RateLimiter", "Verdict"]

# INCR and set the window's expiry on the first hit, atomically.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
if #KEYS > 1 then return {count, ttl, redis.call('MGET', unpack(KEYS, 2))} end
return {count, ttl}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: float
    # The values of the keys the hit was asked to read (None where a key is absent).
    read: tuple[bytes | None, ...] = field(default=())


class RateLimiter:
    def __init__(self, redis: Redis, *, prefix: str = "cognitionos:rl:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_HIT)

    async def hit(
        self, key: str, *, limit: int, window_seconds: int, read: Sequence[str] = ()
    ) -> Verdict:
        """Count a hit on ``key``; also return the values of the keys in ``read``."""
        reply = await self._script(keys=[self._prefix + key, *read], args=[window_seconds * 1000])
        count = int(reply[0])
        return Verdict(
            allowed=count <= limit,
            count=count,
            retry_after=reply[1] / 1000,
            read=tuple(reply[2]) if read else (),
        )

    async def check(
        self,
        key: str,
        *,
        limit: int,
        window_seconds: int,
        what: str,
        read: Sequence[str] = (),
    ) -> tuple[bytes | None, ...]:
        """Count a hit and raise RATE_LIMITED when ``limit`` is passed; returns the values
        of ``read`` (see ``hit``)."""
        verdict = await self.hit(key, limit=limit, window_seconds=window_seconds, read=read)
        if not verdict.allowed:
            raise RateLimited(
                f"too many {what}; try again in {max(1, round(verdict.retry_after))}s",
                retry_after=verdict.retry_after,
            )
        return verdict.read

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)
