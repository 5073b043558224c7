"""A stream client keeps reconnecting whatever a device answers, even bytes no parser expects."""

from __future__ import annotations

import asyncio

from gridwatch.core.config.gates import IsapiStreamGateConfig
from gridwatch.core.interfaces import GateEvent, SourceState
from ingest.gates.isapi_stream import IsapiStreamSource
from ingest.gates.multipart import MultipartError, boundary_from_content_type
from tests.ingest.polling import eventually

# A UTF-8 boundary: httpx decodes the header as UTF-8, which cannot be encoded back to latin-1 bytes.
BAD_HEADER = "Content-Type: multipart/mixed; boundary=ab\u20ac".encode()


def test_a_non_ascii_boundary_is_refused() -> None:
    try:
        boundary_from_content_type("multipart/mixed; boundary=ab\u20ac")
    except MultipartError:
        return
    raise AssertionError("a non-ASCII boundary was accepted")


async def test_a_device_with_a_non_ascii_boundary_does_not_kill_the_stream_task() -> None:
    connections = 0

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n" + BAD_HEADER + b"\r\nConnection: close\r\n\r\n--x\r\n")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def ignore(event: GateEvent) -> None:
        pass

    config = IsapiStreamGateConfig.model_validate(
        {
            "id": "odd-gate",
            "kind": "isapi_stream",
            "url": f"http://127.0.0.1:{port}",
            "idle_timeout_s": 5.0,
            "connect_timeout_s": 2.0,
            "backoff": {"initial_s": 0.05, "max_s": 0.1},
        }
    )
    source = IsapiStreamSource(config, ignore)
    try:
        await source.start()
        await eventually(lambda: connections >= 3, 30.0, "the source reconnected after the odd answer")
        assert source.status.state is SourceState.OFFLINE
        assert "boundary" in (source.status.last_error or "")
    finally:
        await source.stop()
        server.close()
        await server.wait_closed()
