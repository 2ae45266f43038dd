"""Workflows end to end through GraphQL, with the worker running the steps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import event

from tests.support import CREATE_WORKFLOW, EXECUTE, GQL, LiveServer


def transform(key: str, template: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "kind": "TRANSFORM",
        "config": {"template": template},
        "dependsOn": list(deps),
        **extra,
    }


def workflow_input(key: str, steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """``createWorkflow``'s variables: version 1.0.0 and the key as name unless given."""
    payload = {"key": key, "version": extra.pop("version", "1.0.0"), "name": key, "steps": steps}
    payload.update(extra)
    return {"input": payload}


def create(gql: GQL, token: str, key: str, steps: list[dict[str, Any]], **extra: Any) -> Any:
    return gql.ok(CREATE_WORKFLOW, workflow_input(key, steps, **extra), token=token)[
        "createWorkflow"
    ]


def run(gql: GQL, token: str, key: str, inputs: dict[str, Any] | None = None, **extra: Any) -> Any:
    started = gql.ok(
        EXECUTE, {"input": {"workflowKey": key, "inputs": inputs or {}, **extra}}, token=token
    )["executeWorkflow"]
    return gql.wait_execution(started["id"], token)


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


@pytest.fixture
def token(gql: GQL) -> str:
    return gql.member()


