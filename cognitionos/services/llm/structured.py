"""Structured output: the answer's JSON Schema sent through each provider's own mechanism.

- OpenAI: ``response_format: {type: json_schema, json_schema: {name, schema}}``.
- OpenAI-compatible servers: the same; llama-cpp-python's server takes only
  ``{type: json_object, schema}``, which the others read as "any JSON", so it comes second.
- Anthropic: one tool whose ``input_schema`` is the schema, forced with ``tool_choice``;
  the answer is the tool's input, streamed as ``input_json_delta`` events.
- ``prompt``: no native mechanism (refused, or turned off): the schema is described in
  the system prompt. The caller validates the answer either way.

OpenAI's ``json_schema`` and Anthropic's tool input need an object at the root, so a
schema of another type travels wrapped as ``{"value": …}`` and the answer is unwrapped.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "JSON_OBJECT",
    "JSON_SCHEMA",
    "PROMPT",
    "TOOL",
    "is_refusal",
    "prompt_instruction",
    "unwrap",
    "wire_name",
    "wire_schema",
]

JSON_SCHEMA = "json_schema"
JSON_OBJECT = "json_object"
TOOL = "tool"
PROMPT = "prompt"

_WRAP_KEY = "value"
_REFUSAL_STATUS = {400, 422, 501}
_REFUSAL_WORDS = re.compile(
    r"response_format|json_schema|json_object|structured|tool|grammar|schema", re.IGNORECASE
)
_REFUSAL_FIELDS = re.compile(r"response_format|json_schema|tool_choice", re.IGNORECASE)


def _is_object(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (kind is None and "properties" in schema)


def wire_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema as sent, and whether it was wrapped in ``{"value": …}``."""
    if _is_object(schema):
        return schema, False
    inner = {k: v for k, v in schema.items() if k not in ("$defs", "definitions", "$schema")}
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {_WRAP_KEY: inner},
        "required": [_WRAP_KEY],
        "additionalProperties": False,
    }
    for key in ("$defs", "definitions"):  # references stay valid from the new root
        if key in schema:
            wrapper[key] = schema[key]
    return wrapper, True


def unwrap(text: str) -> str:
    """The answer of a wrapped schema: the JSON of its ``value`` (as is when it is not
    such an object: validation will say what is wrong)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and set(value) == {_WRAP_KEY}:
        return json.dumps(value[_WRAP_KEY], ensure_ascii=False)
    return text


def wire_name(name: str) -> str:
    """A schema or tool name every provider accepts (``^[a-zA-Z0-9_-]{1,64}$``)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)[:64] or "answer"


def is_refusal(status: int | None, message: str) -> bool:
    """Whether an error refuses the structured-output request itself (a model or server
    without ``response_format`` or tools), so the same call without it may work.
    llama-cpp-python's server answers an unknown ``response_format`` type with a 500
    naming the field, so a server error that names it counts too."""
    if status in _REFUSAL_STATUS:
        return bool(_REFUSAL_WORDS.search(message))
    return status is not None and status >= 500 and bool(_REFUSAL_FIELDS.search(message))


def prompt_instruction(schema: dict[str, Any]) -> str:
    """What the system prompt says when the schema cannot be sent natively."""
    return (
        "Answer with one JSON value that matches this JSON Schema, and nothing else "
        "(no prose, no Markdown fence):\n"
        + json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    )
