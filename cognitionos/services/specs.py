"""Shapes that are validated, stored and exposed (a step, an agent, a memory) are pydantic
models with camelCase aliases: one place for their fields, defaults and rules. This module
is their base, and the one place where their validation errors become BAD_USER_INPUT
naming the field (and the step) as a client wrote it, e.g. ``steps[2].config.url``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Self, get_args

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    ConfigDict,
    Strict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from cognitionos.services.errors import BadUserInput

__all__ = [
    "UNRENDERED",
    "Number",
    "Spec",
    "WhenRendered",
    "invalid",
    "spec_error",
]

# An int or a float; not a bool, not a numeric string.
Number = Annotated[float, Strict()]

# Validation context of a step config as written, before its templates are rendered.
UNRENDERED: dict[str, Any] = {"unrendered": True}


def _when_rendered(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    templated = isinstance(value, str) and ("{{" in value or "{%" in value)
    if templated and (info.context or {}).get("unrendered"):
        return value  # checked when the step runs, once rendered
    return handler(value)


# A field a template may fill: as written, a template passes; rendered, the value is checked.
WhenRendered = WrapValidator(_when_rendered)


def spec_error(message: str, *, field: str | None = None) -> PydanticCustomError:
    """A rule's own message; ``field`` names the member it is about when a model-wide
    rule finds it (the error is then reported at that member)."""
    return PydanticCustomError("spec", message, {"field": field} if field else None)


class Spec(BaseModel):
    """Built from the client's camelCase keys or from Python names; unknown keys are
    refused; a null means the default. What a client sent goes through ``parse``."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @classmethod
    def parse(
        cls, raw: Any, *, field: str | None = None, step: str | None = None, context: Any = None
    ) -> Self:
        """Validate ``raw``; errors name ``field`` + the path inside, and ``step``."""
        try:
            return cls.model_validate(raw, context=context)
        except ValidationError as exc:
            raise invalid(exc, cls, field=field, step=step) from None

    def dump(self) -> dict[str, Any]:
        """The JSON form, with the camelCase keys: what is stored and published."""
        return self.model_dump(mode="json", by_alias=True)


_NOUNS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "tuple_type": "a list",
    "datetime_type": "a date and time",
    "datetime_parsing": "an ISO 8601 date and time",
    "datetime_from_date_parsing": "an ISO 8601 date and time",
}
_RANGES = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _fields(model: type[BaseModel]) -> dict[str, tuple[str, FieldInfo]]:
    """A model's fields by alias and by name, each with its alias."""
    found: dict[str, tuple[str, FieldInfo]] = {}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        found[name] = found[alias] = (alias, info)
    return found


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def _walk(
    model: type[BaseModel] | None, loc: Sequence[int | str]
) -> tuple[list[str | int], type[BaseModel] | None, FieldInfo | None]:
    """The location with aliases, the model holding its last member, and that member."""
    path: list[str | int] = []
    holder, info = model, None
    for part in loc:
        if isinstance(part, int):
            path.append(part)
            continue
        found = _fields(holder).get(part) if holder is not None else None
        if found is None:
            path.append(part)
            holder = info = None
            continue
        alias, info = found
        path.append(alias)
        holder = _model_in(info.annotation)
    return path, holder, info


def _bounds(info: FieldInfo | None) -> str | None:
    found: dict[str, Any] = {}

    def collect(items: Sequence[Any]) -> None:
        for item in items:
            if isinstance(item, FieldInfo):
                collect(item.metadata)
            elif isinstance(item, (Ge, Gt, Le, Lt)):
                name = type(item).__name__.lower()
                found[name] = getattr(item, name)
            else:
                collect(get_args(item))

    if info is None:
        return None
    collect([*info.metadata, info.annotation])
    low = {k: v for k, v in found.items() if k in ("ge", "gt")}
    high = {k: v for k, v in found.items() if k in ("le", "lt")}
    if "ge" in low and "le" in high:
        return f"between {low['ge']:g} and {high['le']:g}"
    if "gt" in low and "le" in high:
        return f"in ({low['gt']:g}, {high['le']:g}]"
    if low.get("gt") == 0 and not high:
        return "positive"
    if "ge" in low and not high:
        return f"at least {low['ge']:g}"
    return None


def _message(
    error: ErrorDetails, model: type[BaseModel], loc: list[str | int], where: str | None
) -> str:
    kind = error["type"]
    path, _, info = _walk(model, loc)
    parents = (where or "").split(".")[:-1] if path else []
    owner = parents[-1] if parents and parents[-1].isidentifier() else ""
    named = [i for i, p in enumerate(path) if isinstance(p, str)]
    name = _join(None, path[named[-1] :]) if named else None
    name = name or where or "the input"
    if kind == "spec":
        return error["msg"]
    if kind == "missing":
        return f"{owner} needs {name!r}" if owner else f"{name} is required"
    if kind == "extra_forbidden":
        _, parent, _ = _walk(model, loc[:-1])
        allowed = sorted(alias for alias, _ in _fields(parent).values()) if parent else []
        expected = f"; expected one of {sorted(set(allowed))}" if allowed else ""
        return f"unknown {owner + ' ' if owner else ''}field {name!r}{expected}"
    if kind in _NOUNS:
        return f"{name} must be {_NOUNS[kind]}"
    if kind == "enum":
        return f"{name} must be {error.get('ctx', {}).get('expected')}, not {error['input']!r}"
    if kind in _RANGES and (bounds := _bounds(info)) is not None:
        return f"{name} must be {bounds}"
    return f"{name}: {error['msg']}"


def _join(field: str | None, path: Sequence[str | int]) -> str | None:
    out = field or ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


def invalid(
    exc: ValidationError,
    model: type[BaseModel],
    *,
    field: str | None = None,
    step: str | None = None,
) -> BadUserInput:
    """The first error as BAD_USER_INPUT: ``field`` is where the model sits in the input."""
    error = exc.errors(include_url=False)[0]
    loc = list(error["loc"])
    if error["type"] == "spec" and (member := (error.get("ctx") or {}).get("field")):
        loc.append(member)
    path, _, _ = _walk(model, loc)
    where = _join(field, path)
    message = _message(error, model, loc, where)
    if step is not None:
        message = f"step {step!r}: {message}"
    return BadUserInput(message, field=where, step=step)
