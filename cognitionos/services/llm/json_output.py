"""Pull a JSON value out of a model's answer (bare, or in a ```json fence, or the
outermost object/array in prose) and check it against a JSON Schema."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

__all__ = ["JSONOutputError", "parse_json_output"]

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n?```", re.DOTALL)


class JSONOutputError(ValueError):
    """The answer is not JSON, or does not match the schema; the message says why."""


def _candidates(text: str) -> list[str]:
    found = [text.strip()]
    found += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            found.append(text[start : end + 1])
    return found


def parse_json_output(text: str, schema: dict[str, Any] | None = None) -> Any:
    for candidate in _candidates(text):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        break
    else:
        snippet = text.strip()[:200]
        raise JSONOutputError(f"the answer is not JSON: {snippet!r}")
    if schema is not None:
        validator = jsonschema.validators.validator_for(schema)(schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            detail = "; ".join(
                f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in errors[:5]
            )
            raise JSONOutputError(f"the answer does not match the output schema: {detail}")
    return value