class Flaky(BaseHTTPRequestHandler):
    """Fails ``failures`` times with 503, then answers JSON."""

    failures = 0
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if type(self).calls <= type(self).failures:
            self.send_response(503)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"echo": ' + (body or b"null") + b"}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[Flaky]]]:
    handler = type("Handler", (Flaky,), {"failures": 0, "calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", handler
    server.shutdown()
    server.server_close()


def test_diamond_runs_with_inputs_and_dependency_outputs(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "diamond",
        [
            transform("a", '{"n": {{ inputs.n }}}'),
            transform("b", "{{ steps.a.output.n * 2 }}", "a"),
            transform("c", "{{ steps.a.output.n + 1 }}", "a"),
            transform("d", '{"sum": {{ steps.b.output + steps.c.output }}}', "b", "c"),
        ],
        inputSchema={"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
    )
    execution = run(gql, token, "diamond", {"n": 5})
    assert execution["status"] == "SUCCEEDED", execution
    assert execution["outputs"] == {"d": {"sum": 16}}
    assert [s["status"] for s in execution["steps"]] == ["SUCCEEDED"] * 4
    assert execution["workflow"] == {"key": "diamond", "version": "1.0.0"}

    history = gql.ok(
        "query($id: ID!) { events(streamId: $id) { position version type data } }",
        {"id": execution["id"]},
        token=token,
    )["events"]
    types = [e["type"] for e in history]
    assert types[0] == "EXECUTION_CREATED" and types[-1] == "EXECUTION_SUCCEEDED"
    assert types.count("STEP_SUCCEEDED") == 4 and types.count("STEP_STARTED") == 4
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))
    positions = [e["position"] for e in history]
    assert positions == sorted(positions)
    # d started only after both b and c succeeded.
    order = [(e["type"], e["data"].get("stepKey")) for e in history]
    assert order.index(("STEP_STARTED", "d")) > order.index(("STEP_SUCCEEDED", "b"))
    assert order.index(("STEP_STARTED", "d")) > order.index(("STEP_SUCCEEDED", "c"))
    tail = gql.ok(
        "query($id: ID!, $after: Int) { events(streamId: $id, after: $after) { position } }",
        {"id": execution["id"], "after": positions[-3]},
        token=token,
    )["events"]
    assert [e["position"] for e in tail] == positions[-2:]


def test_steps_show_their_config_as_rendered(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "rendered",
        [transform("a", '"{{ inputs.who }}"'), transform("b", "hi {{ steps.a.output }}", "a")],
    )
    execution = run(gql, token, "rendered", {"who": "ada"})
    assert execution["status"] == "SUCCEEDED", execution
    steps = {s["stepKey"]: s for s in execution["steps"]}
    assert steps["a"]["inputs"] == {"template": '"ada"'}
    assert steps["b"]["inputs"] == {"template": "hi ada"}


def test_inputs_must_match_the_schema(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "typed",
        [transform("a", "x")],
        inputSchema={"type": "object", "properties": {"n": {"type": "integer"}}},
    )
    error = gql.error(
        EXECUTE, {"input": {"workflowKey": "typed", "inputs": {"n": "five"}}}, token=token
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "inputs.n"


def test_retries_with_backoff_then_success(gql: GQL, token: str, flaky: Any) -> None:
    url, handler = flaky
    handler.failures = 2
    create(
        gql,
        token,
        "flaky",
        [
            {
                "key": "call",
                "kind": "HTTP",
                "config": {"method": "POST", "url": url, "body": {"hello": "{{ inputs.who }}"}},
                "retry": {"maxAttempts": 3, "initialDelaySeconds": 0.1, "backoffFactor": 2},
            }
        ],
    )
    execution = run(gql, token, "flaky", {"who": "world"})
    assert execution["status"] == "SUCCEEDED", execution
    (step,) = execution["steps"]
    assert step["attempt"] == 3
    assert step["output"]["status"] == 200
    assert step["output"]["body"] == {"echo": {"hello": "world"}}
    assert step["inputs"] == {"method": "POST", "url": url, "body": {"hello": "world"}}
    history = gql.ok(
        "query($id: ID!) { events(streamId: $id) { type data } }",
        {"id": execution["id"]},
        token=token,
    )["events"]
    retrying = [e["data"] for e in history if e["type"] == "STEP_RETRYING"]
    assert [r["error"] for r in retrying] == [f"HTTP 503 from {url}"] * 2
    assert all(0.05 <= r["retryInSeconds"] <= 0.2 for r in retrying[:1])


def test_failure_skips_dependents_and_retry_reruns_only_those(
    gql: GQL, token: str, flaky: Any
) -> None:
    url, handler = flaky
    handler.failures = 100
    create(
        gql,
        token,
        "fragile",
        [
            transform("ok", '"kept"'),
            {
                "key": "call",
                "kind": "HTTP",
                "config": {"method": "POST", "url": url},
                "dependsOn": ["ok"],
                "retry": {"maxAttempts": 2, "initialDelaySeconds": 0.05},
            },
            transform("after", "{{ steps.call.output.status }}", "call"),
            transform("side", "independent"),
        ],
    )
    failed = run(gql, token, "fragile")
    assert failed["status"] == "FAILED"
    assert failed["error"] == f"step 'call' failed: HTTP 503 from {url}"
    status = {s["stepKey"]: s["status"] for s in failed["steps"]}
    assert status == {"ok": "SUCCEEDED", "call": "FAILED", "after": "SKIPPED", "side": "SUCCEEDED"}
    kept = next(s for s in failed["steps"] if s["stepKey"] == "ok")

    handler.failures = 0
    retried = gql.ok(
        "mutation($id: ID!) { retryExecution(id: $id) { id status } }",
        {"id": failed["id"]},
        token=token,
    )["retryExecution"]
    assert retried["status"] == "RUNNING"
    done = gql.wait_execution(failed["id"], token)
    assert done["status"] == "SUCCEEDED", done
    again = {s["stepKey"]: s for s in done["steps"]}
    assert again["ok"]["finishedAt"] == kept["finishedAt"]  # not re-run
    assert again["after"]["output"] == 200
    assert done["outputs"] == {"after": 200, "side": "independent"}


def test_timeout_counts_as_failure(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "slow",
        [
            {
                "key": "sleep",
                "kind": "PYTHON",
                "timeoutSeconds": 0.5,
                "config": {"code": "import time\ntime.sleep(10)\nresult = 1"},
            }
        ],
    )
    execution = run(gql, token, "slow")
    assert execution["status"] == "FAILED"
    assert execution["steps"][0]["error"] == "timed out after 0.5s"


def test_python_step_sees_inputs_and_steps(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "py",
        [
            transform("a", "[1, 2, 3]"),
            {
                "key": "sum",
                "kind": "PYTHON",
                "dependsOn": ["a"],
                "config": {
                    "code": "import os\nresult = {'total': sum(steps['a']['output']) + "
                    "inputs['k'], 'env': dict(os.environ)}"
                },
            },
        ],
    )
    execution = run(gql, token, "py", {"k": 10})
    assert execution["status"] == "SUCCEEDED", execution
    out = execution["outputs"]["sum"]
    assert out["total"] == 16
    # The parent's environment (PATH, HOME, secrets) does not reach the code.
    assert set(out["env"]) <= {"LC_CTYPE"}, out["env"]


def test_cancel_stops_running_and_pending_steps(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "long",
        [
            {"key": "sleep", "kind": "PYTHON", "config": {"code": "import time\ntime.sleep(30)"}},
            transform("after", "x", "sleep"),
        ],
    )
    started = gql.ok(EXECUTE, {"input": {"workflowKey": "long"}}, token=token)["executeWorkflow"]
    gql.wait_step(started["id"], token, "sleep", "RUNNING")
    cancelled = gql.ok(
        "mutation($id: ID!) { cancelExecution(id: $id) { status } }",
        {"id": started["id"]},
        token=token,
    )["cancelExecution"]
    assert cancelled["status"] == "CANCELLED"
    final = gql.wait_step(started["id"], token, "sleep", "CANCELLED", timeout=10)
    assert {s["stepKey"]: s["status"] for s in final["steps"]} == {
        "sleep": "CANCELLED",
        "after": "CANCELLED",
    }


def test_approval_waits_then_continues_or_fails(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "gate",
        [
            {"key": "ask", "kind": "APPROVAL", "config": {"prompt": "Ship {{ inputs.what }}?"}},
            transform("ship", "shipped by {{ steps.ask.output.by }}", "ask"),
        ],
    )
    approve = """mutation($id: ID!, $ok: Boolean!) {
        approveStep(stepExecutionId: $id, approved: $ok, comment: "fine") { status output } }"""
    waiting = run(gql, token, "gate", {"what": "v2"})
    assert waiting["status"] == "WAITING"
    ask = waiting["steps"][0]
    assert ask["status"] == "WAITING_APPROVAL"
    assert ask["inputs"] == {"prompt": "Ship v2?"}
    events = gql.ok(
        "query($id: ID!) { events(streamId: $id) { type data } }",
        {"id": waiting["id"]},
        token=token,
    )["events"]
    asked = next(e for e in events if e["type"] == "STEP_WAITING_APPROVAL")
    assert asked["data"]["prompt"] == "Ship v2?"  # what the approver reads, rendered
    step = gql.ok(approve, {"id": ask["id"], "ok": True}, token=token)["approveStep"]
    assert step["status"] == "SUCCEEDED" and step["output"]["approved"] is True
    done = gql.wait_execution(waiting["id"], token)
    assert done["status"] == "SUCCEEDED"
    assert done["outputs"]["ship"].startswith("shipped by ")
    again = gql.error(approve, {"id": ask["id"], "ok": True}, token=token)
    assert again["extensions"]["code"] == "CONFLICT"

    rejected = run(gql, token, "gate", {"what": "v3"})
    gql.ok(approve, {"id": rejected["steps"][0]["id"], "ok": False}, token=token)
    final = gql.wait_execution(rejected["id"], token)
    assert final["status"] == "FAILED" and "rejected: fine" in final["error"]

    other = gql.member("other@example.com")
    forbidden = gql.error(approve, {"id": rejected["steps"][0]["id"], "ok": True}, token=other)
    assert forbidden["extensions"]["code"] == "FORBIDDEN"


def test_idempotency_key_returns_the_first_execution(gql: GQL, token: str) -> None:
    create(gql, token, "once", [transform("a", "1")])
    body = {"input": {"workflowKey": "once", "idempotencyKey": "order-42"}}
    first = gql.ok(EXECUTE, body, token=token)["executeWorkflow"]
    second = gql.ok(EXECUTE, body, token=token)["executeWorkflow"]
    assert first["id"] == second["id"]
    other_user = gql.ok(EXECUTE, body, token=gql.member("o2@example.com"))["executeWorkflow"]
    assert other_user["id"] != first["id"]  # keys are per user


def test_sql_step_is_read_only_and_capped(gql: GQL, token: str) -> None:
    create(
        gql,
        token,
        "query",
        [
            {
                "key": "q",
                "kind": "SQL",
                "config": {
                    "query": "SELECT g AS n, :label AS label FROM generate_series(1, 2000) g",
                    "params": {"label": "{{ inputs.label }}"},
                },
            },
        ],
    )
    execution = run(gql, token, "query", {"label": "L"})
    assert execution["status"] == "SUCCEEDED", execution
    out = execution["outputs"]["q"]
    assert out["columns"] == ["n", "label"] and out["rows"][0] == [1, "L"]
    assert len(out["rows"]) == 1000 and out["truncated"] is True

    create(
        gql,
        token,
        "write",
        [
            {"key": "w", "kind": "SQL", "config": {"query": "DELETE FROM users"}},
        ],
    )
    failed = run(gql, token, "write")
    assert failed["status"] == "FAILED"
    assert "read-only transaction" in failed["steps"][0]["error"]


def test_definition_errors_name_the_step_and_field(gql: GQL, token: str) -> None:
    def error(steps: list[dict[str, Any]], **extra: Any) -> Any:
        payload = {"key": "bad", "version": "1.0.0", "name": "bad", "steps": steps, **extra}
        return gql.error(CREATE_WORKFLOW, {"input": payload}, token=token)

    cycle = error([transform("a", "x", "c"), transform("b", "x", "a"), transform("c", "x", "b")])
    assert cycle["extensions"]["code"] == "BAD_USER_INPUT"
    assert cycle["message"] == "dependency cycle: a -> c -> b -> a"
    assert error([transform("a", "x"), transform("a", "y")])["extensions"]["field"] == (
        "steps[1].key"
    )
    assert error([transform("a", "x", "ghost")])["extensions"]["field"] == "steps[0].dependsOn"
    unknown_kind = error([{"key": "a", "kind": "TELEPORT"}])
    assert unknown_kind["extensions"]["field"] == "steps[0].kind"
    assert "TRANSFORM" in unknown_kind["message"]
    bad_config = error([{"key": "a", "kind": "HTTP", "config": {"method": "GET"}}])
    assert bad_config["extensions"]["field"] == "steps[0].config.url"
    ref = error([transform("a", "{{ steps.ghost.output }}")])
    assert ref["extensions"]["field"] == "steps[0].config.template"
    assert "unknown step 'ghost'" in ref["message"]
    not_dep = error([transform("a", "1"), transform("b", "{{ steps.a.output }}")])
    assert "must depend on it" in not_dep["message"]
    assert error([transform("a", "x")], version="one")["extensions"]["field"] == "version"

    create(gql, token, "dup", [transform("a", "x")])
    conflict = gql.error(CREATE_WORKFLOW, workflow_input("dup", [transform("a", "y")]), token=token)
    assert conflict["extensions"]["code"] == "CONFLICT"


def test_latest_version_filters_and_viewer_rights(gql: GQL, token: str, db: Any) -> None:
    for version in ("1.2.0", "1.10.0", "2.0.0-rc.1", "1.9.9"):
        create(
            gql,
            token,
            "versions",
            [transform("a", version)],
            version=version,
            tags=["etl"] if version == "1.10.0" else [],
        )
    latest = gql.ok('{ workflow(key: "versions") { version } }', token=token)["workflow"]
    assert latest["version"] == "2.0.0-rc.1"
    pinned = gql.ok('{ workflow(key: "versions", version: "1.2.0") { version } }', token=token)
    assert pinned["workflow"]["version"] == "1.2.0"
    tagged = gql.ok(
        '{ workflows(filter: {tag: "etl"}) { edges { node { version } } } }', token=token
    )["workflows"]["edges"]
    assert [e["node"]["version"] for e in tagged] == ["1.10.0"]

    viewer = gql.member("viewer@example.com")
    db("UPDATE users SET role = 'VIEWER' WHERE email = 'viewer@example.com'")
    assert gql.ok('{ workflow(key: "versions") { key } }', token=viewer)["workflow"]
    denied = gql.error(EXECUTE, {"input": {"workflowKey": "versions"}}, token=viewer)
    assert denied["extensions"]["code"] == "FORBIDDEN"


def test_text_filter_matches_what_was_typed_literally(gql: GQL, token: str) -> None:
    named = {"like-slash": "C:\\reports\\daily", "like-pct": "100% done", "like-plain": "reports"}
    for key, name in named.items():
        create(gql, token, key, [transform("a", "1")], name=name)
    query = "query($t: String!) { workflows(filter: {text: $t}) { edges { node { key } } } }"

    def found(text: str) -> set[str]:
        edges = gql.ok(query, {"t": text}, token=token)["workflows"]["edges"]
        return {e["node"]["key"] for e in edges} & set(named)  # other tests' aside

    assert found("\\reports") == {"like-slash"}  # not "reports" alone: the backslash is literal
    assert found("ts\\d") == {"like-slash"}
    assert found("reports\\") == {"like-slash"}  # a trailing backslash is no escape either
    assert found("0% d") == {"like-pct"}
    assert found("%") == {"like-pct"}
    assert found("_") == set()


def test_executions_of_others_are_forbidden(gql: GQL, token: str) -> None:
    create(gql, token, "mine", [transform("a", "1")])
    mine = run(gql, token, "mine")
    other = gql.member("nosy@example.com")
    error = gql.error(
        "query($id: ID!) { execution(id: $id) { id } }", {"id": mine["id"]}, token=other
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    listed = gql.ok("{ executions { edges { node { id } } } }", token=other)["executions"]
    assert listed["edges"] == []


def test_a_page_of_executions_costs_a_constant_number_of_queries(
    gql: GQL, token: str, engine_server: LiveServer
) -> None:
    create(gql, token, "many", [transform("a", "1"), transform("b", "2", "a")])
    ids = [
        gql.ok(EXECUTE, {"input": {"workflowKey": "many"}}, token=token)["executeWorkflow"]["id"]
        for _ in range(50)
    ]
    for execution_id in ids:
        gql.wait_execution(execution_id, token)
    bind = engine_server.app.state.services.sessionmaker.kw["bind"].sync_engine
    statements: list[str] = []

    # The server's own loops read these tables too (the idle worker's EXISTS checks, the
    # reconciler's expired leases and lost dispatches): those are not the page's.
    background = ("EXISTS", "lease_expires_at <", "dispatched_at <")

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM workflow" in statement or "FROM step_executions" in statement:
            if not any(marker in statement for marker in background):
                statements.append(statement)

    query = """{ executions(first: 50) { edges { node { id status
        steps { stepKey status } workflow { key executions { id } } } } } }"""
    event.listen(bind, "before_cursor_execute", count)
    try:
        page = gql.ok(query, token=token)["executions"]["edges"]
        first = len(statements)
        again = gql.ok(query, token=token)["executions"]["edges"]
    finally:
        event.remove(bind, "before_cursor_execute", count)
    assert len(page) == 50 and again == page
    assert all(len(e["node"]["steps"]) == 2 for e in page)
    # page + steps + workflows + workflow executions: 4, whatever the page size; then the
    # server holds the workflow version (versions never change): 3.
    assert first == 4, statements
    assert len(statements) - first == 3, statements[first:]


def test_schedules_fire_through_the_worker(gql: GQL, token: str) -> None:
    create(gql, token, "cron", [transform("a", "{{ inputs.who }}")])
    created = gql.ok(
        """mutation { createSchedule(input: {workflowKey: "cron", kind: INTERVAL,
            expression: "1", inputs: {who: "timer"}}) { id kind nextRunAt enabled } }""",
        token=token,
    )["createSchedule"]
    assert created["enabled"] is True and created["nextRunAt"]
    deadline = time.monotonic() + 20
    while True:
        edges = gql.ok(
            '{ executions(filter: {workflowKey: "cron"}) { edges { node { id } } } }', token=token
        )["executions"]["edges"]
        if edges or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert edges, "the schedule never fired"
    done = gql.wait_execution(edges[-1]["node"]["id"], token)
    assert done["outputs"] == {"a": "timer"}

    paused = gql.ok(
        "mutation($id: ID!) { updateSchedule(id: $id, input: {enabled: false}) { enabled } }",
        {"id": created["id"]},
        token=token,
    )["updateSchedule"]
    assert paused == {"enabled": False}
    bad = gql.error(
        'mutation { createSchedule(input: {workflowKey: "cron", kind: CRON, '
        'expression: "not cron"}) { id } }',
        token=token,
    )
    assert bad["extensions"]["field"] == "expression"
    assert (
        gql.ok(
            "mutation($id: ID!) { deleteSchedule(id: $id) }", {"id": created["id"]}, token=token
        )["deleteSchedule"]
        is True
    )
    assert gql.ok("{ schedules { id } }", token=token)["schedules"] == []


def test_engine_metrics_are_exported(gql: GQL, token: str, engine_server: LiveServer) -> None:
    create(gql, token, "measured", [transform("a", "1"), transform("b", "2", "a")])
    assert run(gql, token, "measured")["status"] == "SUCCEEDED"
    text = gql.client.get(f"{engine_server.url}/metrics").text
    assert 'cognitionos_events_total{type="EXECUTION_SUCCEEDED"}' in text
    assert 'cognitionos_events_total{type="STEP_SUCCEEDED"}' in text
    count = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("cognitionos_step_dispatch_latency_seconds_count")
    )
    assert count >= 2
    assert "cognitionos_queue_depth " in text
    assert "cognitionos_websocket_subscriptions " in text
