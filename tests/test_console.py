"""The web console at ``/`` in Debian's Chromium, driven by Playwright (sync API).

Everything the console does goes through the public GraphQL API of a real server with an
in-process worker; the browser reaches nothing but that server.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from cognitionos.app import create_app, server_config
from cognitionos.web.console import CONSOLE_DIR
from tests.conftest import Stack
from tests.llm_fake import FakeLLM, Reply
from tests.support import CREATE_WORKFLOW, EXECUTION, GQL, STRONG_PASSWORD, LiveServer

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
DOCS_SHOT = Path(__file__).resolve().parent.parent / "docs" / "console.png"
UPDATE_DOCS = os.environ.get("COGNITIONOS_UPDATE_DOCS_SCREENSHOT") == "1"

EVENTS = "query($id: ID!) { events(streamId: $id) { position version type } }"
RELEASE_STEPS: list[dict[str, Any]] = [
    {"key": "prep", "kind": "TRANSFORM", "config": {"template": '"{{ inputs.what }}"'}},
    {
        "key": "draft",
        "kind": "LLM",
        "config": {"prompt": "Write release notes for {{ steps.prep.output }}"},
        "dependsOn": ["prep"],
    },
    {
        "key": "ask",
        "kind": "APPROVAL",
        "config": {"prompt": "Ship {{ inputs.what }}?"},
        "dependsOn": ["draft"],
    },
    {
        "key": "ship",
        "kind": "TRANSFORM",
        "config": {"template": "shipped {{ inputs.what }}"},
        "dependsOn": ["ask"],
    },
]
NOTES = "Release notes: faster start, fewer round trips, a console that stays live. "


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("needs Chromium (.ci/run installs Debian's chromium)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def test_the_console_is_served_from_here_only(server: LiveServer) -> None:
    """Every module the page imports is served, and the page may load nothing else."""
    client = server.gql.client
    page = client.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    pending = [m.group(1) for m in re.finditer(r'(?:src|href)="(/console/[^"]+)"', page.text)]
    assert "/console/js/app.js" in pending and "/console/console.css" in pending
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        answer = client.get(f"{server.url}{path}")
        assert answer.status_code == 200, path
        if path.endswith(".js"):
            assert "javascript" in answer.headers["content-type"], path
            base = path.rsplit("/", 1)[0]
            for spec in re.findall(r'^(?:import|export)[^;]*?from "(\.[^"]+)"', answer.text, re.M):
                pending.append(posixpath.normpath(posixpath.join(base, spec)))
    # Every module of the console is reachable from the page: none is dead or missing.
    on_disk = {
        "/console/" + str(f.relative_to(CONSOLE_DIR)) for f in CONSOLE_DIR.rglob("*") if f.is_file()
    }
    assert on_disk - {"/console/index.html"} == seen


def watch(page: Any) -> list[str]:
    """Errors the page logs or throws: a console that works logs none."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: (
            problems.append(f"left the server: {r.url}")
            if not r.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:"))
            else None
        ),
    )
    return problems


def log_in(page: Any, email: str) -> None:
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(STRONG_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("logout")).to_be_visible()


def node(page: Any, key: str) -> Any:
    return page.locator(f'[data-testid="dag-node"][data-step-key="{key}"]')


def api_state(gql: GQL, execution_id: str, token: str) -> dict[str, str]:
    execution = gql.ok(EXECUTION, {"id": execution_id}, token=token)["execution"]
    return {s["stepKey"]: s["status"] for s in execution["steps"]}


def dag_state(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        '[data-testid="dag-node"]',
        "nodes => Object.fromEntries(nodes.map(n => [n.dataset.stepKey, n.dataset.status]))",
    )


