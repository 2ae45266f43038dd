"""One reading of a step's text that may be JSON: parsed when it is, else the text as is."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_or_text"]


def json_or_text(text: str, *, containers_only: bool = False) -> Any:
    """``text`` parsed as JSON, or ``text`` itself when it is not JSON. With
    ``containers_only`` only an object or array counts: an agent's answer of ``42`` or
    ``true`` is prose, a template's is a value."""
    stripped = text.strip()
    first = stripped[:1]
    if containers_only:
        looks_like_json = first in ("{", "[")
    else:
        looks_like_json = (
            first in ("{", "[", '"', "-")
            or first.isdigit()
            or stripped in ("true", "false", "null")
        )
    if looks_like_json:
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return text
