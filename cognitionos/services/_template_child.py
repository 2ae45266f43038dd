"""The Jinja2 sandbox, and the render process that runs it.

The parent (``templating.py``) parses with the same environment; rendering happens only
here, in a separate process the parent kills when a render outlives its deadline. This
file runs by path in that process (``python -I _template_child.py MEMORY_BYTES``), so it
imports nothing but the standard library and Jinja2.

Protocol, over stdin/stdout: frames of a 4-byte big-endian length and UTF-8 JSON. The
child first sends ``{"ready": true}``; then for each request ``{"templates": [...],
"variables": {...}, "timeout": s, "max_bytes": n}`` it answers ``{"ok": [...]}`` or
``{"error": "...", "recycle": bool}``.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import sys
from collections import OrderedDict
from typing import IO, Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["MAX_INT_BITS", "MAX_ITEMS", "LimitedSandbox", "main"]

MAX_ITEMS = 1_000_000  # a list or tuple built with * or +
MAX_INT_BITS = 16_384  # about 4,900 digits; Python itself prints at most 4,300
DEFAULT_MAX_STRING = 1_000_000
_CACHE_ENTRIES = 256
_CACHE_MAX_SOURCE = 64_000
# A %-format width or precision: %10s, %-*d, %.5f, %(name)08x
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class LimitedSandbox(SandboxedEnvironment):
    """Jinja's sandbox with ``*``, ``**``, ``+`` and ``%`` refusing results that would
    allocate without bound (``'a' * 10**9``, ``[1] * 10**9``, ``10 ** 10**9``)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, **options)
        self.filters["tojson"] = lambda value: json.dumps(value, default=str)
        self.max_string = DEFAULT_MAX_STRING  # characters; the parent sends its output cap

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            self._check_product(left, right)
        elif operator == "**":
            self._check_power(left, right)
        elif operator == "+":
            self._check_sum(left, right)
        elif operator == "%" and isinstance(left, str):
            self._check_percent(left, right)
        return super().call_binop(context, operator, left, right)

    def _check_size(self, value: Any, size: int, how: str) -> None:
        if isinstance(value, (str, bytes)) and size > self.max_string:
            raise SecurityError(
                f"{how} would make a string of {size:,} characters (limit {self.max_string:,})"
            )
        if isinstance(value, (list, tuple)) and size > MAX_ITEMS:
            raise SecurityError(f"{how} would make a list of {size:,} items (limit {MAX_ITEMS:,})")

    def _check_product(self, left: Any, right: Any) -> None:
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and _is_int(count):
                self._check_size(seq, len(seq) * max(count, 0), "'*'")
                return
        if _is_int(left) and _is_int(right):
            bits = abs(left).bit_length() + abs(right).bit_length()
            if bits > MAX_INT_BITS:
                raise SecurityError(
                    f"'*' would make a {bits:,}-bit number (limit {MAX_INT_BITS:,})"
                )

    @staticmethod
    def _check_power(base: Any, exponent: Any) -> None:
        if not (_is_int(base) and _is_int(exponent)) or exponent <= 0 or abs(base) <= 1:
            return  # floats overflow by themselves; negative exponents give floats
        bits = math.ceil(math.log2(abs(base)) * exponent)
        if bits > MAX_INT_BITS:
            raise SecurityError(
                f"'**' would make a number of about {bits:,} bits (limit {MAX_INT_BITS:,})"
            )

    def _check_sum(self, left: Any, right: Any) -> None:
        if isinstance(left, (str, bytes, list, tuple)) and type(left) is type(right):
            self._check_size(left, len(left) + len(right), "'+'")

    def _check_percent(self, fmt: str, args: Any) -> None:
        for match in _PERCENT_SPEC.finditer(fmt):
            for part in match.groups():
                if part == "*" or (part is not None and int(part) > self.max_string):
                    raise SecurityError(
                        f"'%' format width {part} is not allowed (limit {self.max_string:,})"
                    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


class _Renderer:
    def __init__(self, memory_bytes: int) -> None:
        self.env = LimitedSandbox()
        self.memory_mb = memory_bytes // (1024 * 1024)
        self.cache: OrderedDict[str, Template] = OrderedDict()

    def compiled(self, text: str) -> Template:
        template = self.cache.get(text)
        if template is not None:
            self.cache.move_to_end(text)
            return template
        template = self.env.from_string(text)
        if len(text) <= _CACHE_MAX_SOURCE:
            self.cache[text] = template
            if len(self.cache) > _CACHE_ENTRIES:
                self.cache.popitem(last=False)
        return template

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        _limit_cpu(float(request["timeout"]))
        budget = int(request["max_bytes"])
        self.env.max_string = budget
        variables = request["variables"]
        try:
            results = []
            for text in request["templates"]:
                parts = []
                for chunk in self.compiled(text).generate(**variables):
                    size = len(chunk)
                    if size <= budget and not chunk.isascii():
                        size = len(chunk.encode("utf-8", "surrogatepass"))
                    budget -= size
                    if budget < 0:
                        return {
                            "error": f"template output exceeded {request['max_bytes']:,} bytes",
                            "recycle": False,
                        }
                    parts.append(chunk)
                results.append("".join(parts))
            return {"ok": results}
        except MemoryError:
            return {
                "error": f"template rendering needed more than {self.memory_mb} MB of memory",
                "recycle": True,
            }
        except RecursionError:
            return {"error": "template error: nested too deeply", "recycle": False}
        except TemplateError as exc:
            return {"error": f"template error: {exc}", "recycle": False}
        except Exception as exc:  # e.g. a filter raising on bad input
            return {"error": f"template error: {type(exc).__name__}: {exc}", "recycle": False}


def _limit_cpu(seconds: float) -> None:
    """A backstop behind the parent's deadline: SIGXCPU if this render uses more CPU than
    it is allowed (the limit counts from the process start, so it moves each render)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds) + 1
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    return stream.read(int.from_bytes(header, "big"))


def _write_frame(stream: IO[bytes], message: dict[str, Any]) -> None:
    try:
        body = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError) as exc:
        body = json.dumps({"error": f"template error: {exc}", "recycle": False}).encode()
    stream.write(len(body).to_bytes(4, "big") + body)
    stream.flush()


def main() -> None:
    memory_bytes = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    # The protocol gets its own descriptor; stray writes to stdout go to stderr.
    output = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    source = sys.stdin.buffer
    renderer = _Renderer(memory_bytes)
    _write_frame(output, {"ready": True})
    while True:
        body = _read_frame(source)
        if body is None:
            return
        try:
            reply = renderer.handle(json.loads(body))
        except MemoryError:
            reply = {"error": "template variables are too large to load", "recycle": True}
        _write_frame(output, reply)
        if reply.get("recycle"):
            return


if __name__ == "__main__":
    main()
