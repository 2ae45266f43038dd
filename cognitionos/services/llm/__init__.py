"""LLM providers, the router with fallback, pricing, and the usage ledger."""

from __future__ import annotations

from cognitionos.services.llm.budget import get_budget, set_budget
from cognitionos.services.llm.json_output import JSONOutputError, parse_json_output
from cognitionos.services.llm.options import LLMOptions
from cognitionos.services.llm.pricing import PRICES, cost_of
from cognitionos.services.llm.providers import Provider, build_providers
from cognitionos.services.llm.router import PROVIDER_NAMES, Router, Target
from cognitionos.services.llm.types import ChatRequest, ChatResult, ProviderError, UsageTag
from cognitionos.services.llm.usage import (
    UsageGroup,
    UsageRow,
    month_usage,
    summarize_usage,
)

__all__ = [
    "PRICES",
    "PROVIDER_NAMES",
    "ChatRequest",
    "ChatResult",
    "JSONOutputError",
    "LLMOptions",
    "Provider",
    "ProviderError",
    "Router",
    "Target",
    "UsageGroup",
    "UsageRow",
    "UsageTag",
    "build_providers",
    "cost_of",
    "get_budget",
    "month_usage",
    "parse_json_output",
    "set_budget",
    "summarize_usage",
]
