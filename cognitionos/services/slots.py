"""Concurrent holders per owner (a user's open websockets), counted across replicas.

Each owner has a Redis sorted set of slot ids scored by the time their lease ends. A
replica renews the leases of the slots it holds; a crashed replica's slots lapse after
one lease and stop counting. Times are Redis's own (``TIME``), so replicas' clocks do
not matter.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

__all__ = ["Slots"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS[1] the owner's set; ARGV: lease ms, limit, slot id. 1 when taken, 0 when full.
_ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) == false
    and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
)

# KEYS: owners' sets; ARGV[1] lease ms, ARGV[i + 1] the slot held in KEYS[i].
_RENEW = (
    _NOW
    + """
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""
)


class Slots:
    def __init__(
        self, redis: Redis, *, lease_seconds: float = 60.0, prefix: str = "cognitionos:slots:"
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.lease_seconds = lease_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self.lease_seconds * 1000))

    async def acquire(self, owner: str, slot: str, *, limit: int) -> bool:
        """Take a slot unless ``owner`` already holds ``limit`` live ones."""
        taken = await self._acquire(keys=[self._prefix + owner], args=[self._lease_ms, limit, slot])
        return bool(taken)

    async def renew(self, held: Iterable[tuple[str, str]], *, batch: int = 500) -> None:
        """Extend the leases of the ``(owner, slot)`` pairs this process holds."""
        pairs = list(held)
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            await self._renew(
                keys=[self._prefix + owner for owner, _ in chunk],
                args=[self._lease_ms, *(slot for _, slot in chunk)],
            )

    async def release(self, owner: str, slot: str) -> None:
        await self._redis.zrem(self._prefix + owner, slot)

    async def count(self, owner: str) -> int:
        """Live slots of ``owner`` (lapsed ones are not counted)."""
        key = self._prefix + owner
        seconds, micros = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return int(await self._redis.zcount(key, f"({now_ms}", "+inf"))
