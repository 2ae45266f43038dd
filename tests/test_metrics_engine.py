"""/metrics moves when runs, memories and notifications happen: durations by workflow
key and kind, memory latency, notification delivery latency."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from cognitionos.embedded import free_port
from tests.support import GQL, LiveServer
from tests.test_memory_api import search, store
from tests.test_notifications_api import SEND
from tests.test_workflows import create, run, transform


def samples(server: LiveServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = server.gql.client.get(f"{server.url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_runs_memories_and_notifications_move_their_metrics(engine_server: LiveServer) -> None:
    gql: GQL = engine_server.gql
    token = gql.member()
    before = samples(engine_server)
    refused = {  # nothing listens there: the step fails, with no attempt left
        "key": "b",
        "kind": "HTTP",
        "config": {"method": "GET", "url": f"http://127.0.0.1:{free_port()}/"},
        "dependsOn": ["a"],
    }
    create(gql, token, "metered", [transform("a", "x"), refused])
    create(gql, token, "metered-ok", [transform("a", "x")])
    assert run(gql, token, "metered")["status"] == "FAILED"
    assert run(gql, token, "metered-ok")["status"] == "SUCCEEDED"
    store(gql, token, "The deploy runbook lives in the wiki.")
    search(gql, token, "runbook")
    me = gql.ok("{ me { id } }", token=token)["me"]["id"]
    gql.ok(SEND, {"i": {"userId": me, "subject": "Hi", "body": "there"}}, token=token)
    deadline = time.monotonic() + 10
    while True:  # the worker's delivery loop sends it within a tick
        after = samples(engine_server)
        name = "cognitionos_notification_delivery_seconds_count"
        if value(after, name, channel="IN_APP") > value(before, name, channel="IN_APP"):
            break
        assert time.monotonic() < deadline, "no delivery latency observed"
        time.sleep(0.1)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    runs = "cognitionos_execution_duration_seconds_count"
    assert moved(runs, workflow="metered", status="FAILED") == 1
    assert moved(runs, workflow="metered-ok", status="SUCCEEDED") == 1
    steps = "cognitionos_step_duration_seconds_count"
    assert moved(steps, workflow="metered", kind="TRANSFORM", status="SUCCEEDED") == 1
    assert moved(steps, workflow="metered", kind="HTTP", status="FAILED") == 1
    assert moved("cognitionos_execution_duration_seconds_sum", workflow="metered-ok",
                 status="SUCCEEDED") > 0  # fmt: skip
    memory = "cognitionos_memory_operation_duration_seconds_count"
    assert moved(memory, operation="store") == 1
    assert moved(memory, operation="search") == 1
