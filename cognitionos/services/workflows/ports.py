"""What the workflow engine needs from the services it drives, as Protocols it owns.

Steps, the planner, the reconciler and the engine's transitions reach agents, memory,
notifications and the LLM router only through these; the runtime
(``cognitionos/runtime.py``) hands in the concrete services, which match them by shape
and never import this package. So the dependency runs one way: agents, memory and
notifications know nothing of workflows, and workflows import none of them
(``tests/test_layering.py`` keeps it so). The values that cross (a memory or a
notification to write) are in ``services/inputs.py``, which both sides import; the LLM's
request and answer types are the router's own (``services/llm`` sits below both).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from enum import Enum
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from cognitionos.db.models import Agent, AgentRole, Memory, Notification, Prompt
from cognitionos.db.models.workflows import WorkflowExecution
from cognitionos.services.auth import Principal
from cognitionos.services.inputs import MemoryFilter, MemoryInput, NotificationInput
from cognitionos.services.llm import ChatRequest, ChatResult, UsageTag
from cognitionos.services.llm.types import OnToken

__all__ = [
    "LLM",
    "AgentAnswer",
    "Agents",
    "FoundMemory",
    "LeasedAgent",
    "Memories",
    "Notifications",
    "StoredMemory",
]


class LLM(Protocol):
    """The router: one completion, with fallbacks, budgets and usage accounting."""

    @property
    def configured(self) -> bool: ...

    def ensure_configured(self) -> None:
        """LLM_UNAVAILABLE naming the settings when no provider is configured."""

    async def complete(
        self,
        request: ChatRequest,
        *,
        tag: UsageTag,
        model: str | None = None,
        provider: str | None = None,
        on_token: OnToken | None = None,
    ) -> ChatResult: ...


class AgentAnswer(Protocol):
    """An agent's answer, and the role prompt it answered under."""

    @property
    def result(self) -> ChatResult: ...

    @property
    def prompt(self) -> Prompt: ...


class LeasedAgent(Protocol):
    """A unit of an agent's capacity held for a block of work."""

    @property
    def agent(self) -> Agent: ...

    async def ask(
        self,
        *,
        messages: list[dict[str, str]],
        tag: UsageTag,
        prompt_version: int | None = None,
        variables: dict[str, Any] | None = None,
        on_token: OnToken | None = None,
        output_schema: dict[str, Any] | None = None,
        schema_name: str = "answer",
        max_tokens: int | None = None,
    ) -> AgentAnswer:
        """One call as this agent, its role prompt as the system message (``prompt_version``
        pins one). ``output_schema``: the answer is JSON of that schema; ``max_tokens``:
        the answer limit. Raises LLM_UNAVAILABLE as the router does."""
        ...


class Agents(Protocol):
    """The agent registry, as work sees it: lease one, wait for one, heal their loads."""

    def lease(
        self,
        *,
        capability: str | None = None,
        role: AgentRole | None = None,
        step_id: uuid.UUID | None = None,
    ) -> AbstractAsyncContextManager[LeasedAgent | None]:
        """A free agent for the block (None: none is free), released after it."""
        ...

    def wait_for(
        self, *, role: AgentRole, wait_seconds: float
    ) -> AbstractAsyncContextManager[LeasedAgent]:
        """An agent of ``role`` for a request that cannot be re-queued: CONFLICT when none
        is online, or none frees up within ``wait_seconds``."""
        ...

    async def exist(self, *, capability: str | None = None, role: AgentRole | None = None) -> bool:
        """Whether any agent that is not OFFLINE could ever take this work."""
        ...

    async def heal_loads(self, *, stale_after: float) -> int:
        """Recount the loads a dead worker never gave back; how many agents changed."""
        ...


class StoredMemory(Protocol):
    @property
    def memory(self) -> Memory: ...

    @property
    def outcome(self) -> Enum: ...  # CREATED, or MERGED into a near-duplicate


class FoundMemory(Protocol):
    @property
    def memory(self) -> Memory: ...

    @property
    def score(self) -> float: ...

    @property
    def similarity(self) -> float: ...

    @property
    def rank(self) -> int: ...


class Memories(Protocol):
    """Memory with the same rights as over the API (the principal's)."""

    async def store(self, principal: Principal, data: MemoryInput) -> StoredMemory: ...

    async def search(
        self, principal: Principal, query: str, limit: int, filter: MemoryFilter | None
    ) -> Sequence[FoundMemory]: ...


class Notifications(Protocol):
    """Notifications, written in the caller's session."""

    async def send(
        self, session: AsyncSession, *, principal: Principal, data: NotificationInput
    ) -> Notification:
        """As ``sendNotification``: admins notify anyone, members themselves. Commits."""
        ...

    async def notify_owner(
        self, session: AsyncSession, execution: WorkflowExecution, event: str
    ) -> None:
        """The owner's notices of an execution's end or wait, in the transition's own
        transaction (so a crash cannot lose them); other events notify no one."""
        ...
