"""Connection hygiene of the device-facing port, on a real uvicorn with real sockets.

The probe of issue 13: 1,100 idle connections (more than the file limit of 1024) made the service refuse
health checks and valid posts and flood the log; 200 slow-header connections were never closed. Loopback
has the whole 127/8, so attackers and the honest device/probe connect from different addresses.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import resource
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from gridwatch.core.config.service import HttpConfig
from gridwatch.core.interfaces import GateEvent
from gridwatch.core.logs import RateLimitFilter, prepare_handler
from gridwatch.http import HttpServer, create_app
from ingest.gates.isapi_push import IsapiPushSource
from tests.ingest.gates.conftest import PUSH_PASSWORD, PUSH_USER, push_config, small_face_jpeg
from tests.support.gate_payloads import isapi_event, isapi_push_body
from tests.support.metrics import sample

HEADER_TIMEOUT_S = 2.0
IDLE = 1_100
SLOW = 200
FD_HEADROOM = 600  # the server's side of the held connections, the venv's modules, the test runner


@pytest.fixture(scope="module", autouse=True)
def enough_file_descriptors() -> None:
    """The clients live in this process too: 1,300 sockets plus the server's side of those it holds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE + SLOW + FD_HEADROOM
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"the test needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@dataclass
class Site:
    server: HttpServer
    base_url: str
    port: int
    events: list[GateEvent] = field(default_factory=list)


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """A push gate on an HttpServer with the production defaults, except a short header timeout."""
    events: list[GateEvent] = []

    async def on_event(event: GateEvent) -> None:
        events.append(event)

    source = IsapiPushSource(push_config(), on_event)
    limits = HttpConfig(port=0, header_timeout_s=HEADER_TIMEOUT_S, body_timeout_s=2.0, keepalive_s=1)
    server = HttpServer(create_app(status=dict, routers=[source.router], config=limits), "127.0.0.1", 0, limits=limits)
    await source.start()
    await server.start()
    port = server.port
    assert port is not None
    try:
        yield Site(server, f"http://127.0.0.1:{port}", port, events)
    finally:
        await server.stop()
        await source.stop()


@dataclass
class Captured:
    raw: io.StringIO
    filtered: io.StringIO

    def count(self, stream: io.StringIO) -> int:
        return len(stream.getvalue().splitlines())


@pytest.fixture
def log_lines() -> Iterator[Captured]:
    """Every line the listener logs: once unfiltered (what it tried to write), once as the service writes it."""
    raw, filtered = io.StringIO(), io.StringIO()
    plain = logging.StreamHandler(raw)
    service = prepare_handler(logging.StreamHandler(filtered), RateLimitFilter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(plain)
    root.addHandler(service)
    try:
        yield Captured(raw, filtered)
    finally:
        root.removeHandler(plain)
        root.removeHandler(service)
        root.setLevel(level)


async def connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def read_until_closed(reader: asyncio.StreamReader, timeout_s: float) -> bytes:
    """What the server sent until it closed, within ``timeout_s`` (else ``TimeoutError``).

    Chunk by chunk: ``reader.read()`` (to end-of-file) cancelled by a timeout drops what it had gathered, so
    an answer whose end-of-file came a moment after the deadline looked like no answer at all.
    """
    received = b""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise TimeoutError
        chunk = await asyncio.wait_for(reader.read(4096), remaining)
        if not chunk:
            return received
        received += chunk


async def post_event(http: httpx.AsyncClient, base_url: str, serial: int) -> httpx.Response:
    body, content_type = isapi_push_body(isapi_event(serial), [small_face_jpeg()])
    return await http.post(
        f"{base_url}/gates/gate-a/isapi",
        content=body,
        headers={"Content-Type": content_type},
        auth=(PUSH_USER, PUSH_PASSWORD),
    )


async def slow_header_client(port: int, source: str) -> tuple[float, bytes]:
    """Sends a request line and then one header byte every 0.5 s; returns when the server closed, and what it said."""
    reader, writer = await connect(port, source)
    started = time.monotonic()
    writer.write(b"POST /gates/gate-a/isapi HTTP/1.1\r\nHost: gridwatch\r\n")
    answer = b""
    try:
        for n in range(60):
            writer.write(b"X-Slow-%d: y\r\n" % n)
            await writer.drain()
            try:
                # A chunk (not the whole answer): a timeout then loses nothing that was received.
                first = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                continue
            answer = first + (await read_until_closed(reader, 2.0) if first else b"")
            break
    except (ConnectionError, TimeoutError):
        pass
    finally:
        writer.close()
    return time.monotonic() - started, answer


async def test_idle_and_slow_header_floods_leave_health_and_valid_posts_working_and_the_log_bounded(
    site: Site, log_lines: Captured
) -> None:
    # 1,100 idle connections from one attacker address: the per-address cap holds 32, the rest get 503 at once.
    idle = await asyncio.gather(*(connect(site.port, "127.0.0.2") for _ in range(IDLE)))
    # 200 slow-header clients, 20 per address (each under the per-address cap): all are held until the deadline.
    slow = [asyncio.create_task(slow_header_client(site.port, f"127.0.1.{1 + n % 10}")) for n in range(SLOW)]
    try:
        # While both floods are on, the health probe and the terminal (another address) are served.
        async with httpx.AsyncClient(timeout=5) as http:
            for serial in range(3):
                health = await http.get(f"{site.base_url}/healthz")
                assert health.status_code == 200
                assert health.json() == {"status": "ok"}
                posted = await post_event(http, site.base_url, 9000 + serial)
                assert posted.status_code == 200, posted.text
        assert not any(task.done() for task in slow), "served during the flood, not after it"
        assert len(site.events) == 3

        # The excess idle connections were refused quickly with a 503 the device can act on.
        answers = await asyncio.gather(*(read_until_closed(reader, 0.2) for reader, _ in idle), return_exceptions=True)
        refused = [a for a in answers if isinstance(a, bytes) and a.startswith(b"HTTP/1.1 503")]
        assert len(refused) == IDLE - 32
        assert site.server.connections.refused >= IDLE - 32

        # Every slow-header client was answered 408 and closed within the header deadline (plus its 0.5 s step).
        # The close lingers, so the reset that unread header bytes cause no longer discards the 408 (before the
        # lingering close, a loaded CI run saw 105 of 200; a machine with three busy loops, 53), and the clients
        # read chunk by chunk (a CI run of the whole suite saw 100 of 200 when a timed-out read to end-of-file
        # dropped the 408 it had gathered). A linger of 1 s can still expire before a starved client reads.
        results = await asyncio.gather(*slow)
        for elapsed, answer in results:
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:40]
            assert elapsed < HEADER_TIMEOUT_S + 1.5
        assert sum(answer.startswith(b"HTTP/1.1 408") for _, answer in results) >= SLOW * 19 // 20
        # The 32 held idle connections were closed by the same deadline.
        held = [reader for (reader, _), a in zip(idle, answers, strict=True) if not isinstance(a, bytes)]
        assert len(held) == 32
        closes = [await read_until_closed(reader, HEADER_TIMEOUT_S + 1.0) for reader in held]
        assert all(c == b"" or c.startswith(b"HTTP/1.1 408") for c in closes)
        assert sum(c.startswith(b"HTTP/1.1 408") for c in closes) >= 24
        assert site.server.connections.count == 0
    finally:
        for _, writer in idle:
            writer.close()
        for task in slow:
            task.cancel()
    # The server held at most its caps: its descriptors never approached the flood's size.
    assert site.server.connections.peak <= 32 + SLOW + 1

    # The listener tried to log a line per refused or timed-out connection; the service wrote a handful.
    tried, written = log_lines.count(log_lines.raw), log_lines.count(log_lines.filtered)
    print(f"log lines: {tried} attempted, {written} written")
    assert tried >= IDLE - 32 + SLOW
    assert written <= 10


