"""Memories from conversations (the Mem0 scheme) and consolidation, by the summarizer.

``remember_conversation``: (1) the summarizer extracts the facts worth keeping; (2) each
fact is compared with the most similar memories of the scope; (3) the summarizer decides
per fact and memory: ADD, UPDATE (rewrite a memory), DELETE (a memory the facts
contradict) or NOOP; (4) the decisions are applied. Existing memories are shown to the
model under short numbers, never their ids, so it cannot invent one.

``consolidate_memories``: the scope's SHORT_TERM memories are folded into LONG_TERM facts
(stored with the usual near-duplicate merge) and removed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select

from cognitionos.db.models import AgentRole, Memory, MemoryScope, MemoryType
from cognitionos.services.agents.service import AgentService, LeasedAgent
from cognitionos.services.auth import Principal
from cognitionos.services.errors import BadUserInput
from cognitionos.services.llm import JSONOutputError, UsageTag, parse_json_output
from cognitionos.services.memory.filters import MemoryFilter, can_write, live
from cognitionos.services.memory.service import MemoryService
from cognitionos.services.memory.store import MemoryInput, MemoryPatch, StoreOutcome

__all__ = ["MemoryChange", "MemoryEvent", "consolidate_memories", "remember_conversation"]

_SIMILAR = 5
_MAX_MESSAGES = 200

FACTS_SCHEMA = {
    "type": "object",
    "required": ["facts"],
    "properties": {"facts": {"type": "array", "items": {"type": "string"}}},
}
DECISIONS_SCHEMA = {
    "type": "object",
    "required": ["memory"],
    "properties": {
        "memory": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["event"],
                "properties": {
                    "id": {"type": "string"},
                    "text": {"type": "string"},
                    "event": {"enum": ["ADD", "UPDATE", "DELETE", "NOOP"]},
                },
            },
        }
    },
}
CONSOLIDATED_SCHEMA = {
    "type": "object",
    "required": ["facts"],
    "properties": {
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string"},
                    "importance": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        }
    },
}

EXTRACT = """Extract the facts worth remembering from this conversation: preferences,
personal details, plans, decisions, and anything the user would expect to be remembered.
One short self-contained sentence per fact. Ignore greetings and small talk.
Answer with JSON only: {{"facts": ["...", "..."]}} (an empty list when there is nothing).

Conversation:
{conversation}"""

DECIDE = """You keep a memory store up to date. Compare the new facts with the existing
memories and decide, for each, one event:
- ADD: a new fact not covered by any memory (give its "text"; no "id").
- UPDATE: a memory that a new fact refines or corrects (give its "id" and the new "text").
- DELETE: a memory that the new facts contradict (give its "id").
- NOOP: a fact or memory that needs no change (give the memory "id" when there is one).

Existing memories (id: text):
{existing}

New facts:
{facts}

Answer with JSON only: {{"memory": [{{"id": "0", "text": "...", "event": "UPDATE"}}, ...]}}"""

CONSOLIDATE = """Fold these short-term memories into durable long-term facts: merge the ones
that say the same thing, drop what is trivial or transient, keep every detail that matters.
One self-contained sentence per fact, with an importance from 0 to 1.
Answer with JSON only: {{"facts": [{{"text": "...", "importance": 0.7}}]}}

