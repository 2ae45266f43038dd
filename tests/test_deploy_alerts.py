"""deploy/prometheus/alerts.yml: valid rules (promtool check rules), each alert firing on
the series it is about and quiet on healthy ones (promtool test rules), and every metric
it names exported by the server."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import LiveServer

PROMETHEUS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed"
)


@needs_promtool
def test_rules_are_valid() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", "alerts.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_each_alert_fires_when_it_should() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", "alerts.test.yml"],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_name_only_metrics_the_server_exports(server: LiveServer) -> None:
    exported = set(
        re.findall(r"^# TYPE (\S+) ", server.gql.client.get(f"{server.url}/metrics").text, re.M)
    )
    names = set(re.findall(r"\b(cognitionos_[a-z_]+)", (PROMETHEUS / "alerts.yml").read_text()))
    assert names, "no metric found in the rules"
    known = set()
    for name in exported:  # a histogram or counter family exports these series
        known |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    assert names <= known, names - known
