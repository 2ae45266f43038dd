"""USD per million tokens (input, output). Settings override or extend the table
(``COGNITIONOS_LLM_PRICES='{"llama3": [0, 0]}'``). A model matches its longest listed
prefix, so dated snapshots (``gpt-4o-mini-2024-07-18``) price like their family."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["PRICES", "cost_of"]

PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-opus-4": (15.00, 75.00),
}

_MILLION = Decimal(1_000_000)


def cost_of(
    model: str,
    tokens_in: int,
    tokens_out: int,
    overrides: dict[str, list[float]] | None = None,
) -> Decimal | None:
    """The call's cost, or None when the model's price is unknown (never a silent 0)."""
    table: dict[str, tuple[float, ...]] = {
        **PRICES,
        **{k: tuple(v) for k, v in (overrides or {}).items()},
    }
    name = model.lower()
    match = max(
        (prefix for prefix in table if name.startswith(prefix.lower())), key=len, default=None
    )
    if match is None:
        return None
    price_in, price_out = table[match][:2]
    cost = (Decimal(str(price_in)) * tokens_in + Decimal(str(price_out)) * tokens_out) / _MILLION
    return cost.quantize(Decimal("0.000001"))
