"""The one Jinja2 sandbox: strict about missing variables, no autoescape, a ``tojson``
filter. Step configs, role prompts and notification templates all render here.

Parsing (``check_template``) runs in-process: it is linear in the text, and the text is
bounded by the request body limit. Rendering never runs in the server process: a small
pool of render processes (``_template_child.py``) takes ``(templates, variables as
JSON)`` and answers the text or an error. A render that outlives its deadline has its
process killed and replaced; each process also runs under RLIMIT_CPU and RLIMIT_AS, and
stops a render whose output passes the byte cap.

A ``TemplateRenderer`` is that pool, with its limits. The runtime builds one per process
(a web server and its in-process worker share it), hands it to whatever renders (step
runs, approval prompts, agents' role prompts, notification templates) and closes it on
shutdown, which kills its processes. Nothing here is global but the parse-only
environment, which holds no process, loop or state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Self

from jinja2 import TemplateError

from cognitionos.config import Settings
from cognitionos.observability import get_logger
from cognitionos.services._template_child import LimitedSandbox
from cognitionos.services.errors import BadUserInput

__all__ = [
    "TemplateFailure",
    "TemplateRenderer",
    "check_template",
]

log = get_logger("cognitionos.templating")
_PARSER = LimitedSandbox()
_CHILD = str(Path(__file__).with_name("_template_child.py"))
_STARTUP_SECONDS = 30.0  # a fresh render process importing Jinja2 on a busy machine


class TemplateFailure(Exception):
    """Rendering failed at run time (missing variable, sandbox violation, a limit...)."""


def check_template(text: str, *, field: str) -> None:
    """Parse only (no rendering): BAD_USER_INPUT naming ``field`` when it does not parse."""
    try:
        _PARSER.parse(text)
    except TemplateError as exc:
        raise BadUserInput(f"invalid template: {exc}", field=field) from None
    except RecursionError:
        raise BadUserInput("invalid template: nested too deeply", field=field) from None


class _ChildGone(Exception):
    """The render process closed its pipe: it died (a limit) or was killed."""


class _Child:
    """One render process. Used by one caller at a time, from that caller's event loop."""

    def __init__(self, memory_mb: int, generation: int, registry: set[_Child]) -> None:
        self.generation = generation
        self.registry = registry
        self.ready = False
        self.buffer = bytearray()
        self.proc = subprocess.Popen(  # noqa: S603 (our own script, no shell)
            [sys.executable, "-I", _CHILD, str(memory_mb * 1024 * 1024)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env={},
            close_fds=True,
            start_new_session=True,  # a Ctrl-C to the server's terminal is not theirs
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.in_fd = self.proc.stdin.fileno()
        self.out_fd = self.proc.stdout.fileno()
        os.set_blocking(self.in_fd, False)
        os.set_blocking(self.out_fd, False)
        registry.add(self)

    def _take_frame(self) -> bytes | None:
        if len(self.buffer) < 4:
            return None
        size = int.from_bytes(self.buffer[:4], "big")
        if len(self.buffer) < 4 + size:
            return None
        frame = bytes(self.buffer[4 : 4 + size])
        del self.buffer[: 4 + size]
        return frame

    async def read_frame(self) -> dict[str, Any]:
        frame = self._take_frame()
        if frame is None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[bytes] = loop.create_future()

            def readable() -> None:
                if done.done():
                    return
                try:
                    data = os.read(self.out_fd, 1 << 20)
                except BlockingIOError:
                    return
                except OSError:
                    data = b""
                if not data:
                    done.set_exception(_ChildGone())
                    return
                self.buffer += data
                complete = self._take_frame()
                if complete is not None:
                    done.set_result(complete)

            loop.add_reader(self.out_fd, readable)
            try:
                frame = await done
            finally:
                loop.remove_reader(self.out_fd)
        message: dict[str, Any] = json.loads(frame)
        return message

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        loop = asyncio.get_running_loop()
        while view:
            try:
                view = view[os.write(self.in_fd, view) :]
                continue
            except BlockingIOError:
                pass
            except OSError:
                raise _ChildGone() from None
            writable: asyncio.Future[None] = loop.create_future()
            loop.add_writer(self.in_fd, _wake, writable)
            try:
                await writable
            finally:
                loop.remove_writer(self.in_fd)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def dispose(self) -> None:
        """Kill, close the pipes, reap in the background (a killed child exits at once)."""
        self.kill()
        self.registry.discard(self)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        threading.Thread(target=self.proc.wait, daemon=True).start()


def _hand(renderer: TemplateRenderer, waiter: asyncio.Future[_Child | None], child: _Child) -> None:
    if waiter.done():  # the waiter gave up meanwhile: the next one gets it
        renderer._release(child)
    else:
        waiter.set_result(child)


def _wake(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class TemplateRenderer:
    """A bounded pool of render processes and the limits it renders under, usable from
    any thread and event loop. Processes start with ``start()`` (or on demand);
    ``close()`` kills them, after which a render is refused. Also a context manager.

    ``timeout_seconds``: the longest a render may take (a caller's smaller limit wins);
    ``max_output_bytes``: the most text one request may produce, all its texts together."""

    def __init__(
        self,
        *,
        size: int = 2,
        memory_mb: int = 512,
        timeout_seconds: float = 5.0,
        max_output_bytes: int = 1_000_000,
    ) -> None:
        self._size = max(1, size)
        self._memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.max_output_bytes = max_output_bytes
        self._lock = threading.Lock()
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[_Child | None]]]
        self._waiters = deque()
        self._live = 0  # processes of the current generation, idle or busy
        self._generation = 0
        self._closed = False
        # Every process not yet disposed of: killed at interpreter exit should a renderer
        # never be closed (the finalizer holds the set, not the renderer).
        self._processes: set[_Child] = set()
        weakref.finalize(self, _kill_all, self._processes)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """The pool ``COGNITIONOS_TEMPLATE_*`` describe."""
        return cls(
            size=settings.template_workers,
            memory_mb=settings.template_memory_mb,
            timeout_seconds=settings.template_timeout_seconds,
            max_output_bytes=settings.template_max_output_bytes,
        )

    def start(self) -> None:
        """Start the processes now rather than at the first renders."""
        with self._lock:
            if self._closed:
                raise TemplateFailure("the template renderer is closed")
            while self._live < self._size:
                self._idle.append(self._spawn_locked())

    def close(self) -> None:
        """Kill the processes (a render in progress fails); later renders are refused."""
        with self._lock:
            self._closed = True
            self._generation += 1
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            waiters = list(self._waiters)
            self._waiters.clear()
            self._live = 0
        for child in idle:
            child.dispose()
        for child in busy:  # their callers see the pipe close and dispose of them
            child.kill()
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, waiter)

    @property
    def processes(self) -> set[int]:
        """The ids of the render processes started and not yet disposed of."""
        return {child.proc.pid for child in list(self._processes)}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def render(
        self, text: str, variables: dict[str, Any], *, time_limit: float | None = None
    ) -> str:
        """Render one template; ``TemplateFailure`` says why not."""
        (rendered,) = await self.render_many([text], variables, time_limit=time_limit)
        return rendered

    async def render_many(
        self,
        texts: list[str],
        variables: dict[str, Any],
        *,
        time_limit: float | None = None,
        max_output_bytes: int | None = None,
    ) -> list[str]:
        """Render ``texts`` over the same variables in one round trip to one process.
        ``time_limit`` (a step's timeout) wins when smaller than the renderer's;
        ``max_output_bytes`` replaces the renderer's cap for this request."""
        if not texts:
            return []
        if time_limit is None or time_limit > self.timeout_seconds:
            time_limit = self.timeout_seconds
        if max_output_bytes is None:
            max_output_bytes = self.max_output_bytes
        try:
            body = json.dumps(
                {
                    "templates": texts,
                    "variables": variables,
                    "timeout": time_limit,
                    "max_bytes": max_output_bytes,
                },
                default=str,
                ensure_ascii=False,
            ).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError) as exc:
            raise TemplateFailure(f"template variables are not JSON: {exc}") from None
        child = await self._acquire()
        healthy = False
        try:
            if not child.ready:
                try:
                    await asyncio.wait_for(child.read_frame(), _STARTUP_SECONDS)
                except (_ChildGone, TimeoutError):
                    raise TemplateFailure("the template renderer did not start") from None
                child.ready = True
            try:
                reply = await asyncio.wait_for(self._exchange(child, body), time_limit)
            except TimeoutError:
                raise TemplateFailure(f"template rendering exceeded {time_limit:g} s") from None
            except _ChildGone:
                raise TemplateFailure(
                    "template rendering was stopped by its CPU or memory limit"
                ) from None
            healthy = not reply.get("recycle")
        finally:
            if healthy:
                self._release(child)
            else:
                self._discard(child)
        if "error" in reply:
            raise TemplateFailure(str(reply["error"]))
        return [str(text) for text in reply["ok"]]

    @staticmethod
    async def _exchange(child: _Child, body: bytes) -> dict[str, Any]:
        await child.write(len(body).to_bytes(4, "big") + body)
        return await child.read_frame()

    def _spawn_locked(self) -> _Child:
        child = _Child(self._memory_mb, self._generation, self._processes)
        self._live += 1
        return child

    async def _acquire(self) -> _Child:
        while True:
            with self._lock:
                if self._closed:
                    raise TemplateFailure("the template renderer is closed")
                if self._idle:
                    child = self._idle.pop()
                    self._busy.add(child)
                    return child
                if self._live < self._size:
                    try:
                        child = self._spawn_locked()
                    except OSError as exc:
                        raise TemplateFailure(f"cannot start a template renderer: {exc}") from None
                    self._busy.add(child)
                    return child
                loop = asyncio.get_running_loop()
                waiter: asyncio.Future[_Child | None] = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                handed = await waiter
            except asyncio.CancelledError:
                with self._lock, contextlib.suppress(ValueError):
                    self._waiters.remove((loop, waiter))
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._release(waiter.result())  # type: ignore[arg-type]
                raise
            if handed is not None:
                with self._lock:
                    self._busy.add(handed)
                return handed

    def _release(self, child: _Child) -> None:
        """Back to the pool (or straight to a waiting caller, on its own loop)."""
        with self._lock:
            self._busy.discard(child)
            current = child.generation == self._generation
            while current and self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(_hand, self, waiter, child)
                    return
                except RuntimeError:  # that loop is closed
                    continue
            if current:
                self._idle.append(child)
                return
        child.dispose()

    def _discard(self, child: _Child) -> None:
        """Kill a process that failed or ran over, and start its replacement."""
        child.dispose()
        with self._lock:
            self._busy.discard(child)
            if child.generation != self._generation:
                return
            self._live -= 1
            try:
                replacement = self._spawn_locked()
            except OSError:
                log.warning("cannot start a template renderer", exc_info=True)
                return
        self._release(replacement)


def _kill_all(processes: set[_Child]) -> None:
    for child in list(processes):
        child.kill()
