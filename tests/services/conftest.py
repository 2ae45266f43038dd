"""What the services' own tests share: a template renderer, as a runtime would build one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cognitionos.services.templating import TemplateRenderer


@pytest.fixture
def renderer() -> Iterator[TemplateRenderer]:
    """Render processes for a test that renders without a runtime; killed after it.
    They start at the first render (a test that renders nothing starts none)."""
    renderer = TemplateRenderer()
    yield renderer
    renderer.close()
