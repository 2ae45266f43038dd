"""The step output log: what each attempt of a step streams, kept while it runs.

One Redis Stream per step holds, in order: ``start`` when an attempt begins, ``text``
for each piece the step streams (LLM and AGENT tokens), ``end`` when the attempt ends
(with the step's status after it) and ``defer`` when the run gave its attempt back (no
free agent; the same attempt runs again). Each entry is appended and published to the
step's channel in one script and numbered 1, 2, …: a reader replays the log, then
follows the channel, drops what it already has and backfills a gap from the log.

Attempt numbers can repeat (a lost worker's or a deferred run keeps its number;
``retryExecution`` starts again at 1), so a run is delimited by its ``start`` entry,
never by its number. The log outlives each write by a day, and a finished step's by
five minutes: after that the step's stored output is the record.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis

from cognitionos.db.models.events import Event
from cognitionos.db.models.workflows import StepStatus
from cognitionos.services.events import step_output_channel

__all__ = [
    "EntryKind",
    "OutputEntry",
    "append_text",
    "mark_attempts",
    "output_text",
    "read_log",
]

LOG_TTL_SECONDS = 86_400
DONE_TTL_SECONDS = 300


class EntryKind(StrEnum):
    START = "start"
    TEXT = "text"
    END = "end"
    DEFER = "defer"


# KEYS: one log per entry; ARGV: kind, attempt, text, status, ttl, channel per entry.
_APPEND = """
for i, key in ipairs(KEYS) do
  local base = (i - 1) * 6
  local n = redis.call('XLEN', key) + 1
  local id = redis.call('XADD', key, '*', 'n', n, 'k', ARGV[base + 1], 'a', ARGV[base + 2],
    't', ARGV[base + 3], 's', ARGV[base + 4])
  redis.call('EXPIRE', key, ARGV[base + 5])
  redis.call('PUBLISH', ARGV[base + 6], cjson.encode({id = id, n = n, kind = ARGV[base + 1],
    attempt = tonumber(ARGV[base + 2]), text = ARGV[base + 3], status = ARGV[base + 4]}))
end
return #KEYS
"""

_ENDS = {
    "STEP_SUCCEEDED",
    "STEP_FAILED",
    "STEP_RETRYING",
    "STEP_CANCELLED",
    "STEP_SKIPPED",
    "STEP_LEASE_EXPIRED",
    "STEP_APPROVED",
    "STEP_REJECTED",
}


def _log_key(step_id: uuid.UUID | str) -> str:
    return f"cognitionos:step-output-log:{step_id}"


@dataclass(frozen=True)
class OutputEntry:
    id: str  # the Redis Stream id
    n: int  # 1, 2, … in the step's log
    kind: EntryKind
    attempt: int
    text: str = ""
    status: StepStatus | None = None  # on END: the step's status after the attempt

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> OutputEntry | None:
        """An entry as published on the step's channel (None: not one of ours)."""
        try:
            return cls(
                id=str(message["id"]),
                n=int(message["n"]),
                kind=EntryKind(message["kind"]),
                attempt=int(message["attempt"]),
                text=str(message.get("text") or ""),
                status=StepStatus(message["status"]) if message.get("status") else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _append(redis: Redis, rows: list[tuple[uuid.UUID, list[Any]]]) -> None:
    if not rows:
        return
    keys = [_log_key(step_id) for step_id, _ in rows]
    args = [value for _, values in rows for value in values]
    await redis.register_script(_APPEND)(keys=keys, args=args)  # EVALSHA, loads if missing


def _row(
    step_id: uuid.UUID,
    kind: EntryKind,
    attempt: int,
    text: str = "",
    status: StepStatus | None = None,
) -> tuple[uuid.UUID, list[Any]]:
    ttl = DONE_TTL_SECONDS if status is not None and status.terminal else LOG_TTL_SECONDS
    return step_id, [
        kind.value,
        attempt,
        text,
        status.value if status else "",
        ttl,
        step_output_channel(step_id),
    ]


async def append_text(redis: Redis, step_id: uuid.UUID, attempt: int, text: str) -> None:
    """A piece of the running attempt's output."""
    await _append(redis, [_row(step_id, EntryKind.TEXT, attempt, text)])


async def mark_attempts(redis: Redis, events: Iterable[Event]) -> None:
    """After commit: the start, end or deferral of every attempt among ``events``."""
    rows = []
    for event in events:
        data = event.data or {}
        if "stepId" not in data:
            continue
        step_id = uuid.UUID(data["stepId"])
        attempt = int(data.get("attempt") or 0)
        if event.type == "STEP_STARTED":
            rows.append(_row(step_id, EntryKind.START, attempt))
        elif event.type == "STEP_DEFERRED":
            rows.append(_row(step_id, EntryKind.DEFER, attempt))
        elif event.type in _ENDS:
            rows.append(_row(step_id, EntryKind.END, attempt, status=StepStatus(data["status"])))
    await _append(redis, rows)


async def read_log(
    redis: Redis, step_id: uuid.UUID, *, after: str | None = None
) -> list[OutputEntry]:
    """The step's log in order; only the entries after the id ``after`` when given."""
    found = []
    for entry_id, fields in await redis.xrange(_log_key(step_id), f"({after}" if after else "-"):
        values = {_str(k): _str(v) for k, v in fields.items()}
        found.append(
            OutputEntry(
                id=_str(entry_id),
                n=int(values["n"]),
                kind=EntryKind(values["k"]),
                attempt=int(values["a"]),
                text=values.get("t", ""),
                status=StepStatus(values["s"]) if values.get("s") else None,
            )
        )
    return found


def output_text(output: Any) -> str:
    """A step's output as text: text as it is, anything else as JSON."""
    return output if isinstance(output, str) else json.dumps(output)
