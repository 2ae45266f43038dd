"""A local HTTP server that speaks the OpenAI and Anthropic wire formats (streaming SSE
and plain JSON, usage blocks, error bodies, Retry-After), so the real SDKs run against it.

Routes: ``/openai/v1/chat/completions``, ``/compat/v1/chat/completions`` (an
OpenAI-compatible server) and ``/anthropic/v1/messages``. Replies are scripted per
provider (``script``); with none queued, ``responder`` answers (by default: like the
agent persona the system prompt names).
"""

from __future__ import annotations

import asyncio
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
        with self._lock:
            self.requests[provider].append(body)
            self.headers[provider].append(dict(request.headers))
            queued = self.queues[provider].popleft() if self.queues[provider] else None
        return queued or self.responder(provider, body)

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
                if (body.get("stream_options") or {}).get("include_usage"):
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
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if not body.get("stream"):
            return JSONResponse(
                {
                    **message,
                    "content": [{"type": "text", "text": reply.text}],
                    "stop_reason": "end_turn",
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
            block = {"type": "text", "text": ""}
            yield sse("content_block_start", {"index": 0, "content_block": block})
            await asyncio.sleep(reply.first_delay)
            for part in parts:
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                delta = {"type": "text_delta", "text": part}
                yield sse("content_block_delta", {"index": 0, "delta": delta})
            yield sse("content_block_stop", {"index": 0})
            yield sse(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": out},
                },
            )
            yield sse("message_stop", {})

        return StreamingResponse(events(), media_type="text/event-stream")
