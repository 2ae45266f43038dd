"""What a workflow step hands to memory, notifications and agents: the shapes both sides
name, in one neutral module. Memory, notifications and agents export them as their own
inputs (``storeMemory``, ``searchMemories``, ``sendNotification``, a pinned prompt);
the workflow engine's steps validate their configs with them. Neither side imports the
other for them (``tests/test_layering.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field, StrictInt, StrictStr, ValidationInfo, model_validator

from cognitionos.db.models import Channel, MemoryScope, MemoryType, Priority
from cognitionos.services.specs import Number, Spec, WhenRendered, spec_error

__all__ = [
    "MAX_CONTENT",
    "Content",
    "MemoryFilter",
    "MemoryInput",
    "MetadataCondition",
    "NotificationInput",
    "PromptVersion",
    "Seconds",
    "Share",
]

# A pinned prompt version (an agent's, an AGENT step's); versions count from 1.
PromptVersion = Annotated[StrictInt, Field(ge=1)]

MAX_CONTENT = 20_000


def _content(text: str) -> str:
    text = text.strip()
    if not text:
        raise spec_error("content is empty")
    if len(text) > MAX_CONTENT:
        raise spec_error(f"content is longer than {MAX_CONTENT} characters")
    return text


Content = Annotated[StrictStr, AfterValidator(_content)]
Share = Annotated[Number, Field(ge=0, le=1)]  # importance, confidence
Seconds = Annotated[StrictInt, Field(gt=0)]


class MemoryInput(Spec):
    """A memory to store: ``storeMemory``'s input, a MEMORY_STORE step's config."""

    content: Content
    type: MemoryType = MemoryType.LONG_TERM
    scope: MemoryScope = MemoryScope.USER
    scope_id: StrictStr | None = None
    importance: Share = 0.5
    confidence: Share = 1.0
    metadata: dict[str, Any] | None = None  # a JSON default cannot be shown in GraphQL
    ttl_seconds: Seconds | None = Field(
        None, description="Default: settings for WORKING and SHORT_TERM, none otherwise."
    )


_OPS = ("eq", "in_", "contains", "gt", "gte", "lt", "lte")


def _bound(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise spec_error(f"{info.field_name} takes a number or a string")
    return value


Bound = Annotated[Any, AfterValidator(_bound)]


class MetadataCondition(Spec):
    """One test on ``metadata[key]``: equality, membership (``in``), containment (an
    array holding the value(s), or a string holding the substring) and ranges (numbers
    compare as numbers, strings — ISO-8601 dates — as text)."""

    key: StrictStr
    eq: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    contains: Any = None
    gt: Bound = None
    gte: Bound = None
    lt: Bound = None
    lte: Bound = None

    @model_validator(mode="after")
    def _tests_something(self) -> Self:
        if not self.key:
            raise spec_error("a metadata condition needs a key", field="key")
        if all(getattr(self, op) is None for op in _OPS):
            raise spec_error("a metadata condition needs one of eq, in, contains, gt, gte, lt, lte")
        return self


class MemoryFilter(Spec):
    """What ``memories`` and ``searchMemories`` (and a MEMORY_SEARCH step) narrow to."""

    types: list[MemoryType] | None = None
    scope: MemoryScope | None = None
    scope_id: StrictStr | None = None
    min_confidence: Number | None = None
    metadata: list[MetadataCondition] = []
    created_after: Annotated[datetime | None, WhenRendered] = None


@dataclass
class NotificationInput:
    """A notification to create: ``sendNotification``'s input, what a NOTIFY step sends."""

    user_id: uuid.UUID
    channel: Channel = Channel.IN_APP
    template: str | None = None
    subject: str | None = None
    body: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.NORMAL
    dedup_key: str | None = None
