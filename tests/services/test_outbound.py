"""The outbound guard: private targets refused without saying where names point, and the
connection made to the address that was checked, not to a second DNS answer."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from cognitionos.config import Settings
from cognitionos.db.models import Channel
from cognitionos.services.notifications.channels import SENDERS, ChannelError, Message
from cognitionos.services.outbound import (
    DestinationRefused,
    PinnedTransport,
    check_destination,
    pinned_client,
)
from cognitionos.services.workflows.steps import StepFailure, get_kind
from tests.conftest import TEST_SECRET
from tests.peers import HttpPeer
from tests.support import step_context


class FakeDNS:
    """The event loop's resolver, answering scripted names with one answer per lookup
    (the last one repeats): what a rebinding name server does. Other names resolve as usual."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, **answers: list[list[str]]) -> None:
        self.answers = {name.replace("_", "."): list(a) for name, a in answers.items()}
        self.lookups: list[str] = []
        loop = asyncio.get_running_loop()
        self._real = loop.getaddrinfo
        monkeypatch.setattr(loop, "getaddrinfo", self.getaddrinfo)

    async def getaddrinfo(self, host: Any, port: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return await self._real(host, port, **kwargs)
        self.lookups.append(name)
        queue = self.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))
            for address in addresses
        ]


@pytest.fixture(scope="module")
def peer() -> Iterator[HttpPeer]:
    started = HttpPeer().start()
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def _fresh_peer(peer: HttpPeer) -> None:
    peer.reset()


def settings(**overrides: Any) -> Settings:
    return Settings(secret_key=TEST_SECRET, **overrides)


async def http_step(values: Settings, config: dict[str, Any]) -> Any:
    kind = get_kind("HTTP")
    assert kind is not None
    return await kind.run(step_context(values), config)


async def webhook(values: Settings, url: str) -> str:
    message = Message(
        id=str(uuid.uuid4()),
        user_id=str(uuid.uuid4()),
        channel=Channel.WEBHOOK,
        subject="Deploy",
        body="v2 is live",
        data={},
        priority="NORMAL",
        created_at="2026-06-01T12:00:00+00:00",
    )
    return await SENDERS[Channel.WEBHOOK].send(message, url, values)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/",
        "http://169.254.169.254/latest",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
async def test_private_loopback_and_link_local_targets_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefused, match="private, loopback or link-local") as caught:
        await check_destination(url, settings())
    assert caught.value.retryable is False


async def test_the_refusal_never_says_what_a_name_resolves_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeDNS(monkeypatch, metadata_internal=[["169.254.169.254"]])
    with pytest.raises(StepFailure) as step_error:
        await http_step(settings(), {"url": "http://metadata.internal/latest/meta-data/"})
    with pytest.raises(ChannelError) as channel_error:
        await webhook(settings(), "https://metadata.internal/hook")
    for error in (str(step_error.value), str(channel_error.value)):
        assert error.startswith("destination not allowed: metadata.internal resolves to a")
        assert "169.254" not in error
    assert not step_error.value.retryable and not channel_error.value.retryable
    with pytest.raises(StepFailure) as local:
        await http_step(settings(), {"url": "http://localhost:9/"})
    assert "127.0.0.1" not in str(local.value) and "::1" not in str(local.value)


async def test_one_private_address_among_public_ones_is_enough_to_refuse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeDNS(monkeypatch, mixed_example=[["93.184.216.34", "127.0.0.1"]])
    with pytest.raises(DestinationRefused, match=r"destination not allowed: mixed\.example"):
        await check_destination("http://mixed.example/", settings())


async def test_allow_list_by_host_name_or_network() -> None:
    by_network = await check_destination(
        "http://127.0.0.1:9/", settings(http_allow_hosts=["127.0.0.0/8"])
    )
    assert by_network.addresses == ("127.0.0.1",)
    by_name = await check_destination(
        "http://localhost:9/", settings(http_allow_hosts=["localhost"])
    )
    assert by_name.host == "localhost" and by_name.port == 9


async def test_an_unresolvable_name_is_a_retryable_refusal() -> None:
    with pytest.raises(DestinationRefused, match=r"cannot resolve nowhere\.invalid") as caught:
        await check_destination("http://nowhere.invalid/", settings())
    assert caught.value.retryable


async def test_a_rebinding_name_is_called_at_the_public_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, peer: HttpPeer
) -> None:
    # Public to the check, loopback to anyone who asks again.
    dns = FakeDNS(monkeypatch, rebind_example=[["93.184.216.34"], ["127.0.0.1"]])
    sent: list[httpx.Request] = []

    def network(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"ok": True})

    url = f"http://rebind.example:{peer.live.port}/hook"
    destination = await check_destination(url, settings())
    transport = PinnedTransport(destination, inner=httpx.MockTransport(network))
    async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:
        response = await client.post(url, json={"x": 1})
    assert response.status_code == 200 and str(response.request.url) == url
    (wire,) = sent
    assert wire.url.host == "93.184.216.34" and wire.url.port == peer.live.port
    assert wire.headers["host"] == f"rebind.example:{peer.live.port}"
    assert wire.extensions["sni_hostname"] == "rebind.example"
    assert dns.lookups == ["rebind.example"]  # never asked a second time
    assert peer.received == []


