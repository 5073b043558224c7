"""A real HTTP/1.1 server on 127.0.0.1 (an ephemeral port) that records what it receives.

Small on purpose (asyncio streams, ``Content-Length`` bodies, keep-alive): tests decide each answer with
a ``respond`` function and read the recorded requests afterwards. Clients talk to it over real TCP, so
what a channel sends is exactly what a receiver would get.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

OK_JSON = b'{"errcode": 0, "errmsg": "ok"}'


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> dict[str, list[str]]:
        """The query parameters, percent-decoded."""
        return urllib.parse.parse_qs(self.target.partition("?")[2], keep_blank_values=True)

    @property
    def raw_query(self) -> str:
        return self.target.partition("?")[2]

    def json(self) -> Any:
        return json.loads(self.body)


# The answer to one request: status and body (JSON).
Responder = Callable[[ReceivedRequest], tuple[int, bytes]]


def always_ok(_: ReceivedRequest) -> tuple[int, bytes]:
    return 200, OK_JSON


@dataclass
class HttpReceiver:
    respond: Responder = always_ok
    requests: list[ReceivedRequest] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()

    async def __aenter__(self) -> HttpReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line.strip():
                    return
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = ReceivedRequest(method, target, headers, body)
                self.requests.append(request)
                status, answer = self.respond(request)
                writer.write(
                    f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(answer)}\r\n\r\n".encode("latin-1")
                    + answer
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@dataclass
class SilentServer:
    """Accepts connections and never answers (a hung endpoint); closes them on exit."""

    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> SilentServer:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._done.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._done.wait()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
