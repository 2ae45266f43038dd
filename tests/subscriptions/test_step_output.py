"""How a step's output log becomes what a stepOutput subscriber sees, run by run."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from cognitionos.db.models.workflows import StepStatus
from cognitionos.services.workflows.output import (
    EntryKind,
    OutputEntry,
    _log_key,
    append_text,
    read_log,
)
from cognitionos.subscriptions.step_output import _Attempts, _missed
from tests.conftest import Stack


def entries(*rows: tuple[str, int, str]) -> list[OutputEntry]:
    """(kind, attempt, text or end status) rows, numbered as the log would."""
    found = []
    for n, (kind, attempt, value) in enumerate(rows, start=1):
        end = kind == "end"
        found.append(
            OutputEntry(
                id=f"{n}-0",
                n=n,
                kind=EntryKind(kind),
                attempt=attempt,
                text="" if end else value,
                status=StepStatus(value) if end else None,
            )
        )
    return found


def seen(log: list[OutputEntry]) -> tuple[list[tuple[int, str, bool, str | None]], _Attempts]:
    runs = _Attempts()
    out = []
    for entry in log:
        for c in runs.feed(entry):
            out.append((c.attempt, c.text, c.done, c.status.value if c.status else None))
    return out, runs


def test_each_attempt_says_its_text_then_how_it_ended() -> None:
    out, _ = seen(
        entries(
            ("start", 1, ""),
            ("text", 1, "Hel"),
            ("text", 1, "lo"),
            ("end", 1, "RETRYING"),
            ("start", 2, ""),
            ("text", 2, "Hi"),
            ("end", 2, "SUCCEEDED"),
        )
    )
    assert out == [
        (1, "Hel", False, None),
        (1, "lo", False, None),
        (1, "", True, "RETRYING"),
        (2, "Hi", False, None),
        (2, "", True, "SUCCEEDED"),
    ]


def test_a_run_that_gave_its_attempt_back_before_saying_anything_is_not_seen() -> None:
    out, _ = seen(
        entries(
            ("start", 1, ""),
            ("defer", 1, ""),
            ("start", 1, ""),
            ("text", 1, "ok"),
            ("end", 1, "SUCCEEDED"),
        )
    )
    assert out == [(1, "ok", False, None), (1, "", True, "SUCCEEDED")]


def test_a_run_that_restarts_without_an_end_is_closed_and_a_lost_worker_is_ignored() -> None:
    out, _ = seen(
        entries(
            ("start", 1, ""),
            ("text", 1, "par"),
            ("start", 2, ""),  # its end never reached the log
            ("text", 1, "tial"),  # the old run's worker, still talking
            ("text", 2, "whole"),
        )
    )
    assert out == [(1, "par", False, None), (1, "", True, None), (2, "whole", False, None)]


def test_a_step_that_ends_while_no_attempt_runs_is_reported_finished() -> None:
    out, runs = seen(entries(("text", 1, "stray"), ("end", 1, "SKIPPED")))
    assert out == [] and runs.finished is StepStatus.SKIPPED


async def test_the_log_is_read_back_after_a_gap_and_after_redis_lost_it(stack: Stack) -> None:
    redis = Redis.from_url(stack.redis.url)
    step_id = uuid.uuid4()
    try:
        for text in ("a", "b", "c"):
            await append_text(redis, step_id, 1, text)
        log = await read_log(redis, step_id)
        assert [(e.n, e.text) for e in log] == [(1, "a"), (2, "b"), (3, "c")]
        # Seen up to "a": the rest comes back, once.
        missed, lost = await _missed(redis, step_id, 1, log[0].id)
        assert ([e.text for e in missed], lost) == (["b", "c"], False)
        # Redis came back without the log: everything now in it is new to the reader.
        await redis.delete(_log_key(step_id))
        await append_text(redis, step_id, 1, "d")
        missed, lost = await _missed(redis, step_id, 3, log[2].id)
        assert ([(e.n, e.text) for e in missed], lost) == ([(1, "d")], True)
    finally:
        await redis.aclose()
