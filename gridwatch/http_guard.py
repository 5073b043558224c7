"""Connection hygiene of the device-facing listener: caps, header/body deadlines, failed-auth limits.

uvicorn bounds neither the connections it accepts nor the time a request's headers may take (its keep-alive
timer only starts after a first response): 1,100 idle connections once exhausted the file limit, and
slow-header clients were held for ever. ``guarded_protocol`` is uvicorn's h11 protocol with

- a connection cap, total and per client address, applied when the connection is accepted: one more is
  answered 503 and closed before anything is read, so the process's file descriptors stay bounded;
- a header deadline from the connection's start (or a kept-alive request's first byte): 408, then closed
  (a lingering close when the client had sent bytes: see ``_answer_and_close``);
- a body deadline from the end of the headers: closed, so the endpoint sees a disconnect.

``UnauthenticatedLimit`` (ASGI) answers 429 to an address whose requests were answered 401/403 too often.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from gridwatch.core.config.service import HttpConfig
from gridwatch.core.metrics import HTTP_CONNECTIONS_CLOSED

log = logging.getLogger(__name__)


def _raw_response(status: bytes, error: str, extra: bytes = b"") -> bytes:
    """A complete HTTP/1.1 answer written straight to the socket, for connections uvicorn never parses."""
    body = b'{"error": "' + error.encode() + b'"}'
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        + extra
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


_REFUSED = _raw_response(b"503 Service Unavailable", "too many connections", b"retry-after: 5\r\n")
_HEADER_TIMEOUT = _raw_response(b"408 Request Timeout", "request headers took too long")
# How long a timed-out client that had sent bytes may keep sending into a half-closed connection: closing a
# socket with unread input makes the kernel send a reset, which can discard the 408 before the client reads it.
_LINGER_S = 1.0
# Addresses remembered by the failed-auth limit at most: a spoofing-free TCP peer is needed to be counted,
# but a /16 of real hosts must still not grow the table without bound.
_MAX_TRACKED_ADDRESSES = 4096


class ConnectionTable:
    """Open connections, total and per client address. Event-loop only."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self._open: dict[str, int] = {}
        self._count = 0
        self.peak = 0  # most connections held at once
        self.refused = 0

    @property
    def count(self) -> int:
        return self._count

    def admit(self, address: str) -> str | None:
        """Counts the connection in, or returns why it is refused."""
        if self._count >= self.total:
            HTTP_CONNECTIONS_CLOSED.labels(reason="connection_limit").inc()
            return f"{self._count} connections open (limit {self.total})"
        held = self._open.get(address, 0)
        if held >= self.per_address:
            HTTP_CONNECTIONS_CLOSED.labels(reason="address_limit").inc()
            return f"{held} connections open from this address (limit {self.per_address})"
        self._open[address] = held + 1
        self._count += 1
        self.peak = max(self.peak, self._count)
        return None

    def release(self, address: str) -> None:
        held = self._open.get(address, 0) - 1
        if held <= 0:
            self._open.pop(address, None)
        else:
            self._open[address] = held
        self._count -= 1


@dataclass(frozen=True, slots=True)
class Deadlines:
    header_s: float
    body_s: float


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


