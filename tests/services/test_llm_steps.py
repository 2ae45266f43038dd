"""The LLM and AGENT step kinds on their own: validation and a missing provider."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cognitionos.config import Settings
from cognitionos.services.errors import BadUserInput
from cognitionos.services.workflows.steps import (
    StepContext,
    StepDeps,
    StepFailure,
    get_kind,
)
from tests.support import no_rendering


def context() -> StepContext:
    return StepContext(
        deps=StepDeps(
            settings=Settings(env="test"),
            sessionmaker=None,  # type: ignore[arg-type]
            renderer=no_rendering(),
        ),
        execution_id=uuid.uuid4(),
        step_id=uuid.uuid4(),
        step_key="s",
        attempt=1,
        actor_id=None,
        agent_capability="writing",
    )


@pytest.mark.parametrize("kind", ["LLM", "AGENT"])
async def test_without_a_provider_the_step_fails_for_good_naming_the_settings(kind: str) -> None:
    step = get_kind(kind)
    assert step is not None
    config = {"prompt": "Hi"} if kind == "LLM" else {"instruction": "Hi"}
    with pytest.raises(StepFailure) as caught:
        await step.run(context(), config)
    assert not caught.value.retryable
    assert "OPENAI_API_KEY" in str(caught.value) and "ANTHROPIC_API_KEY" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("LLM", {}, "c.prompt"),
        ("LLM", {"prompt": "x", "provider": "acme"}, "c.provider"),
        ("LLM", {"prompt": "x", "temperature": 5}, "c.temperature"),
        ("LLM", {"prompt": "x", "outputSchema": {"type": "nope"}}, "c.outputSchema"),
        ("LLM", {"prompt": "x", "stream": True}, "c.stream"),
        ("AGENT", {"instruction": "x", "critic": {"threshold": 2}}, "c.critic.threshold"),
        ("AGENT", {"instruction": "x", "critic": "yes"}, "c.critic"),
    ],
)
def test_bad_configs_name_the_field(kind: str, config: dict[str, Any], field: str) -> None:
    step = get_kind(kind)
    assert step is not None
    with pytest.raises(BadUserInput) as caught:
        step.validate(config, field="c")
    assert caught.value.field == field
