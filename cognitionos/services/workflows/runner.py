"""Run one claimed step: render its config, run its kind, keep the lease alive."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from cognitionos.observability import get_logger
from cognitionos.services.errors import CognitionError
from cognitionos.services.workflows.engine import ClaimedStep, Engine, HeartbeatResult
from cognitionos.services.workflows.steps import StepDeferred, StepFailure, get_kind
from cognitionos.services.workflows.templates import TemplateFailure, render_config

__all__ = ["run_claimed"]

log = get_logger("cognitionos.engine")


async def _watch(engine: Engine, claimed: ClaimedStep, owner: str, task: asyncio.Task[Any]) -> str:
    interval = max(0.05, engine.settings.step_lease_seconds / 3)
    while True:
        done, _ = await asyncio.wait({task}, timeout=interval)
        if done:
            return HeartbeatResult.OK
        try:
            verdict = await engine.heartbeat(claimed.step_id, owner)
        except Exception:  # the DB blinked: try again next beat, the lease has slack
            log.warning("heartbeat failed", step=claimed.step_key, exc_info=True)
            continue
        if verdict != HeartbeatResult.OK:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return verdict


async def run_claimed(engine: Engine, claimed: ClaimedStep, owner: str) -> None:
    kind = get_kind(claimed.spec.kind)
    step_id = claimed.step_id
    if kind is None:
        await engine.fail(step_id, owner, f"unknown step kind {claimed.spec.kind}", retryable=False)
        return
    ctx = claimed.context(engine)
    try:
        config = await render_config(
            claimed.spec.config,
            kind.templated,
            ctx.variables,
            settings=engine.settings,
            time_limit=claimed.spec.timeout_seconds,
        )
    except TemplateFailure as exc:
        await engine.fail(step_id, owner, str(exc), retryable=False)
        return
    timeout = claimed.spec.timeout_seconds
    task = asyncio.create_task(asyncio.wait_for(kind.run(ctx, config), timeout))
    verdict = await _watch(engine, claimed, owner, task)
    if verdict == HeartbeatResult.LOST:
        log.warning("lease lost; another worker owns the step now", step=claimed.step_key)
        return
    if verdict == HeartbeatResult.CANCELLED:
        await engine.fail(step_id, owner, "cancelled", retryable=False, inputs=config)
        return
    try:
        output = task.result()
    except TimeoutError:
        await engine.fail(
            step_id, owner, f"timed out after {timeout:g}s", retryable=True, inputs=config
        )
        return
    except StepFailure as exc:
        await engine.fail(step_id, owner, str(exc), retryable=exc.retryable, inputs=config)
        return
    except StepDeferred as exc:
        await engine.defer(step_id, owner, str(exc), delay=exc.delay, inputs=config)
        return
    except CognitionError as exc:  # e.g. BUDGET_EXCEEDED, LLM_UNAVAILABLE: retrying won't help
        await engine.fail(
            step_id, owner, f"{exc.code}: {exc.message}", retryable=False, inputs=config
        )
        return
    except Exception as exc:
        log.exception("step raised", step=claimed.step_key)
        await engine.fail(
            step_id, owner, f"{type(exc).__name__}: {exc}", retryable=True, inputs=config
        )
        return
    try:
        json.dumps(output)
    except (TypeError, ValueError) as exc:
        await engine.fail(
            step_id, owner, f"output is not JSON: {exc}", retryable=False, inputs=config
        )
        return
    await engine.complete(
        step_id,
        owner,
        output,
        cost_usd=ctx.cost_usd,
        tokens=ctx.tokens,
        served_by=ctx.served_by or None,
        notes=ctx.llm_notes() or None,
        inputs=config,
    )
