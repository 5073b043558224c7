"""What the device-facing port serves to whom: /healthz to all, /status and /metrics to status_allow, no docs;
429 for an address after too many 401s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from ipaddress import ip_network

import httpx
import pytest

from gridwatch.core.config.service import HttpConfig
from gridwatch.core.interfaces import GateEvent
from gridwatch.http import HttpServer, address_allowed, create_app
from ingest.gates.isapi_push import IsapiPushSource
from tests.ingest.gates.conftest import PUSH_USER, push_config


def client(port: int, source: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=transport, timeout=5)


async def serve(config: HttpConfig, *, healthy: bool = True) -> AsyncIterator[int]:
    async def on_event(event: GateEvent) -> None:
        pass

    source = IsapiPushSource(push_config(), on_event)
    app = create_app(
        status=lambda: {"gates": "detail"}, routers=[source.router], healthy=lambda: healthy, config=config
    )
    server = HttpServer(app, "127.0.0.1", 0, limits=config)
    await source.start()
    await server.start()
    assert server.port is not None
    try:
        yield server.port
    finally:
        await server.stop()
        await source.stop()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async for value in serve(HttpConfig(unauthenticated_per_minute=5)):
        yield value


@pytest.mark.parametrize("path", ["/status", "/metrics"])
async def test_details_are_served_to_loopback_and_hidden_from_the_gate_network(port: int, path: str) -> None:
    async with client(port) as local:
        assert (await local.get(path)).status_code == 200
    async with client(port, "127.0.0.2") as outsider:  # any address outside status_allow
        response = await outsider.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}  # the same as a path that does not exist


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
async def test_docs_and_openapi_are_never_served(port: int, path: str) -> None:
    async with client(port) as local:
        assert (await local.get(path)).status_code == 404


async def test_status_allow_opens_the_details_to_a_network() -> None:
    async for port in serve(HttpConfig.model_validate({"status_allow": ["127.0.2.0/24"]})):
        async with client(port, "127.0.2.9") as control_room:
            assert (await control_room.get("/status")).json() == {"gates": "detail"}
        async with client(port) as local:  # the list replaces the default: loopback is not implied
            assert (await local.get("/status")).status_code == 404


@pytest.mark.parametrize(("healthy", "expected"), [(True, "ok"), (False, "degraded")])
async def test_healthz_says_ok_or_degraded_to_anyone_and_nothing_more(healthy: bool, expected: str) -> None:
    async for port in serve(HttpConfig(), healthy=healthy):
        async with client(port, "127.0.0.2") as probe:
            response = await probe.get("/healthz")
            assert response.status_code == 200
            assert response.json() == {"status": expected}


async def test_an_address_with_too_many_failed_logins_gets_429_and_others_do_not(port: int) -> None:
    async with client(port, "127.0.0.3") as guesser, client(port, "127.0.0.4") as terminal:
        for _ in range(5):
            assert (await guesser.post("/gates/gate-a/isapi", auth=(PUSH_USER, "guess"))).status_code == 401
        blocked = await guesser.post("/gates/gate-a/isapi", auth=(PUSH_USER, "guess"))
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        assert blocked.json() == {"error": "too many unauthenticated requests"}
        assert (await guesser.get("/healthz")).status_code == 200  # probes are never limited
        # Another address is unaffected (its wrong password is still just a 401).
        assert (await terminal.post("/gates/gate-a/isapi", auth=(PUSH_USER, "typo"))).status_code == 401


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack listener reports IPv4 clients like this
        ("10.20.2.12", False),
        ("::ffff:10.20.2.12", False),
        ("not-an-address", False),
        (None, False),
    ],
)
def test_address_allowed(host: str | None, allowed: bool) -> None:
    assert address_allowed(host, [ip_network("127.0.0.1/32"), ip_network("::1/128")]) is allowed
