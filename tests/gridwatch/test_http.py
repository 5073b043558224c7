"""The embedded HTTP server: it stops even while a client holds a request open."""

from __future__ import annotations

import asyncio
import socket

import pytest
from fastapi import APIRouter, Request

from gridwatch.http import HttpServer, create_app
from tests.ingest.polling import eventually


async def test_stop_returns_while_a_client_is_stuck_in_the_middle_of_its_body() -> None:
    reading = asyncio.Event()
    router = APIRouter()

    @router.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        reading.set()
        return {"bytes": len(await request.body())}

    server = HttpServer(create_app(status=dict, routers=[router]), "127.0.0.1", 0)
    await server.start()
    writer: asyncio.StreamWriter | None = None
    try:
        port = server.port
        assert port is not None
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        # A terminal (or anyone on the gate network) that announces a body and never sends it.
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial")
        await writer.drain()
        await eventually(reading.is_set, 10.0, "the request reached the endpoint")
        # Without a bound on the graceful shutdown, stop() waits for this client for ever.
        stopping = asyncio.create_task(server.stop())
        try:
            await eventually(stopping.done, 30.0, "stop() returned")
        finally:
            stopping.cancel()
    finally:
        if writer is not None:
            writer.close()
        await server.stop()


async def test_stop_after_a_failed_start_does_not_raise_the_bind_error_again() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = HttpServer(create_app(status=dict), "127.0.0.1", busy.getsockname()[1])
        with pytest.raises(OSError, match="could not listen"):
            await server.start()
        await server.stop()  # the caller's clean-up path: it must not fail with the start-up error
