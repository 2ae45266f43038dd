"""Dockerfile and deploy/compose.yaml, checked without a container engine: what compose
would read (services, images or builds, dependencies, mounted files, env files), what
the image runs (every Procfile process, as a non-root user, no compiler in the final
stage) and that every file either copies exists."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROCFILE = dict(
    line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
)
COMPILERS = ("gcc", "g++", "cc ", "clang", "build-essential", "make ", "cmake", "rustc")


def dockerfile_stages() -> list[list[str]]:
    """Instructions (continuation lines joined, comments dropped) per FROM stage."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    """The Compose Specification's JSON schema (as ``docker compose config`` validates),
    by check-jsonschema's copy of it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(path),
        ],
        capture_output=True,
        text=True,
    )


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    checked = check_compose(DEPLOY / "compose.yaml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check can fail: a misspelt key and a dependency condition compose does not know.
    broken = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    broken["services"]["web"]["restart_policy"] = "always"
    broken["services"]["worker"]["depends_on"] = {"release": {"condition": "when_ready"}}
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    refused = check_compose(tmp_path / "compose.yaml")
    assert refused.returncode != 0
    assert "restart_policy" in refused.stdout and "when_ready" in refused.stdout


def test_compose_services_are_the_production_topology() -> None:
    assert set(SERVICES) == {
        "release", "web", "worker", "postgres", "redis", "jaeger", "prometheus", "grafana",
    }  # fmt: skip
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
    # release, web and worker: the Procfile's commands, on the one image built here.
    for process in ("release", "web", "worker"):
        service = SERVICES[process]
        assert service["image"] == "cognitionos:latest"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        expected = shlex.split(PROCFILE[process].replace("$PORT", "8000"))
        assert service["command"][: len(expected)] == expected or (
            process == "web" and service["command"] == [*expected[:4], "--port", "8000"]
        ), (process, service["command"])
    assert SERVICES["postgres"]["image"].startswith("pgvector/pgvector:pg17")
    assert SERVICES["jaeger"]["image"].startswith("jaegertracing/all-in-one:")


def test_compose_settings_are_production_ones() -> None:
    for process in ("release", "web", "worker"):
        service = SERVICES[process]
        env = service["environment"]
        assert env["COGNITIONOS_ENV"] == "production"
        assert env["DATABASE_URL"].startswith("postgresql://cognitionos:")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        reader = env["COGNITIONOS_SQL_STEP_DATABASE_URL"]
        assert reader.startswith("postgresql://cognitionos_sql_reader:")
        assert "SECRET_KEY" not in env  # from the env file, never in compose.yaml
        (env_file,) = service["env_file"]
        # The operator's copy is not in the repository; its template is.
        assert (DEPLOY / f"{env_file['path']}.example").is_file()
        assert re.search(
            r"^SECRET_KEY=", (DEPLOY / f"{env_file['path']}.example").read_text(), re.M
        )
    worker_env = SERVICES["worker"]["environment"]
    assert worker_env["COGNITIONOS_WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
    # Every ${VAR:?...} compose interpolates is in env.example.
    variables = set(re.findall(r"\$\{(\w+)", (DEPLOY / "compose.yaml").read_text()))
    example = (DEPLOY / "env.example").read_text()
    assert variables and all(re.search(rf"^{v}=", example, re.M) for v in variables), variables
    # The init script creates the roles the URLs name.
    init = (DEPLOY / "postgres" / "initdb" / "10-cognitionos.sh").read_text()
    assert "CREATE ROLE cognitionos LOGIN NOSUPERUSER" in init
    assert "CREATE ROLE cognitionos_sql_reader LOGIN NOSUPERUSER" in init


def test_compose_dependencies_and_mounts_exist() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", [])
        for target in depends:
            assert target in SERVICES and target != name, (name, target)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in COMPOSE["volumes"], (name, source)
    for process in ("web", "worker"):
        depends = SERVICES[process]["depends_on"]
        assert depends["release"]["condition"] == "service_completed_successfully"
    assert SERVICES["release"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    mounts = " ".join(SERVICES["prometheus"]["volumes"])
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml" in mounts
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    # alerts.yml (CognitionOSNoWorker) and the System dashboard name these jobs.
    assert set(jobs) == {"cognitionos-web", "cognitionos-worker"}
    assert jobs["cognitionos-worker"]["dns_sd_configs"][0]["port"] == int(
        SERVICES["worker"]["environment"]["COGNITIONOS_WORKER_METRICS_PORT"]
    )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_prometheus_config_is_valid() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_builds_a_wheel_and_runs_it_as_non_root() -> None:
    builder, final = dockerfile_stages()
    assert builder[0].split()[1].startswith("python:3.11")
    assert final[0].split()[1].startswith("python:3.11") and "slim" in final[0]
    assert any("pip wheel" in line for line in builder)
    # The final stage installs wheels only, from the builder, offline.
    (install,) = [line for line in final if "pip install" in line]
    assert "--no-index" in install and "from=builder" in install
    assert not any(line.upper().startswith(("COPY", "ADD")) for line in final)
    lowered = " ".join(final).lower()
    assert not [c for c in COMPILERS if c in lowered.replace("--", " ")]
    assert "apt-get" not in lowered
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert final[-1] == 'CMD ["cognitionos", "serve", "--host", "0.0.0.0"]'
    (health,) = [line for line in final if line.upper().startswith("HEALTHCHECK")]
    assert "/health/live" in health


def test_dockerfile_copies_only_what_exists_and_is_not_ignored() -> None:
    builder, _ = dockerfile_stages()
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = [line.split()[1:-1] for line in builder if line.upper().startswith("COPY")]
    sources = [s for sources in copies for s in sources if not s.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in allowed, source  # else .dockerignore leaves it out
    # Everything the wheel is built from goes in: pyproject's readme and the package.
    assert {"pyproject.toml", "README.md", "cognitionos"} <= set(sources)


@pytest.mark.timeout(180)
def test_the_wheel_the_image_installs_holds_every_package_file(tmp_path: Path) -> None:
    """From the builder stage's input (what .dockerignore lets in), setuptools lays out
    every file of the package the checkout tracks (migrations, prompts, the console's
    static files): ``build_py`` is the step of ``pip wheel`` that decides the wheel's
    contents (the whole wheel is not built: that needs the ``wheel`` package or an index)."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(
        ROOT / "cognitionos",
        context / "cognitionos",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    out = tmp_path / "lib"
    result = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()",
         "-q", "build_py", "--build-lib", str(out)],
        cwd=context, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    packed = {str(f.relative_to(out)) for f in out.rglob("*") if f.is_file()}
    tracked = subprocess.run(
        ["git", "ls-files", "cognitionos"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(tracked) > 50
    assert not [f for f in tracked if f not in packed]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"cognitionos": "cognitionos.cli:main"}  # the image's CMD
