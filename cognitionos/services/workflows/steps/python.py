"""PYTHON: run user code in a separate, resource-limited process.

What it isolates: CPU seconds, address space, file sizes and open files (rlimits), wall
time (killed), environment (empty), working directory (a fresh temp dir), and the server
process itself (a crash or ``os._exit`` only ends the child). What it does NOT isolate:
the network, reads of files the server's user can read, and the user id. It is a guard
against mistakes, not a sandbox for hostile code, and it is off unless
``COGNITIONOS_PYTHON_STEPS_ENABLED=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import tempfile
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, StrictStr

from cognitionos.config import Settings
from cognitionos.services.specs import Number, spec_error
from cognitionos.services.workflows.steps.base import (
    Kind,
    StepConfig,
    StepContext,
    StepFailure,
    register,
)

__all__ = ["PythonConfig", "PythonStep"]

_MARKER = "\n__cognitionos_result__"
_RUNNER = (
    "import json, sys\n"
    "data = json.loads(sys.stdin.read())\n"
    "ns = {'inputs': data['inputs'], 'steps': data['steps'], 'result': None,"
    " '__name__': '__step__'}\n"
    "exec(compile(data['code'], '<step>', 'exec'), ns)\n"
    f"sys.stdout.write({_MARKER!r} + json.dumps(ns.get('result')))\n"
)


def _limits(settings: Settings) -> Callable[[], None]:
    cpu = settings.python_step_cpu_seconds
    memory = settings.python_step_memory_mb * 1024 * 1024
    files = settings.python_step_file_mb * 1024 * 1024

    def apply() -> None:  # runs in the child, before exec
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (files, files))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _compiles(code: str) -> str:
    try:
        compile(code, "<step>", "exec")
    except SyntaxError as exc:
        raise spec_error(f"code does not compile: {exc.msg} (line {exc.lineno})") from None
    return code


class PythonConfig(StepConfig):
    code: Annotated[StrictStr, AfterValidator(_compiles)]
    timeout_seconds: Number | None = None


class PythonStep(Kind):
    name: ClassVar[str] = "PYTHON"
    config_model = PythonConfig

    async def run(self, ctx: StepContext, raw: dict[str, Any]) -> Any:
        settings = ctx.settings
        if not settings.python_steps_enabled:
            raise StepFailure(
                "PYTHON steps are disabled; set COGNITIONOS_PYTHON_STEPS_ENABLED=true to allow "
                "them (read the README on what they isolate first)",
                retryable=False,
            )
        config = PythonConfig.read(raw)
        payload = json.dumps({"code": config.code, "inputs": ctx.inputs, "steps": ctx.steps})
        wall = float(config.timeout_seconds or settings.python_step_wall_seconds)
        with tempfile.TemporaryDirectory(prefix="cognitionos-step-") as workdir:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                "-c",
                _RUNNER,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=workdir,
                env={},
                preexec_fn=_limits(settings),
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(payload.encode()), wall)
            except (TimeoutError, asyncio.CancelledError):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
                raise
        return self._result(proc.returncode, out, err, settings)

    @staticmethod
    def _result(code: int | None, out: bytes, err: bytes, settings: Settings) -> Any:
        stdout = out.decode(errors="replace")
        if code != 0 or _MARKER not in stdout:
            if code is not None and code < 0:
                reason = f"killed by signal {signal.Signals(-code).name}"
                if -code in (signal.SIGXCPU, signal.SIGKILL):
                    reason += " (CPU or memory limit)"
            else:
                lines = err.decode(errors="replace").strip().splitlines()
                reason = lines[-1] if lines else f"exit code {code}"
            raise StepFailure(f"python step failed: {reason}")
        raw = stdout.rsplit(_MARKER, 1)[1]
        if len(raw) > settings.http_max_response_bytes:
            raise StepFailure("python step result is too large", retryable=False)
        return json.loads(raw)


register(PythonStep())