Short-term memories:
{memories}"""


class MemoryEvent(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    NOOP = "NOOP"


@dataclass
class MemoryChange:
    event: MemoryEvent
    memory: Memory | None
    previous_content: str | None = None


async def _summarizer_call(
    agents: AgentService, principal: Principal, prompt: str, schema: dict[str, Any], purpose: str
) -> Any:
    """One JSON answer from a summarizer agent (waits up to 30 s for a free one)."""
    agents.llm.ensure_configured()
    async with agents.wait_for(role=AgentRole.SUMMARIZER, wait_seconds=30.0) as leased:
        return await _ask_json(leased, principal, prompt, schema, purpose)


async def _ask_json(
    leased: LeasedAgent, principal: Principal, prompt: str, schema: dict[str, Any], purpose: str
) -> Any:
    messages = [{"role": "user", "content": prompt}]
    for attempt in range(2):  # one repair round for malformed JSON
        call = await leased.ask(
            messages=messages,
            tag=UsageTag(purpose=purpose, user_id=principal.user_id),
            output_schema=schema,
            schema_name=purpose.lower(),
        )
        try:
            return parse_json_output(call.result.text, schema)
        except JSONOutputError as exc:
            if attempt:
                raise BadUserInput(f"the summarizer's answer is unusable: {exc}") from None
            messages += [
                {"role": "assistant", "content": call.result.text},
                {"role": "user", "content": f"{exc}. Answer with the JSON only."},
            ]
    raise AssertionError("unreachable")


async def remember_conversation(
    memory: MemoryService,
    agents: AgentService,
    *,
    principal: Principal,
    messages: list[dict[str, str]],
    scope: MemoryScope,
    scope_id: str | None,
) -> list[MemoryChange]:
    if not messages:
        raise BadUserInput("no messages", field="messages")
    if len(messages) > _MAX_MESSAGES:
        raise BadUserInput(f"at most {_MAX_MESSAGES} messages", field="messages")
    can_write(scope, None, principal)
    conversation = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    extracted = await _summarizer_call(
        agents,
        principal,
        EXTRACT.format(conversation=conversation),
        FACTS_SCHEMA,
        "MEMORY_EXTRACT",
    )
    facts = [f.strip() for f in extracted["facts"] if f.strip()]
    if not facts:
        return []
    scoped = MemoryFilter(scope=scope, scope_id=scope_id)
    similar: dict[str, Memory] = {}
    for fact in facts:
        for hit in await memory.search(principal, fact, _SIMILAR, scoped):
            similar.setdefault(str(hit.memory.id), hit.memory)
    numbered = list(similar.values())
    existing = "\n".join(f"{i}: {m.content}" for i, m in enumerate(numbered)) or "(none)"
    decided = await _summarizer_call(
        agents,
        principal,
        DECIDE.format(existing=existing, facts=json.dumps(facts, ensure_ascii=False)),
        DECISIONS_SCHEMA,
        "MEMORY_UPDATE",
    )
    return await _apply(memory, principal, decided["memory"], numbered, scope, scope_id)


async def _apply(
    memory: MemoryService,
    principal: Principal,
    decisions: list[dict[str, Any]],
    numbered: list[Memory],
    scope: MemoryScope,
    scope_id: str | None,
) -> list[MemoryChange]:
    def known(decision: dict[str, Any]) -> Memory | None:
        ref = str(decision.get("id", ""))
        return numbered[int(ref)] if ref.isdigit() and int(ref) < len(numbered) else None

    changes: list[MemoryChange] = []
    for decision in decisions:
        event = MemoryEvent(decision["event"])
        target = known(decision)
        text = str(decision.get("text") or "").strip()
        if event is MemoryEvent.ADD and text:
            stored = await memory.store(
                principal,
                MemoryInput(content=text, type=MemoryType.SEMANTIC, scope=scope, scope_id=scope_id),
            )
            merged = stored.outcome is StoreOutcome.MERGED
            changes.append(MemoryChange(MemoryEvent.UPDATE if merged else event, stored.memory))
        elif event is MemoryEvent.UPDATE and target is not None and text:
            before = target.content
            updated = await memory.update(principal, target.id, MemoryPatch(content=text))
            changes.append(MemoryChange(event, updated, before))
        elif event is MemoryEvent.DELETE and target is not None:
            if await memory.forget(principal, target.id):
                changes.append(MemoryChange(event, target, target.content))
        elif event is MemoryEvent.NOOP:
            changes.append(MemoryChange(event, target))
    return changes


async def consolidate_memories(
    memory: MemoryService,
    agents: AgentService,
    *,
    principal: Principal,
    scope: MemoryScope,
    scope_id: str | None,
) -> tuple[list[tuple[Memory, StoreOutcome]], int]:
    can_write(scope, None, principal)
    async with memory.sessionmaker() as session:
        stmt = select(Memory).where(
            Memory.type == MemoryType.SHORT_TERM,
            Memory.scope == scope,
            Memory.scope_id.is_not_distinct_from(scope_id),
            live(),
        )
        if scope is not MemoryScope.GLOBAL:
            stmt = stmt.where(Memory.owner_id == principal.user_id)
        short = list((await session.scalars(stmt.order_by(Memory.created_at).limit(200))).all())
    if not short:
        return [], 0
    listed = "\n".join(f"- {m.content}" for m in short)
    answer = await _summarizer_call(
        agents,
        principal,
        CONSOLIDATE.format(memories=listed),
        CONSOLIDATED_SCHEMA,
        "MEMORY_CONSOLIDATE",
    )
    created: list[tuple[Memory, StoreOutcome]] = []
    for fact in answer["facts"]:
        text = str(fact["text"]).strip()
        if not text:
            continue
        stored = await memory.store(
            principal,
            MemoryInput(
                content=text,
                type=MemoryType.LONG_TERM,
                scope=scope,
                scope_id=scope_id,
                importance=float(fact.get("importance", 0.5)),
            ),
        )
        created.append((stored.memory, stored.outcome))
    async with memory.sessionmaker() as session:
        await session.execute(delete(Memory).where(Memory.id.in_([m.id for m in short])))
        await session.commit()
    return created, len(short)
