"""The JSON Schema of a plan: the ``createWorkflow`` input the planner answers with, for
structured output. It is richer than what parsing checks (one shape per step kind, the
capabilities agents really have), because a provider that constrains decoding with it
(llama.cpp, vLLM, Ollama) then cannot even emit most invalid plans. What a plan must
satisfy is still decided by ``validate_steps``, whose errors go back to the model.

No length or count bounds (``maxLength``, ``maxItems``, ``{m,n}`` in patterns): grammar
converters unroll each into nested optional rules, and llama-cpp-python's server dies
parsing the grammar of a plan with a few of them (the answer-token limit bounds the
answer instead)."""

from __future__ import annotations

from typing import Any

__all__ = ["plan_schema"]

_KEY = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_TEXT = {"type": "string", "minLength": 1}


def _config(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
        "additionalProperties": False,
    }


def _step(kind: str, config: dict[str, Any], capabilities: list[str] | None = None) -> Any:
    properties: dict[str, Any] = {
        "key": _KEY,
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": [kind]},
    }
    required = ["key", "kind", "config", "dependsOn"]
    if capabilities is not None:
        properties["agentCapability"] = {"type": "string", "enum": capabilities}
        required.insert(2, "agentCapability")
    properties["config"] = config
    properties["dependsOn"] = {"type": "array", "items": _KEY}
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def plan_schema(capabilities: list[str]) -> dict[str, Any]:
    """The plan's schema, offering the step kinds the planner prompt describes; AGENT
    steps only when some agent has a capability, and only those capabilities."""
    variants = []
    if capabilities:
        variants.append(_step("AGENT", _config({"instruction": _TEXT}), capabilities))
    variants += [
        _step("LLM", _config({"prompt": _TEXT})),
        _step("TRANSFORM", _config({"template": _TEXT})),
        _step(
            "HTTP",
            _config(
                {"url": {"type": "string"}},
                {"method": {"type": "string", "enum": ["GET", "POST", "PUT", "DELETE"]}},
            ),
        ),
        _step("APPROVAL", _config({"prompt": _TEXT})),
    ]
    return {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "steps": {"type": "array", "minItems": 1, "items": {"anyOf": variants}},
        },
        "required": ["name", "description", "steps"],
        "additionalProperties": False,
    }
