"""How a step's output log becomes what a stepOutput subscriber sees, run by run."""

from __future__ import annotations

from cognitionos.db.models.workflows import StepStatus
from cognitionos.services.workflows.output import EntryKind, OutputEntry
from cognitionos.subscriptions.step_output import _Attempts


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