def history(page: Any) -> list[int]:
    return page.eval_on_selector_all(
        '[data-testid="event-row"]', "rows => rows.map(r => Number(r.dataset.position))"
    )


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_run_with_an_approval_is_live_reload_safe_and_notifies(
    engine_server: LiveServer, llm_fake: FakeLLM, browser: Any, tmp_path: Path
) -> None:
    gql = engine_server.gql
    token = gql.register("console@example.com")["accessToken"]
    gql.ok(
        CREATE_WORKFLOW,
        {
            "input": {
                "key": "release",
                "version": "1.0.0",
                "name": "Release",
                "description": "Draft notes, ask a human, ship.",
                "steps": RELEASE_STEPS,
                "inputSchema": {
                    "type": "object",
                    "required": ["what"],
                    "properties": {"what": {"type": "string", "title": "What to ship"}},
                },
            }
        },
        token=token,
    )
    # The LLM step streams slowly enough to be watched token by token.
    llm_fake.script("openai", Reply(NOTES, delay=0.25))
    expect.set_options(timeout=20_000)

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems = watch(page)
    page.goto(f"{engine_server.url}/")
    expect(page).to_have_url(re.compile(r"#/login"))
    page.screenshot(path=tmp_path / "login.png")
    log_in(page, "console@example.com")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    expect(page.get_by_text("No executions yet.")).to_be_visible()  # the designed empty state

    # Run it from the form generated from its input schema.
    page.goto(f"{engine_server.url}/#/workflows/release")
    page.get_by_label("What to ship").fill("v2")
    page.screenshot(path=tmp_path / "workflow.png", full_page=True)
    page.get_by_test_id("run-workflow").click()
    expect(page).to_have_url(re.compile(r"#/executions/[0-9a-f-]{36}"))
    execution_id = re.search(r"#/executions/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]

    # Live: the LLM step runs and its tokens stream into the output pane.
    expect(node(page, "prep")).to_have_attribute("data-status", "SUCCEEDED")
    expect(node(page, "draft")).to_have_attribute("data-status", "RUNNING")
    node(page, "draft").click()
    output = page.get_by_test_id("step-output")
    expect(output).to_have_attribute("data-streaming", "true")
    expect(output).to_contain_text("Release notes:")
    # Reloaded mid-stream, the selected step and the text so far are back at once.
    page.reload()
    expect(page).to_have_url(re.compile(r"step=draft"))
    expect(page.get_by_test_id("step-output")).to_contain_text("Release notes:")
    expect(node(page, "draft")).to_have_attribute("data-status", "SUCCEEDED")
    inputs = page.get_by_test_id("step-inputs")  # its config as rendered for the attempt
    expect(inputs).to_have_attribute("data-rendered", "true")
    expect(inputs).to_contain_text("Write release notes for v2")
    expect(node(page, "ask")).to_have_attribute("data-status", "WAITING_APPROVAL")
    expect(page.get_by_test_id("execution-status")).to_have_attribute("data-status", "WAITING")
    expect(output).to_contain_text("a console that stays live")
    # Waiting for approval notified the owner: the badge rose without a reload.
    expect(page.get_by_test_id("notification-badge")).to_have_attribute("data-count", "1")
    page.screenshot(path=tmp_path / "waiting.png")

    # Reload mid-run: the same state, every event once.
    page.reload()
    expect(node(page, "ask")).to_have_attribute("data-status", "WAITING_APPROVAL")
    api_events = gql.ok(EVENTS, {"id": execution_id}, token=token)["events"]
    wait_for(lambda: len(history(page)) == len(api_events), "the history after the reload")
    positions = history(page)
    assert positions == sorted(set(positions)) == [e["position"] for e in api_events]
    assert dag_state(page) == api_state(gql, execution_id, token)
    expect(page.get_by_test_id("notification-badge")).to_have_attribute("data-count", "1")

    # A second tab: the inbox as stored, no notification replayed over its live feed.
    inbox = context.new_page()
    inbox_problems = watch(inbox)
    inbox.goto(f"{engine_server.url}/#/notifications")
    expect(inbox.get_by_test_id("notification-item")).to_have_count(1)
    expect(inbox.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
    badge = inbox.get_by_test_id("notification-badge")
    expect(badge).to_have_attribute("data-count", "1")
    time.sleep(1)  # a replay would come right after subscribing
    assert badge.get_attribute("data-received") == "0"

    # Approve in the first tab; the run finishes live and its success notifies both tabs.
    page.bring_to_front()
    node(page, "ask").click()
    page.get_by_label("Comment (optional)").fill("ship it")
    page.screenshot(path=tmp_path / "approval.png")
    if UPDATE_DOCS or not DOCS_SHOT.exists():  # not on every run: it is a tracked file
        DOCS_SHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=DOCS_SHOT)
    page.get_by_test_id("approve-button").click()
    expect(node(page, "ship")).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.get_by_test_id("execution-status")).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.get_by_test_id("cancel-button")).to_have_count(0)
    expect(page.get_by_test_id("notification-badge")).to_have_attribute("data-count", "2")
    expect(badge).to_have_attribute("data-count", "2")
    expect(inbox.get_by_test_id("notification-item")).to_have_count(2)
    assert badge.get_attribute("data-received") == "1"

    api_events = gql.ok(EVENTS, {"id": execution_id}, token=token)["events"]
    wait_for(lambda: len(history(page)) == len(api_events), "the complete history")
    assert history(page) == [e["position"] for e in api_events]
    assert dag_state(page) == api_state(gql, execution_id, token)
    assert api_events[-1]["type"] == "EXECUTION_SUCCEEDED"
    node(page, "draft").click()
    expect(page.get_by_test_id("step-output")).to_contain_text("a console that stays live")
    page.screenshot(path=tmp_path / "succeeded.png", full_page=True)

    # Mark read in the inbox: both tabs' badges go down.
    inbox.get_by_test_id("mark-read").first.click()
    expect(badge).to_have_attribute("data-count", "1")
    expect(page.get_by_test_id("notification-badge")).to_have_attribute("data-count", "1")

    # The list shows the run with its final status; at phone width it is still usable.
    page.goto(f"{engine_server.url}/#/executions")
    row = page.locator(f'[data-testid="execution-row"][data-execution-id="{execution_id}"]')
    expect(row).to_have_attribute("data-status", "SUCCEEDED")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=tmp_path / "phone-list.png", full_page=True)
    page.goto(f"{engine_server.url}/#/executions/{execution_id}")
    expect(node(page, "ship")).to_have_attribute("data-status", "SUCCEEDED")
    page.screenshot(path=tmp_path / "phone-execution.png", full_page=True)

    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-email")).to_be_visible()
    assert problems == [] and inbox_problems == []
    context.close()


