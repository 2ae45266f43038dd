"""Templates render in separate processes under time, output and memory limits.

The renderer is the real one (render processes and all); the end-to-end tests run a
hostile template through the real server and its in-process worker while a client keeps
asking ``/health/live``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cognitionos.config import Settings
from cognitionos.services.errors import BadUserInput
from cognitionos.services.templating import (
    TemplateFailure,
    TemplateRenderer,
    check_template,
)
from tests.support import GQL, LiveServer
from tests.test_workflows import create, run, transform

SPIN = "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}"
HUGE = 10**9


@pytest.fixture
async def renderer() -> AsyncIterator[TemplateRenderer]:
    # Each test's own limits (a step's timeout, an output cap) apply below these. Its
    # processes start at the first render (not before ``others`` is taken).
    pool = TemplateRenderer(size=2, memory_mb=256, timeout_seconds=60)
    yield pool
    pool.close()


@pytest.fixture
def others() -> set[int]:
    """Render processes of other servers in this test process (not the test's own)."""
    return render_processes()


async def render_with(
    pool: TemplateRenderer, text: str, time_limit: float = 5, max_bytes: int = 1_000_000, **v: Any
) -> str:
    (text,) = await pool.render_many([text], v, time_limit=time_limit, max_output_bytes=max_bytes)
    return text


def render_processes() -> set[int]:
    """Our render processes, found the way an operator would: in /proc."""
    found = set()
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = stat.rsplit(")", 1)[1].split()[1]
        if parent == me and b"_template_child.py" in cmdline:
            found.add(int(entry.name))
    return found


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def limit(pid: int, name: str) -> str:
    """The soft limit ``name`` of a process, as /proc shows it."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            return line[len(name) :].split()[0]
    raise AssertionError(f"no {name} in the limits of {pid}")


# -- the sandbox and the limits, against the real render processes ---------------------


async def test_a_normal_template_renders(renderer: TemplateRenderer) -> None:
    text = (
        "{{ inputs.name | upper }} has {{ items | length }} items: {{ items | tojson }}"
        "{% for i in items %} {{ loop.index }}={{ i * 2 }}{% endfor %} {{ 2 ** 10 }} "
        "{{ 'ab' * 3 }} {{ [0] * 2 }} {{ '%05d' % 42 }} {{ 'x' + 'y' }}"
    )
    out = await render_with(renderer, text, inputs={"name": "ada"}, items=[1, 2, 3])
    assert out == "ADA has 3 items: [1, 2, 3] 1=2 2=4 3=6 1024 ababab [0, 0] 00042 xy"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ 'a' * 10**9 }}", "'*' would make a string of 1,000,000,000 characters"),
        ("{{ 10**9 * 'a' }}", "'*' would make a string of 1,000,000,000 characters"),
        ("{{ ([1] * 10**9) | length }}", "'*' would make a list of 1,000,000,000 items"),
        ("{{ 10 ** (10 ** 9) }}", "'**' would make a number of about"),
        ("{{ (2 ** 9000) * (2 ** 9000) }}", "'*' would make a 18,002-bit number"),
        (
            "{% set ns = namespace(s='a' * 1000) %}{% for i in range(30) %}"
            "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
            "'+' would make a string of 1,024,000 characters",
        ),
        ("{{ '%1000000000d' % 1 }}", "'%' format width 1000000000 is not allowed"),
        ("{{ missing }}", "'missing' is undefined"),
        ("{{ ''.__class__ }}", "template error"),
    ],
)
async def test_hostile_expressions_fail_with_a_clear_error(
    renderer: TemplateRenderer, text: str, message: str
) -> None:
    with pytest.raises(TemplateFailure, match="template error") as failure:
        await render_with(renderer, text)
    assert message in str(failure.value)
    assert await render_with(renderer, "{{ 1 + 1 }}") == "2"  # and the renderer is fine


async def test_output_over_the_cap_fails(renderer: TemplateRenderer) -> None:
    assert await render_with(renderer, "{{ 'x' * 1000 }}", max_bytes=1000) == "x" * 1000
    for text in (
        "{% for i in range(1001) %}x{% endfor %}",
        "{{ 'é' * 600 }}",  # 600 characters, 1,200 bytes
        "{{ 'x'.ljust(5000) }}",  # one chunk, not built with an intercepted operator
    ):
        with pytest.raises(TemplateFailure, match=r"^template output exceeded 1,000 bytes$"):
            await render_with(renderer, text, max_bytes=1000)
    # The cap is on all the texts of one request together.
    with pytest.raises(TemplateFailure, match="exceeded 1,000 bytes"):
        await renderer.render_many(
            ["{{ 'a' * 600 }}", "{{ 'b' * 600 }}"], {}, time_limit=5, max_output_bytes=1000
        )


async def test_a_render_over_its_time_limit_is_killed_and_replaced(
    renderer: TemplateRenderer, others: set[int]
) -> None:
    assert await render_with(renderer, "warm") == "warm"
    before = render_processes() - others
    with pytest.raises(TemplateFailure, match=r"^template rendering exceeded 0.5 s$"):
        await render_with(renderer, SPIN, time_limit=0.5)
    after = render_processes() - others
    killed = before - after
    assert len(killed) == 1 and len(after - before) == 1, (before, after)
    assert gone(killed.pop())
    assert await render_with(renderer, "{{ n + 1 }}", n=41) == "42"


async def test_memory_and_cpu_are_limited_in_the_render_processes(
    renderer: TemplateRenderer, others: set[int]
) -> None:
    await render_with(renderer, "{% for i in range(10) %}{% endfor %}", time_limit=3)
    mine = render_processes() - others
    assert mine
    for pid in mine:
        assert limit(pid, "Max address space") == str(256 * 1024 * 1024)
    # The CPU limit is set per render (this render's limit + what the process used).
    assert any(limit(pid, "Max cpu time") != "unlimited" for pid in mine)
    with pytest.raises(TemplateFailure, match="needed more than 256 MB of memory"):
        await render_with(renderer, "{{ 'x'.ljust(10**9) }}")
    assert await render_with(renderer, "still {{ 'here' }}") == "still here"


async def test_one_hostile_render_does_not_hold_up_the_others(
    renderer: TemplateRenderer, others: set[int]
) -> None:
    hostile = asyncio.create_task(render_with(renderer, SPIN, time_limit=10))
    results = await asyncio.gather(*(render_with(renderer, "{{ n }}", n=n) for n in range(40)))
    assert results == [str(n) for n in range(40)]
    assert not hostile.done()  # still spinning in its own process
    before = render_processes() - others
    hostile.cancel()  # e.g. the step was cancelled: its render process goes too
    with pytest.raises(asyncio.CancelledError):
        await hostile
    killed = before - (render_processes() - others)
    assert len(killed) == 1 and gone(killed.pop())
    assert await render_with(renderer, "ok") == "ok"


async def test_a_renderer_takes_its_limits_from_settings_and_the_step_limit_wins() -> None:
    settings = Settings(env="test", template_timeout_seconds=1, template_max_output_bytes=100)
    with TemplateRenderer.from_settings(settings) as renderer:
        assert await renderer.render("{{ a }}-{{ b }}", {"a": 1, "b": "é"}) == "1-é"
        with pytest.raises(TemplateFailure, match="exceeded 100 bytes"):
            await renderer.render("{% for i in range(101) %}x{% endfor %}", {})
        with pytest.raises(TemplateFailure, match=r"exceeded 0.3 s"):
            await renderer.render(SPIN, {}, time_limit=0.3)
        with pytest.raises(TemplateFailure, match=r"exceeded 1 s"):  # a longer one does not
            await renderer.render(SPIN, {}, time_limit=30)


async def test_a_closed_renderer_leaves_no_process_and_others_render_on(
    others: set[int],
) -> None:
    web = TemplateRenderer(size=2, memory_mb=256)
    web.start()  # e.g. the web runtime
    with TemplateRenderer(size=2, memory_mb=256) as worker:  # a worker's, in this process
        assert await render_with(worker, "{{ 6 * 7 }}") == "42"
        theirs = worker.processes
        assert len(theirs) == 2 and theirs <= render_processes() - others
    # The worker's runtime closed: its processes are gone, the web's render on.
    assert all(gone(pid) for pid in theirs)
    mine = web.processes
    assert len(mine) == 2 and not mine & theirs
    assert await render_with(web, "still {{ 'here' }}") == "still here"
    assert mine <= render_processes()
    web.close()
    assert all(gone(pid) for pid in mine)
    with pytest.raises(TemplateFailure, match="the template renderer is closed"):
        await render_with(web, "again")  # nothing starts them again behind its owner's back


def test_checking_a_template_only_parses_it() -> None:
    check_template(SPIN, field="t")  # valid, however long it would run
    check_template("{{ 'a' * 10**9 }}", field="t")
    with pytest.raises(BadUserInput, match="nested too deeply"):
        check_template("{{" + "(" * 30000 + "1" + ")" * 30000 + "}}", field="t")
    with pytest.raises(BadUserInput, match="invalid template"):
        check_template("{% for %}", field="t")


# -- end to end: the server stays responsive -------------------------------------------


class LivenessProbe:
    """Asks ``/health/live`` every 50 ms from a thread; keeps every answer's time."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/health/live"
        self.answers: list[tuple[float, float]] = []  # (answered at, latency)
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(self.url)
                    if response.status_code != 200:
                        self.failures.append(f"status {response.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                answered = time.monotonic()
                self.answers.append((answered, answered - started))
                self._stop.wait(0.05)

    def __enter__(self) -> LivenessProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def during(self, start: float, end: float) -> list[float]:
        return [latency for at, latency in self.answers if start <= at <= end]


@pytest.fixture
def gql(engine_server: LiveServer) -> GQL:
    return engine_server.gql


def test_a_spinning_transform_fails_on_its_time_limit_while_health_answers(
    engine_server: LiveServer, gql: GQL
) -> None:
    token = gql.member()
    create(
        gql,
        token,
        "spin",
        [
            transform("before", '{"n": 1}'),
            transform("spin", SPIN, "before", timeoutSeconds=1),
            transform("after", "never", "spin"),
        ],
    )
    with LivenessProbe(engine_server.url) as probe:
        time.sleep(0.3)  # a baseline before the run
        started = time.monotonic()
        execution = run(gql, token, "spin")
        finished = time.monotonic()
    steps = {s["stepKey"]: s for s in execution["steps"]}
    assert execution["status"] == "FAILED"
    assert steps["before"]["status"] == "SUCCEEDED"
    assert steps["spin"]["status"] == "FAILED"
    assert steps["spin"]["error"] == "template rendering exceeded 1 s"
    assert steps["after"]["status"] == "SKIPPED"
    assert probe.failures == []
    during = probe.during(started, finished)
    assert len(during) >= 5, (during, finished - started)  # it kept answering
    assert max(during) < 1.0, during  # and never stalled behind the render
    # The killed render process was replaced: the next run renders normally.
    create(gql, token, "fine", [transform("t", '{"sum": {{ 20 + 22 }}}')])
    done = run(gql, token, "fine")
    assert done["status"] == "SUCCEEDED"
    assert done["steps"][0]["output"] == {"sum": 42}


def test_a_hostile_notification_template_fails_cleanly(make_server: Any, db: Any) -> None:
    server: LiveServer = make_server(template_timeout_seconds=1)
    gql = server.gql
    member = gql.member()
    member_id = gql.ok("{ me { id } }", token=member)["me"]["id"]
    gql.register("root@example.com")
    db("UPDATE users SET role = 'ADMIN' WHERE email = 'root@example.com'")
    root = gql.login("root@example.com").json()["data"]["login"]["accessToken"]
    create_template = """mutation($i: NotificationTemplateInput!) {
        createNotificationTemplate(input: $i) { key } }"""
    send = """mutation($i: SendNotificationInput!) { sendNotification(input: $i) {
        id body } }"""
    for key, body in (("spin", SPIN), ("bomb", "{{ 'a' * 10**9 }}"), ("ok", "Hi {{ name }}")):
        spec = {"key": key, "channel": "IN_APP", "body": body}
        gql.ok(create_template, {"i": spec}, token=root)

    def attempt(key: str) -> Any:
        payload = {"userId": member_id, "template": key, "data": {"name": "Ada"}}
        return gql.post(send, {"i": payload}, token=member).json()

    with LivenessProbe(server.url) as probe:
        started = time.monotonic()
        spun = attempt("spin")
        finished = time.monotonic()
    error = spun["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "template 'spin' cannot render: template rendering exceeded 1 s"
    during = probe.during(started, finished)
    assert len(during) >= 5 and max(during) < 1.0, during
    bomb = attempt("bomb")["errors"][0]
    assert bomb["extensions"]["code"] == "BAD_USER_INPUT"
    assert "would make a string of 1,000,000,000 characters" in bomb["message"]
    assert attempt("ok")["data"]["sendNotification"]["body"] == "Hi Ada"
    assert db("SELECT count(*) FROM notifications")[0][0] == 1
