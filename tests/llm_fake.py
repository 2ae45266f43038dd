"""A local HTTP server that speaks the OpenAI and Anthropic wire formats (streaming SSE
and plain JSON, usage blocks, error bodies, Retry-After), so the real SDKs run against it.

Routes: ``/openai/v1/chat/completions``, ``/compat/v1/chat/completions`` (an
OpenAI-compatible server) and ``/anthropic/v1/messages``. Replies are scripted per
provider (``script``); with none queued, ``responder`` answers (by default: like the
agent persona the system prompt names).

Modes, to behave like the servers and small models met in practice:

- ``usage = False``: OpenAI-style streams carry no usage block, even when asked
  (llama.cpp's server).
- Structured output: a request asks for it natively with ``response_format``
  (``json_schema``, or ``json_object`` with a schema) or, on Anthropic, a forced tool;
  the reply's ``structured`` text answers such a request (streamed as the tool's
  ``input_json_delta`` on Anthropic), its ``text`` any other. ``small_model = True``
  makes the personas answer prose unless a schema was sent natively, as a small model
  does. ``refuse`` lists the modes (``json_schema``, ``json_object``, ``tool``) answered
  with a 400 naming them, as a server or model without them does (``refusal_status``:
  llama-cpp-python's server answers an unknown ``response_format`` type with a 500).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["FakeLLM", "Reply", "default_plan"]


@dataclass
class Reply:
    text: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    tokens_in: int = 12
    tokens_out: int | None = None  # None: one per streamed piece
    delay: float = 0.0  # before each streamed piece
    first_delay: float = 0.0  # before the first piece
    structured: str | None = None  # the answer when a schema is sent natively (None: text)


def pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [""]


def default_plan() -> dict[str, Any]:
    return {
        "name": "Research and write",
        "description": "Gather facts, then write them up.",
        "steps": [
            {
                "key": "research",
                "kind": "AGENT",
                "agentCapability": "research",
                "config": {"instruction": "List three facts about the goal."},
            },
            {
                "key": "write",
                "kind": "AGENT",
                "agentCapability": "writing",
                "config": {"instruction": "Write a paragraph from the facts."},
                "dependsOn": ["research"],
            },
        ],
    }


SMALL_MODEL_PLAN = "Sure! First I would research the goal, then write a paragraph about it."


def structured_mode(provider: str, body: dict[str, Any]) -> str | None:
    """How the request asks for structured output natively, if it does."""
    if provider == "anthropic":
        choice = body.get("tool_choice") or {}
        return "tool" if body.get("tools") and choice.get("type") == "tool" else None
    kind = (body.get("response_format") or {}).get("type")
    return kind if kind in ("json_schema", "json_object") else None


def persona_reply(provider: str, body: dict[str, Any]) -> Reply:
    """Answer like the persona the system prompt describes."""
    system = body.get("system") or ""
    if not system:
        for m in body.get("messages", []):
            if m.get("role") == "system":
                system = m.get("content") or ""
    last = body.get("messages", [{}])[-1].get("content", "")
    if "the planner of CognitionOS" in system:
        return Reply(json.dumps(default_plan()))
    if "the critic of CognitionOS" in system:
        return Reply(json.dumps({"score": 0.9, "critique": ""}))
    instruction = last.split("\n")[1] if last.startswith("## Instruction\n") else last[:60]
    return Reply(f"done: {instruction}")


class FakeLLM:
    PROVIDERS = ("openai", "anthropic", "compatible")

    def __init__(self) -> None:
        self.queues: dict[str, deque[Reply]] = {p: deque() for p in self.PROVIDERS}
        self.requests: dict[str, list[dict[str, Any]]] = {p: [] for p in self.PROVIDERS}
        self.headers: dict[str, list[dict[str, str]]] = {p: [] for p in self.PROVIDERS}
        self.responder: Callable[[str, dict[str, Any]], Reply] = persona_reply
        self.usage = True
        self.small_model = False
        self.refuse: set[str] = set()
        self.refusal_status = 400
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/openai/v1/chat/completions", self._openai("openai"), methods=["POST"]),
                Route("/compat/v1/chat/completions", self._openai("compatible"), methods=["POST"]),
                Route("/anthropic/v1/messages", self._anthropic, methods=["POST"]),
                Route("/openai/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        self.url = ""

    # -- test controls -----------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            for p in self.PROVIDERS:
                self.queues[p].clear()
                self.requests[p].clear()
                self.headers[p].clear()
            self.responder = persona_reply
            self.usage = True
            self.small_model = False
            self.refuse = set()
            self.refusal_status = 400

    def script(self, provider: str, *replies: Reply) -> None:
        with self._lock:
            self.queues[provider].extend(replies)

    def calls(self, provider: str) -> int:
        return len(self.requests[provider])

    def settings(self) -> dict[str, Any]:
        """Settings that point every provider at this server."""
        return {
            "openai_api_key": "sk-test-openai",
            "openai_base_url": f"{self.url}/openai/v1",
            "anthropic_api_key": "sk-ant-test",
            "anthropic_base_url": f"{self.url}/anthropic",
            "llm_compatible_base_url": f"{self.url}/compat/v1",
        }

    def _next(self, provider: str, request: Request, body: dict[str, Any]) -> Reply:
        """The reply, with its text chosen by how the request asked for the answer."""
        mode = structured_mode(provider, body)
        with self._lock:
            self.requests[provider].append(body)
            self.headers[provider].append(dict(request.headers))
            if mode is not None and mode in self.refuse:
                what = "tool use" if mode == "tool" else f"response_format type {mode!r}"
                return Reply(f"{what} is not supported by this model", status=self.refusal_status)
            queued = self.queues[provider].popleft() if self.queues[provider] else None
        if queued is not None:
            reply = queued
        else:
            reply = self.responder(provider, body)
            if self.small_model and reply.structured is None and reply.text.startswith("{"):
                reply = Reply(SMALL_MODEL_PLAN, structured=reply.text)
        if mode is not None and reply.structured is not None:
            return dataclasses.replace(reply, text=reply.structured)
        return reply

    # -- OpenAI ------------------------------------------------------------------------

    def _openai(self, provider: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            body = await request.json()
            reply = self._next(provider, request, body)
            if reply.status != 200:
                return JSONResponse(
                    {"error": {"message": reply.text, "type": "fake_error", "code": None}},
                    status_code=reply.status,
                    headers=reply.headers,
                )
            parts = pieces(reply.text)
            out = len(parts) if reply.tokens_out is None else reply.tokens_out
            usage = {
                "prompt_tokens": reply.tokens_in,
                "completion_tokens": out,
                "total_tokens": reply.tokens_in + out,
            }
            base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body["model"]}
            if not body.get("stream"):
                return JSONResponse(
                    {
                        **base,
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply.text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    }
                )

            async def events() -> AsyncIterator[str]:
                chunk = {**base, "object": "chat.completion.chunk"}
                await asyncio.sleep(reply.first_delay)
                for i, part in enumerate(parts):
                    if reply.delay:
                        await asyncio.sleep(reply.delay)
                    delta = {"content": part, **({"role": "assistant"} if i == 0 else {})}
                    choice = {"index": 0, "delta": delta, "finish_reason": None}
                    yield f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\n"
                done = {"index": 0, "delta": {}, "finish_reason": "stop"}
                yield f"data: {json.dumps({**chunk, 'choices': [done]})}\n\n"
                if self.usage and (body.get("stream_options") or {}).get("include_usage"):
                    yield f"data: {json.dumps({**chunk, 'choices': [], 'usage': usage})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return endpoint

    # -- OpenAI embeddings --------------------------------------------------------------

    async def _embeddings(self, request: Request) -> Response:
        """Deterministic vectors: each input's words hashed into the asked dimensions."""
        body = await request.json()
        with self._lock:
            self.requests["openai"].append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dim = int(body.get("dimensions") or 1536)
        data = []
        for index, text in enumerate(inputs):
            vector = [0.0] * dim
            for word in text.lower().split():
                vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dim] += 1.0
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(t.split()) for t in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": list(reversed(data)),  # order by "index", not by position
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # -- Anthropic ---------------------------------------------------------------------

    async def _anthropic(self, request: Request) -> Response:
        body = await request.json()
        reply = self._next("anthropic", request, body)
        if reply.status != 200:
            kind = "rate_limit_error" if reply.status == 429 else "api_error"
            return JSONResponse(
                {"type": "error", "error": {"type": kind, "message": reply.text}},
                status_code=reply.status,
                headers=reply.headers,
            )
        parts = pieces(reply.text)
        out = len(parts) if reply.tokens_out is None else reply.tokens_out
        tool = body["tool_choice"]["name"] if structured_mode("anthropic", body) else None
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if not body.get("stream"):
            content: dict[str, Any] = {"type": "text", "text": reply.text}
            if tool is not None:
                content = {
                    "type": "tool_use",
                    "id": "toolu_fake",
                    "name": tool,
                    "input": json.loads(reply.text),
                }
            return JSONResponse(
                {
                    **message,
                    "content": [content],
                    "stop_reason": "end_turn" if tool is None else "tool_use",
                    "usage": {"input_tokens": reply.tokens_in, "output_tokens": out},
                }
            )

        def sse(event: str, data: dict[str, Any]) -> str:
            return f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n"

        async def events() -> AsyncIterator[str]:
            start = {
                **message,
                "content": [],
                "usage": {"input_tokens": reply.tokens_in, "output_tokens": 1},
            }
            yield sse("message_start", {"message": start})
            block: dict[str, Any] = {"type": "text", "text": ""}
            if tool is not None:
                block = {"type": "tool_use", "id": "toolu_fake", "name": tool, "input": {}}
            yield sse("content_block_start", {"index": 0, "content_block": block})
            await asyncio.sleep(reply.first_delay)
            for part in parts:
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                delta = {"type": "text_delta", "text": part}
                if tool is not None:
                    delta = {"type": "input_json_delta", "partial_json": part}
                yield sse("content_block_delta", {"index": 0, "delta": delta})
            yield sse("content_block_stop", {"index": 0})
            stop = "end_turn" if tool is None else "tool_use"
            yield sse(
                "message_delta",
                {
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
            )
            yield sse("message_stop", {})

        return StreamingResponse(events(), media_type="text/event-stream")
