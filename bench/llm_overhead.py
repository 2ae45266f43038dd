"""The router's added latency per LLM call, against the bare SDK, in one run.

A local server speaks the OpenAI and Anthropic streaming wire formats (the test suite's
fake). Each round makes the same call with the bare official SDK and through our router
(provider lookup, budget reservation, streaming, pricing, the ``llm_usage`` row that settles
the reservation, and metrics), alternating so that machine noise hits both alike. The caller
has a budget, so the router's reservation statement is on the path. Prints p50/p95 for both
and the overhead.
Usage: python bench/llm_overhead.py [calls-per-provider]
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' fake server

import anthropic
import openai
from _stack import embedded_stack

from cognitionos.config import Settings
from cognitionos.db import create_engine, create_sessionmaker
from cognitionos.db.models import Budget, User
from cognitionos.observability import Metrics, configure_logging
from cognitionos.services.llm import ChatRequest, Router, UsageTag
from tests.llm_fake import FakeLLM, Reply
from tests.support import LiveServer

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
ROUND = 20
TEXT = " ".join(f"word{i}" for i in range(20))
REQUEST = ChatRequest(
    messages=[{"role": "user", "content": "Count to twenty."}], system="Terse.", max_tokens=64
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bare_openai(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Terse."}, *REQUEST.messages],  # type: ignore[list-item]
        max_completion_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
    )
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts) == TEXT


async def bare_anthropic(client: anthropic.AsyncAnthropic) -> None:
    stream = await client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        system="Terse.",
        messages=REQUEST.messages,  # type: ignore[arg-type]
        stream=True,
    )
    parts = [
        e.delta.text  # type: ignore[union-attr]
        async for e in stream
        if e.type == "content_block_delta"
    ]
    assert "".join(parts) == TEXT


async def main() -> None:
    configure_logging(level="WARNING", json=True)
    fake = FakeLLM()
    fake.responder = lambda provider, body: Reply(TEXT)
    live = LiveServer(fake.app).start()  # type: ignore[arg-type]
    fake.url = live.url
    async with embedded_stack("cognitionos-bench-llm-") as stack:
        settings = Settings(
            env="test",
            database_url=stack.database_url,
            redis_url=stack.redis_url,
            **fake.settings(),
        )
        engine = create_engine(stack.database_url, pool_size=4, pre_ping=False)
        sessionmaker = create_sessionmaker(engine)
        user_id = uuid.uuid4()
        async with sessionmaker() as session:
            session.add(User(id=user_id, email="bench@example.com", password_hash="x"))
            await session.flush()
            session.add(Budget(user_id=user_id, monthly_usd=Decimal(1_000_000)))
            await session.commit()
        router = Router(settings, sessionmaker, metrics=Metrics())
        tag = UsageTag("BENCH", user_id=user_id)
        bare_o = openai.AsyncOpenAI(
            api_key="sk-test", base_url=f"{fake.url}/openai/v1", max_retries=0
        )
        bare_a = anthropic.AsyncAnthropic(
            api_key="sk-test", base_url=f"{fake.url}/anthropic", max_retries=0
        )
        cases = {
            "openai": (lambda: bare_openai(bare_o), "gpt-4o-mini"),
            "anthropic": (lambda: bare_anthropic(bare_a), "claude-haiku-4-5"),
        }
        print(f"{CALLS} streamed calls per provider and path, {len(TEXT.split())} tokens each")
        print(
            f"{'provider':<10} {'bare p50':>9} {'bare p95':>9} {'ours p50':>9} {'ours p95':>9} "
            f"{'+p50 ms':>8} {'+p95 ms':>8} {'ratio p50':>9}"
        )
        for name, (bare, model) in cases.items():
            for _ in range(10):  # warm up connections and code paths
                await bare()
                await router.complete(REQUEST, tag=tag, model=model)
            bare_ms: list[float] = []
            ours_ms: list[float] = []
            for _ in range(CALLS // ROUND):
                for _ in range(ROUND):
                    t0 = time.perf_counter()
                    await bare()
                    bare_ms.append((time.perf_counter() - t0) * 1000)
                for _ in range(ROUND):
                    t0 = time.perf_counter()
                    result = await router.complete(REQUEST, tag=tag, model=model)
                    ours_ms.append((time.perf_counter() - t0) * 1000)
                    assert result.text == TEXT
            b50, b95, o50, o95 = (
                pct(bare_ms, 0.5),
                pct(bare_ms, 0.95),
                pct(ours_ms, 0.5),
                pct(ours_ms, 0.95),
            )
            print(
                f"{name:<10} {b50:>9.2f} {b95:>9.2f} {o50:>9.2f} {o95:>9.2f} "
                f"{o50 - b50:>8.2f} {o95 - b95:>8.2f} {o50 / b50:>9.2f}"
            )
        print("goal: < 5 ms added at p95 (ours p95 - bare p95)")
        await router.aclose()
        await bare_o.close()
        await bare_a.close()
        await engine.dispose()
    live.stop()


if __name__ == "__main__":
    asyncio.run(main())
