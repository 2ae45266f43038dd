"""/metrics: bounded labels whatever clients send, and an optional bearer token."""

from __future__ import annotations

import random
import re
import signal
import string
import subprocess
import sys
import time
from typing import Any

import httpx

from cognitionos.embedded import free_port
from tests.conftest import TEST_SECRET, Stack
from tests.support import GQL, LiveServer

OPERATIONS = re.compile(r'cognitionos_graphql_operations_total\{name="([^"]*)"')
HTTP = re.compile(r'cognitionos_http_requests_total\{method="([^"]*)",route="([^"]*)"')


def scrape(server: LiveServer, **headers: str) -> httpx.Response:
    return server.gql.client.get(f"{server.url}/metrics", headers=headers)


def test_client_chosen_names_never_become_labels(gql: GQL, server: LiveServer) -> None:
    rng = random.Random(7)
    names = ["".join(rng.choices(string.ascii_letters, k=12)) for _ in range(50)]
    for i, name in enumerate(names):
        if i % 3 == 0:
            gql.post(f"query {name} {{ me {{ id }} }}")
        elif i % 3 == 1:
            gql.post(f"query {name} {{ {name} }}")  # not a field of the schema
        else:
            gql.post(f"query {name} {{ me {{ id }} health {{ status }} }}")
        gql.client.request(name.upper(), f"{server.url}/graphql")
        gql.client.get(f"{server.url}/{name}")

    text = scrape(server).text
    for name in names:
        assert name not in text and name.upper() not in text
    labels = set(OPERATIONS.findall(text))
    assert {"me", "other", "multiple"} <= labels
    roots = gql.ok(
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"
    )
    schema_names = {f["name"] for t in roots["__schema"].values() for f in t["fields"]}
    assert labels <= schema_names | {"__schema", "__type", "__typename", "other", "multiple"}
    methods_and_routes = set(HTTP.findall(text))
    assert ("GET", "other") in methods_and_routes
    # Standard methods other tests on this shared server sent may show; nothing invented.
    standard = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert {m for m, _ in methods_and_routes} <= standard | {"other"}


def test_the_metrics_token_guards_the_web_metrics(make_server: Any) -> None:
    server = make_server(metrics_token="scrape-me-0123456789")
    assert scrape(server).status_code == 401
    refused = scrape(server, Authorization="Bearer wrong")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    allowed = scrape(server, Authorization="Bearer scrape-me-0123456789")
    assert allowed.status_code == 200
    assert "cognitionos_http_requests_total" in allowed.text


def test_the_metrics_token_guards_a_separate_workers_metrics(stack: Stack) -> None:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "COGNITIONOS_ENV": "test",
        "DATABASE_URL": stack.database_url,
        # Redis database 2: no other worker of this test session listens there.
        "REDIS_URL": stack.redis.url.rsplit("/", 1)[0] + "/2",
        "SECRET_KEY": TEST_SECRET,
        "COGNITIONOS_DATA_DIR": str(stack.data_dir),
        "COGNITIONOS_WORKER_METRICS_PORT": str(port),
        "COGNITIONOS_METRICS_TOKEN": "worker-scrape-0123456789",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "cognitionos", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                anonymous = httpx.get(url)
                break
            except httpx.TransportError:
                assert worker.poll() is None, "the worker exited"
                assert time.monotonic() < deadline, "the worker never served metrics"
                time.sleep(0.2)
        assert anonymous.status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        allowed = httpx.get(url, headers={"Authorization": "Bearer worker-scrape-0123456789"})
        assert allowed.status_code == 200
        assert "cognitionos_step_dispatch_latency_seconds_count" in allowed.text
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def test_llm_model_labels_are_capped() -> None:
    from cognitionos.observability import Metrics

    metrics = Metrics()
    for i in range(80):  # models named in workflows: the first 50 keep their names
        metrics.llm_requests.labels("openai", f"model-{i}", "error").inc()
        metrics.llm_latency.labels("openai", f"model-{i}").observe(0.1)
    text = metrics.render().decode()
    models = set(re.findall(r'cognitionos_llm_requests_total\{model="([^"]*)"', text))
    assert len(models) == 51 and "other" in models and "model-0" in models
    assert "model-79" not in text
    assert (
        'cognitionos_llm_requests_total{model="other",outcome="error",provider="openai"} 30.0'
        in (text)
    )