def new_page(browser: Any, server: LiveServer, email: str, **context: Any) -> tuple[Any, list[str]]:
    """A logged-in console page and the list its errors go to."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}, **context).new_page()
    problems = watch(page)
    page.goto(f"{server.url}/")
    log_in(page, email)
    return page, problems


def local_session(page: Any) -> dict[str, Any]:
    return page.evaluate("JSON.parse(localStorage.getItem('cognitionos.session'))")


GATE = [
    {"key": "ask", "kind": "APPROVAL", "config": {"prompt": "Go?"}},
    {"key": "after", "kind": "TRANSFORM", "config": {"template": "done"}, "dependsOn": ["ask"]},
]
APPROVE = """mutation($id: ID!) { approveStep(stepExecutionId: $id, approved: true) { status } }"""
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"


def serve_on(port: int, app: Any) -> LiveServer:
    """The app on a given port: a server that comes back where the browser left it."""
    live = LiveServer(app)
    live.port = port
    live.server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port))
    live.thread = threading.Thread(target=live.server.run, daemon=True)
    return live.start()


def test_refresh_a_server_restart_and_an_expired_session_lose_nothing(
    stack: Stack, make_server: Callable[..., LiveServer], browser: Any, tmp_path: Path
) -> None:
    # Access tokens live 5 s: the console refreshes every 4 s, reconnecting its socket.
    settings = {"worker_in_process": True, "access_token_ttl_seconds": 5}
    server = make_server(**settings)
    gql = server.gql
    gql.register("refresh@example.com")

    def token() -> str:
        return str(gql.login("refresh@example.com").json()["data"]["login"]["accessToken"])

    gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": "gate", "version": "1.0.0", "name": "Gate", "steps": GATE}},
        token=token(),
    )
    started = gql.ok(EXECUTE_GATE, {"input": {"workflowKey": "gate"}}, token=token())
    execution_id = started["executeWorkflow"]["id"]
    waiting = gql.wait_execution(execution_id, token())
    assert waiting["status"] == "WAITING"

    page, problems = new_page(browser, server, "refresh@example.com")
    page.goto(f"{server.url}/#/executions/{execution_id}")
    expect(node(page, "ask")).to_have_attribute("data-status", "WAITING_APPROVAL")
    first = local_session(page)["accessToken"]
    wait_for(lambda: local_session(page)["accessToken"] != first, "a refreshed token", timeout=12)
    connection = page.get_by_test_id("connection")
    expect(connection).to_have_attribute("data-state", "connected")

    # The server goes away: the console says so and retries with backoff.
    server.stop()
    expect(connection).to_have_attribute("data-state", "waiting")
    expect(connection).to_contain_text("retrying in")
    page.screenshot(path=tmp_path / "server-gone.png")
    # It comes back (same port, same data); the step is approved meanwhile. The console
    # reconnects and resumes from its last position: the rest arrives, each event once.
    restarted = serve_on(server.port, create_app(stack.settings(**settings)))
    try:
        gql = restarted.gql
        gql.ok(APPROVE, {"id": waiting["steps"][0]["id"]}, token=token())
        expect(connection).to_have_attribute("data-state", "connected", timeout=20_000)
        expect(node(page, "after")).to_have_attribute("data-status", "SUCCEEDED")
        status = page.get_by_test_id("execution-status")
        expect(status).to_have_attribute("data-status", "SUCCEEDED")
        api_events = gql.ok(EVENTS, {"id": execution_id}, token=token())["events"]
        wait_for(lambda: len(history(page)) == len(api_events), "the complete history")
        assert history(page) == [e["position"] for e in api_events]
        assert dag_state(page) == api_state(gql, execution_id, token())
        page.screenshot(path=tmp_path / "server-back.png")

        # The login is revoked elsewhere: the next refresh fails, back to the login page,
        # and after logging in again, back to the execution.
        gql.ok(LOGOUT, {"t": local_session(page)["refreshToken"]}, token=token())
        expect(page).to_have_url(re.compile(r"#/login\?next=.*reason=expired"), timeout=15_000)
        expect(page.get_by_text("Your session has expired")).to_be_visible()
        log_in(page, "refresh@example.com")
        expect(page).to_have_url(re.compile(f"#/executions/{execution_id}"))
        expect(node(page, "after")).to_have_attribute("data-status", "SUCCEEDED")
    finally:
        restarted.stop()
    # What the browser logged: the refused refresh and the unreachable server, nothing else.
    expected = ("401", "UNAUTHENTICATED", "ERR_CONNECTION_REFUSED", "connection establishment")
    assert all(any(e in p for e in expected) for p in problems), problems
    page.context.close()


EXECUTE_GATE = (
    """mutation($input: ExecuteWorkflowInput!) { executeWorkflow(input: $input) { id } }"""
)
CANCEL = "mutation($id: ID!) { cancelExecution(id: $id) { status } }"


def test_a_run_retried_in_another_tab_comes_back_to_life_in_this_one(
    engine_server: LiveServer, browser: Any
) -> None:
    """A cancelled run's stream has completed; when another tab retries it, this one shows
    the retry (the step waiting for approval again), not CANCELLED."""
    expect.set_options(timeout=20_000)
    gql = engine_server.gql
    token = gql.register("tabs@example.com")["accessToken"]
    gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": "gate", "version": "1.0.0", "name": "Gate", "steps": GATE}},
        token=token,
    )
    run = gql.ok(EXECUTE_GATE, {"input": {"workflowKey": "gate"}}, token=token)["executeWorkflow"]
    assert gql.wait_execution(run["id"], token)["status"] == "WAITING"
    gql.ok(CANCEL, {"id": run["id"]}, token=token)
    url = f"{engine_server.url}/#/executions/{run['id']}"
    watching, problems = new_page(browser, engine_server, "tabs@example.com")
    watching.goto(url)
    status = watching.get_by_test_id("execution-status")
    expect(status).to_have_attribute("data-status", "CANCELLED")
    expect(watching.get_by_test_id("connection-note")).to_have_text(
        "finished: a retry would show here"
    )
    other, other_problems = new_page(browser, engine_server, "tabs@example.com")
    other.goto(url)
    other.get_by_test_id("retry-button").click()
    expect(other.get_by_test_id("execution-status")).to_have_attribute("data-status", "WAITING")

    expect(status).to_have_attribute("data-status", "WAITING")
    expect(node(watching, "ask")).to_have_attribute("data-status", "WAITING_APPROVAL")
    expect(watching.get_by_test_id("connection-note")).to_have_text("live")
    expect(watching.get_by_test_id("retry-button")).to_have_count(0)
    assert problems == [] and other_problems == []


WIDE = [
    {"key": "start", "kind": "TRANSFORM", "config": {"template": "0"}},
    *(
        {
            "key": f"part-{i:02d}",
            "kind": "TRANSFORM",
            "config": {"template": str(i)},
            "dependsOn": ["start"],
        }
        for i in range(48)
    ),
    {
        "key": "join",
        "kind": "TRANSFORM",
        "config": {"template": "all"},
        "dependsOn": [f"part-{i:02d}" for i in range(48)],
    },
]
STORE = "mutation($i: StoreMemoryInput!) { storeMemory(input: $i) { id } }"
UPDATE_AGENT = "mutation($id: ID!) { updateAgent(id: $id, input: {status: OFFLINE}) { status } }"


def test_every_page_works_and_fifty_steps_stay_legible(
    engine_server: LiveServer, llm_fake: FakeLLM, browser: Any, db: Any, tmp_path: Path
) -> None:
    gql = engine_server.gql
    token = gql.register("tour@example.com")["accessToken"]
    # The db fixture runs its own event loop: not inside Playwright's, so in a thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(db, "UPDATE users SET role = 'ADMIN' WHERE email = 'tour@example.com'").result()
    gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": "wide", "version": "1.0.0", "name": "Wide", "steps": WIDE}},
        token=token,
    )
    for content in (
        "The rollout plan starts on Monday.",
        "Lunch is at noon.",
        "Rollback if errors rise.",
    ):
        gql.ok(STORE, {"i": {"content": content}}, token=token)
    page, problems = new_page(browser, engine_server, "tour@example.com")

    # Designed empty states, and an API error shown rather than swallowed.
    page.goto(f"{engine_server.url}/#/notifications")
    expect(page.get_by_text("No notifications yet.")).to_be_visible()
    page.goto(f"{engine_server.url}/#/usage")
    expect(page.get_by_text("No LLM calls in this period.")).to_be_visible()
    page.goto(f"{engine_server.url}/#/executions/00000000-0000-0000-0000-000000000000")
    expect(page.get_by_test_id("error")).to_contain_text("NOT_FOUND")

    # 50 steps: one column of 48 between a root and a join, every node full size, none overlapping.
    page.goto(f"{engine_server.url}/#/workflows/wide")
    page.get_by_test_id("run-workflow").click()
    expect(page).to_have_url(re.compile(r"#/executions/[0-9a-f-]{36}"))
    nodes = page.get_by_test_id("dag-node")
    expect(nodes).to_have_count(50)
    expect(node(page, "join")).to_have_attribute("data-status", "SUCCEEDED")
    assert set(dag_state(page).values()) == {"SUCCEEDED"}
    boxes = nodes.evaluate_all(
        "ns => ns.map(n => n.getBoundingClientRect()).map(r => [r.x, r.y, r.width, r.height])"
    )
    assert all(w >= 150 and h >= 50 for _, _, w, h in boxes)
    overlapping = [
        (a, b)
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
    ]
    assert not overlapping
    assert len({round(x) for x, *_ in boxes}) == 3  # start | 48 parts | join
    # Keyboard: a node is a button; arrows move between columns, Enter selects.
    node(page, "join").focus()
    page.keyboard.press("Enter")
    details = page.get_by_test_id("step-details")
    expect(details).to_have_attribute("data-step-key", "join")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    expect(details).to_have_attribute("data-step-key", re.compile("^part-"))
    page.screenshot(path=tmp_path / "fifty-steps.png")

    # Cancel, then Retry (cancelled steps run again), then Reject: each live, each confirmed.
    gql.ok(
        CREATE_WORKFLOW,
        {"input": {"key": "gate", "version": "1.0.0", "name": "Gate", "steps": GATE}},
        token=token,
    )
    gate = gql.ok(EXECUTE_GATE, {"input": {"workflowKey": "gate"}}, token=token)["executeWorkflow"]
    page.goto(f"{engine_server.url}/#/executions/{gate['id']}")
    status = page.get_by_test_id("execution-status")
    expect(status).to_have_attribute("data-status", "WAITING")
    page.get_by_test_id("cancel-button").click()
    expect(status).to_have_attribute("data-status", "CANCELLED")
    expect(node(page, "ask")).to_have_attribute("data-status", "CANCELLED")
    expect(node(page, "after")).to_have_attribute("data-status", "CANCELLED")
    page.get_by_test_id("retry-button").click()
    expect(page.locator(".toast").last).to_contain_text("Retrying")
    expect(node(page, "ask")).to_have_attribute("data-status", "WAITING_APPROVAL")
    expect(status).to_have_attribute("data-status", "WAITING")
    node(page, "ask").click()
    page.get_by_test_id("reject-button").click()
    expect(status).to_have_attribute("data-status", "FAILED")
    expect(page.get_by_test_id("execution-error")).to_contain_text("rejected")
    expect(page.get_by_test_id("retry-button")).to_be_visible()
    gate_events = gql.ok(EVENTS, {"id": gate["id"]}, token=token)["events"]
    wait_for(lambda: len(history(page)) == len(gate_events), "the history of the gate")
    assert history(page) == [e["position"] for e in gate_events]
    # Every row has its stored time (events arrive live first, then are read back).
    expect(page.locator('[data-testid="event-row"] time')).to_have_count(len(gate_events))
    page.screenshot(path=tmp_path / "rejected.png")

    # The run form follows the input schema; the server's refusal lands on its field.
    typed = {
        "type": "object",
        "required": ["n"],
        "properties": {
            "n": {"type": "integer", "minimum": 1, "description": "How many"},
            "mode": {"enum": ["fast", "slow"]},
            "dry": {"type": "boolean"},
            "extra": {"type": "object"},
        },
    }
    gql.ok(
        CREATE_WORKFLOW,
        {
            "input": {
                "key": "typed",
                "version": "1.0.0",
                "name": "Typed",
                "inputSchema": typed,
                "steps": [{"key": "echo", "kind": "TRANSFORM", "config": {"template": "ok"}}],
            }
        },
        token=token,
    )
    page.goto(f"{engine_server.url}/#/workflows/typed")
    page.get_by_label("n *").fill("0")
    page.get_by_label("mode").select_option("slow")
    page.get_by_label("dry").check()
    page.get_by_label("extra").fill('{"a": 1}')
    page.get_by_test_id("run-workflow").click()
    expect(page.get_by_test_id("error")).to_contain_text("inputs.n")
    expect(page.get_by_label("n *")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("n *").fill("3")
    page.get_by_test_id("run-workflow").click()
    expect(page).to_have_url(re.compile(r"#/executions/[0-9a-f-]{36}"))
    typed_id = re.search(r"#/executions/([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]
    inputs = gql.ok(EXECUTION, {"id": typed_id}, token=token)["execution"]["inputs"]
    assert inputs == {"n": 3, "mode": "slow", "dry": True, "extra": {"a": 1}}

    # Memory: each hit says why it ranks.
    page.goto(f"{engine_server.url}/#/memory")
    page.get_by_label("Search memories").fill("rollout plan")
    page.get_by_role("button", name="Search").click()
    first_hit = page.get_by_test_id("memory-hit").first
    expect(first_hit).to_contain_text("rollout plan starts on Monday")
    expect(first_hit.get_by_test_id("memory-why")).to_contain_text("vector rank")
    page.screenshot(path=tmp_path / "memory.png")

    # Agents: load and status live.
    page.goto(f"{engine_server.url}/#/agents")
    rows = page.get_by_test_id("agent-row")
    expect(rows).to_have_count(4)
    agent_id = rows.first.get_attribute("data-agent-id")
    gql.ok(UPDATE_AGENT, {"id": agent_id}, token=token)
    expect(
        page.locator(f'[data-testid="agent-row"][data-agent-id="{agent_id}"]')
    ).to_have_attribute("data-status", "OFFLINE")
    page.screenshot(path=tmp_path / "agents.png")

    # Usage: an LLM run's cost per day as a chart.
    gql.ok(
        CREATE_WORKFLOW,
        {
            "input": {
                "key": "ask-llm",
                "version": "1.0.0",
                "name": "Ask",
                "steps": [{"key": "say", "kind": "LLM", "config": {"prompt": "Say hi"}}],
            }
        },
        token=token,
    )
    done = gql.ok(EXECUTE_GATE, {"input": {"workflowKey": "ask-llm"}}, token=token)[
        "executeWorkflow"
    ]
    assert gql.wait_execution(done["id"], token)["status"] == "SUCCEEDED"
    page.goto(f"{engine_server.url}/#/usage")
    chart = page.get_by_test_id("usage-chart")
    expect(chart.locator("rect.bar[data-value]:not([data-value='0'])")).to_have_count(1)
    page.screenshot(path=tmp_path / "usage.png")

    # Workflows and the executions list with its filters.
    page.goto(f"{engine_server.url}/#/workflows")
    expect(page.get_by_test_id("workflow-card")).to_have_count(4)
    page.screenshot(path=tmp_path / "workflows.png")
    page.goto(f"{engine_server.url}/#/executions")
    expect(page.get_by_test_id("execution-row")).to_have_count(4)
    page.get_by_label("Workflow").select_option("wide")
    expect(page.get_by_test_id("execution-row")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"workflow=wide"))
    # A run started elsewhere shows up on its own and finishes live.
    gql.ok(EXECUTE_GATE, {"input": {"workflowKey": "wide"}}, token=token)
    expect(page.get_by_test_id("execution-row")).to_have_count(2)
    expect(page.locator('[data-testid="execution-row"][data-status="SUCCEEDED"]')).to_have_count(2)
    page.screenshot(path=tmp_path / "executions.png")
    assert problems == [], problems
    page.context.close()

    # A viewer may look but not run: the refusal is shown where the button is.
    gql.register("viewer@example.com")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(db, "UPDATE users SET role = 'VIEWER' WHERE email = 'viewer@example.com'")
    viewer, viewer_problems = new_page(browser, engine_server, "viewer@example.com")
    viewer.goto(f"{engine_server.url}/#/workflows/gate")
    viewer.get_by_test_id("run-workflow").click()
    expect(viewer.get_by_test_id("error")).to_contain_text("FORBIDDEN")
    assert all("403" in p for p in viewer_problems), viewer_problems
    viewer.context.close()