async def test_many_attacker_addresses_fill_the_total_cap_and_the_excess_is_refused_quickly(site: Site) -> None:
    # 1,100 idle connections from 50 addresses (22 each, under the per-address cap): 256 held, the rest refused.
    refused_before = sample("gridwatch_http_connections_closed_total", reason="connection_limit")
    idle = await asyncio.gather(*(connect(site.port, f"127.0.2.{1 + n % 50}") for n in range(IDLE)))
    try:
        started = time.monotonic()
        answers = await asyncio.gather(*(read_until_closed(reader, 0.5) for reader, _ in idle), return_exceptions=True)
        refused = [a for a in answers if isinstance(a, bytes) and a.startswith(b"HTTP/1.1 503")]
        assert len(refused) == IDLE - 256
        assert site.server.connections.count == 256
        refused_now = sample("gridwatch_http_connections_closed_total", reason="connection_limit")
        assert refused_now - refused_before == IDLE - 256  # counted for /metrics
        # A probe now is refused at once (not left hanging), and is served again once the deadline freed the slots.
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.get(f"{site.base_url}/healthz")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            await asyncio.sleep(max(0.0, HEADER_TIMEOUT_S + 0.5 - (time.monotonic() - started)))
            assert (await http.get(f"{site.base_url}/healthz")).status_code == 200
    finally:
        for _, writer in idle:
            writer.close()


async def test_a_body_that_stops_arriving_is_cut_off_and_nothing_is_accepted(site: Site) -> None:
    body, content_type = isapi_push_body(isapi_event(4711), [small_face_jpeg()])
    cut_before = sample("gridwatch_http_connections_closed_total", reason="body_timeout")
    reader, writer = await connect(site.port, "127.0.0.1")
    head = (
        f"POST /gates/gate-a/isapi HTTP/1.1\r\nHost: gridwatch\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    auth = base64.b64encode(f"{PUSH_USER}:{PUSH_PASSWORD}".encode()).decode()
    head = head.replace("Host: gridwatch\r\n", f"Host: gridwatch\r\nAuthorization: Basic {auth}\r\n")
    started = time.monotonic()
    writer.write(head.encode() + body[: len(body) // 2])
    await writer.drain()
    try:
        await read_until_closed(reader, 5.0)
    finally:
        writer.close()
    assert 1.5 < time.monotonic() - started < 3.5
    assert site.events == []
    assert site.server.connections.count == 0
    assert sample("gridwatch_http_connections_closed_total", reason="body_timeout") == cut_before + 1


async def test_an_idle_kept_alive_connection_is_closed_after_keepalive(site: Site) -> None:
    reader, writer = await connect(site.port, "127.0.0.1")
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gridwatch\r\n\r\n")
    await writer.drain()
    first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 2)
    assert first.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    try:
        assert await read_until_closed(reader, 4.0) == b""
    finally:
        writer.close()
    assert time.monotonic() - started < 2.0
