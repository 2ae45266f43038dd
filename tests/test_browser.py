"""GraphiQL in a real headless Chromium, with no network beyond this server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import LiveServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (.ci/run installs Debian's chromium)"
)


def chromium(tmp_path: Path, *args: str) -> str:
    assert CHROMIUM is not None
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


def test_graphiql_renders_and_loads_the_schema_offline(server: LiveServer, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", f"{server.url}/graphql")
    # React rendered the editor, toolbar and run button: every script came from /static.
    assert 'class="graphiql-container"' in dom
    assert "graphiql-execute-button" in dom
    assert "Loading GraphiQL" not in dom
    shot = tmp_path / "graphiql.png"
    chromium(tmp_path, "--virtual-time-budget=10000", "--window-size=1280,800",
             f"--screenshot={shot}", f"{server.url}/graphql")  # fmt: skip
    assert shot.stat().st_size > 10_000  # a real picture, not a blank page