async def test_http_step_and_webhook_connect_to_the_checked_address_not_a_second_answer(
    monkeypatch: pytest.MonkeyPatch, peer: HttpPeer
) -> None:
    # 127.0.0.2 is the allowed address the check sees; the peer listens on 127.0.0.1 only,
    # which a second lookup would answer. Nothing may reach the peer.
    FakeDNS(monkeypatch, rebind_example=[["127.0.0.2"], ["127.0.0.1"]])
    allowed = settings(http_allow_hosts=["127.0.0.2"], http_timeout_seconds=5)
    url = f"http://rebind.example:{peer.live.port}/hook"
    with pytest.raises(StepFailure, match="ConnectError"):
        await http_step(allowed, {"method": "POST", "url": url, "body": {"x": 1}})
    FakeDNS(monkeypatch, rebind_example=[["127.0.0.2"], ["127.0.0.1"]])
    with pytest.raises(ChannelError, match="cannot reach"):
        await webhook(allowed, url)
    assert peer.received == []


async def test_an_allow_listed_name_reaches_the_checked_address_with_its_host_header(
    monkeypatch: pytest.MonkeyPatch, peer: HttpPeer
) -> None:
    # The second answer leads nowhere: only the pinned first answer reaches the peer.
    dns = FakeDNS(monkeypatch, hooks_internal=[["127.0.0.1"], ["10.255.255.1"]])
    allowed = settings(http_allow_hosts=["127.0.0.1"], http_timeout_seconds=5)
    url = f"http://hooks.internal:{peer.live.port}/step"
    output = await http_step(allowed, {"method": "POST", "url": url, "body": {"x": 1}})
    assert output["status"] == 200 and output["body"]["sid"] == "SM123"
    dns.answers["hooks.internal"] = [["127.0.0.1"], ["10.255.255.1"]]
    assert await webhook(allowed, f"http://hooks.internal:{peer.live.port}/hook") == "DELIVERED"
    step, hook = peer.on("/step"), peer.on("/hook")
    assert json.loads(step[0].body) == {"x": 1}
    assert json.loads(hook[0].body)["body"] == "v2 is live"
    for received in (step[0], hook[0]):
        assert received.headers["host"] == f"hooks.internal:{peer.live.port}"
    assert dns.lookups == ["hooks.internal", "hooks.internal"]  # one per call


async def test_a_redirect_is_returned_not_followed(peer: HttpPeer) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", peer.url("/followed"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        output = await http_step(settings(http_allow_hosts=["127.0.0.1"]), {"url": url})
    finally:
        server.shutdown()
        server.server_close()
    assert output["status"] == 302 and peer.received == []


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=secure.example",
            "-addext", "subjectAltName=DNS:secure.example",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_to_the_pinned_address_verifies_the_certificate_of_the_name(
    monkeypatch: pytest.MonkeyPatch, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    seen: dict[str, Any] = {}

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["host"] = self.headers["Host"]
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: Any) -> None:
            pass

    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)

    def note_sni(sock: Any, name: str | None, context: Any) -> None:
        seen["sni"] = name

    server_tls.sni_callback = note_sni
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.socket = server_tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeDNS(monkeypatch, secure_example=[["127.0.0.1"]], other_example=[["127.0.0.1"]])
    trusted = ssl.create_default_context(cafile=str(cert))
    allowed = settings(http_allow_hosts=["127.0.0.1"])
    port = server.server_port
    try:
        url = f"https://secure.example:{port}/"
        transport = PinnedTransport(
            await check_destination(url, allowed),
            inner=httpx.AsyncHTTPTransport(verify=trusted, trust_env=False),
        )
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(url)
        assert response.text == "hello"
        assert seen == {"sni": "secure.example", "host": f"secure.example:{port}"}
        # The same address under a name the certificate does not cover is refused.
        other = f"https://other.example:{port}/"
        transport = PinnedTransport(
            await check_destination(other, allowed),
            inner=httpx.AsyncHTTPTransport(verify=trusted, trust_env=False),
        )
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                await client.get(other)
    finally:
        server.shutdown()
        server.server_close()


async def test_the_outbound_client_ignores_proxies_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, peer: HttpPeer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    allowed = settings(http_allow_hosts=["127.0.0.1"])
    async with pinned_client(peer.url("direct"), allowed, timeout_seconds=5) as client:
        response = await client.post(peer.url("direct"), json={})
    assert response.status_code == 200 and len(peer.on("/direct")) == 1