def guarded_protocol(table: ConnectionTable, deadlines: Deadlines) -> type[H11Protocol]:
    """An ``H11Protocol`` class bound to ``table`` and ``deadlines`` (uvicorn instantiates it per connection)."""

    class GuardedH11Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._address: str | None = None  # set once admitted
            self._header_timer: asyncio.TimerHandle | None = None
            self._body_timer: asyncio.TimerHandle | None = None
            self._linger_timer: asyncio.TimerHandle | None = None  # set while a lingering close drains input
            self._bytes_seen = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            address = _peer(transport)
            refusal = table.admit(address)
            if refusal is not None:
                table.refused += 1
                log.warning("refused a connection from %s: %s", address, refusal)
                # Before reading anything: a 503 the device understands and retries, then the descriptor is freed.
                transport.write(_REFUSED)
                transport.close()
                return
            self._address = address
            super().connection_made(transport)
            self._update_deadlines()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._address is None:
                return  # refused: uvicorn never saw it
            table.release(self._address)
            self._address = None
            self._cancel_header()
            self._cancel_body()
            if self._linger_timer is not None:
                self._linger_timer.cancel()
                self._linger_timer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._address is None or self._linger_timer is not None:
                return  # refused, or answered and draining: nothing more is parsed
            self._bytes_seen = True
            super().data_received(data)
            self._update_deadlines()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._update_deadlines()

        def _update_deadlines(self) -> None:
            if self.transport.is_closing():
                self._cancel_header()
                self._cancel_body()
                return
            state = self.conn.their_state
            if state is h11.IDLE:
                # Waiting for a request line. Between requests uvicorn's keep-alive timer governs; the header
                # deadline starts with the connection or with the next request's first byte.
                self._cancel_body()
                if self._header_timer is None and self.timeout_keep_alive_task is None:
                    self._header_timer = self.loop.call_later(deadlines.header_s, self._header_expired)
            elif state is h11.SEND_BODY:
                self._cancel_header()
                if self._body_timer is None:
                    self._body_timer = self.loop.call_later(deadlines.body_s, self._body_expired)
            else:
                self._cancel_header()
                self._cancel_body()

        def _cancel_header(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _cancel_body(self) -> None:
            if self._body_timer is not None:
                self._body_timer.cancel()
                self._body_timer = None

        def _header_expired(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            log.info(
                "closed a connection from %s: no complete request headers within %g s",
                self._address,
                deadlines.header_s,
            )
            HTTP_CONNECTIONS_CLOSED.labels(reason="header_timeout").inc()
            self._answer_and_close(_HEADER_TIMEOUT)

        def _answer_and_close(self, answer: bytes) -> None:
            """Writes ``answer`` and closes so that the client can read it.

            A client that never sent a byte is closed at once. One that was sending (a slow header) may have more
            bytes in flight: closing then makes the kernel answer them with a reset that can discard the answer
            unread, so the write side is shut first (the client reads the answer and end-of-file) and the input is
            drained until the client closes or ``_LINGER_S`` passes, as HTTP servers' lingering close does.
            """
            self.transport.write(answer)
            if not self._bytes_seen or not self.transport.can_write_eof():
                self.transport.close()
                return
            self.transport.write_eof()
            self._linger_timer = self.loop.call_later(_LINGER_S, self.transport.close)

        def _body_expired(self) -> None:
            self._body_timer = None
            if self.transport.is_closing():
                return
            HTTP_CONNECTIONS_CLOSED.labels(reason="body_timeout").inc()
            log.info("closed a connection from %s: request body incomplete after %g s", self._address, deadlines.body_s)
            # The endpoint reading the body gets a disconnect; nothing of this request is accepted.
            self.transport.close()

    return GuardedH11Protocol


class FailedAuthCounter:
    """Per client address: the times of requests answered 401/403 within the last ``window_s``."""

    def __init__(self, per_window: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_window = per_window
        self._window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None when it is not blocked."""
        times = self._recent(address)
        if times is None or len(times) < self._per_window:
            return None
        return max(0.0, times[0] + self._window_s - self._clock())

    def failed(self, address: str) -> None:
        times = self._recent(address)
        if times is None:
            if len(self._failures) >= _MAX_TRACKED_ADDRESSES:
                self._forget_expired()
            if len(self._failures) >= _MAX_TRACKED_ADDRESSES:
                del self._failures[next(iter(self._failures))]  # the longest-tracked address
            times = self._failures[address] = deque(maxlen=self._per_window)
        times.append(self._clock())

    def _recent(self, address: str) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        horizon = self._clock() - self._window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def _forget_expired(self) -> None:
        for address in list(self._failures):
            self._recent(address)


_LINK_REFUSALS = (400, 401, 403, 409, 410)


class UnauthenticatedLimit:
    """ASGI middleware: 429 for an address with too many 401/403 answers (or refused acknowledgement links)
    in the last minute.

    The gate endpoints decide who is authenticated; this only watches their answers, so it needs no
    knowledge of any gate. ``/healthz`` is never limited (probes share addresses with terminals).
    """

    def __init__(self, app: ASGIApp, per_minute: int, exempt: frozenset[str] = frozenset({"/healthz"})) -> None:
        self._app = app
        self._exempt = exempt
        self.counter = FailedAuthCounter(per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self._app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        retry_after = self.counter.blocked(address)
        if retry_after is not None:
            log.warning("answered 429 to %s: too many unauthenticated requests", address)
            await _too_many(send, retry_after)
            return

        # A refused one-click acknowledgement link (forged, expired, reused) is a failed authentication too:
        # each refusal writes an audit record, so guessing links must be as bounded as guessing passwords.
        refusals = _LINK_REFUSALS if scope["path"].startswith("/a/") else (401, 403)

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in refusals:
                self.counter.failed(address)
            await send(message)

        await self._app(scope, receive, watch)


async def _too_many(send: Send, retry_after: float) -> None:
    body = b'{"error": "too many unauthenticated requests"}'
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(max(1, round(retry_after))).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def protocol_for(config: HttpConfig) -> tuple[ConnectionTable, type[H11Protocol]]:
    table = ConnectionTable(config.max_connections, config.max_connections_per_address)
    return table, guarded_protocol(table, Deadlines(config.header_timeout_s, config.body_timeout_s))
