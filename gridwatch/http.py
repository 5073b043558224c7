"""The HTTP API (FastAPI), served in the service's own event loop by uvicorn.

This port is the one push terminals must reach, so it serves devices: ``/healthz`` (``ok``/``degraded``, no
detail) and the gate endpoints to anyone; ``/status`` and ``/metrics`` only to ``service.http.status_allow``
(default: loopback); docs and the OpenAPI page never. Connection limits: ``gridwatch.http_guard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gridwatch import __version__
from gridwatch.core.config.service import HttpConfig
from gridwatch.http_guard import ConnectionTable, UnauthenticatedLimit, protocol_for

log = logging.getLogger(__name__)

# How long stop() lets open requests finish before cancelling them. Unbounded, one client that
# announces a body and never sends it (anyone on the gate network can) keeps the service from stopping.
GRACEFUL_SHUTDOWN_S = 5


def address_allowed(host: str | None, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    """Whether a client address lies in ``networks`` (an IPv4-mapped IPv6 address counts as its IPv4)."""
    if host is None:
        return False
    try:
        address = ip_address(host)
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def create_app(
    status: Callable[[], dict[str, Any]],
    routers: Sequence[APIRouter] = (),
    *,
    healthy: Callable[[], bool] = lambda: True,
    config: HttpConfig | None = None,
) -> FastAPI:
    """The API: health, status, metrics, and the ``routers`` of push sources (gates that POST their events)."""
    config = config or HttpConfig()
    # No /docs, /redoc or /openapi.json: they would describe the service to anyone on the gate network.
    app = FastAPI(title="gridwatch", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(UnauthenticatedLimit, per_minute=config.unauthenticated_per_minute)
    networks = list(config.status_allow)

    def operators_only(request: Request) -> None:
        if not address_allowed(request.client.host if request.client else None, networks):
            # 404, not 403: to an outsider the detail pages do not exist.
            raise HTTPException(status_code=404, detail="Not Found")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """For probes: ``ok`` or ``degraded`` (a camera or gate not online), never which one."""
        return {"status": "ok" if healthy() else "degraded"}

    @app.get("/status", dependencies=[Depends(operators_only)])
    async def get_status() -> dict[str, Any]:
        """Cameras and gates with their health, recognition and rule counters."""
        return status()

    @app.get("/metrics", response_class=Response, dependencies=[Depends(operators_only)])
    async def metrics() -> Response:
        """Prometheus metrics (``gridwatch.core.metrics``) in the text exposition format."""
        # Off the loop: the outbox probe reads the database.
        body = await asyncio.to_thread(generate_latest)
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


class HttpStartError(OSError):
    """The HTTP API could not start (typically: its port is taken)."""


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's loop: the service, not uvicorn, owns the signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    name = "HTTP API"
    setting = "service.http"

    async def serve_or_raise(self) -> None:
        try:
            await self.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind
            raise HttpStartError(
                f"the {self.name} could not listen on {self.config.host}:{self.config.port} (port in use?); "
                f"free the port or set {self.setting}.port"
            ) from exc


class HttpServer:
    """uvicorn on ``host:port`` with the connection limits and timeouts of ``limits`` (default: ``HttpConfig()``)."""

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        *,
        limits: HttpConfig | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        name: str = "HTTP API",
        setting: str = "service.http",
    ) -> None:
        """``ssl_certfile``/``ssl_keyfile``: serve HTTPS (the console, when configured). ``name`` and
        ``setting`` (its config section) are for messages."""
        limits = limits or HttpConfig()
        self._name = name
        self._scheme = "https" if ssl_certfile else "http"
        self.connections: ConnectionTable
        self.connections, protocol = protocol_for(limits)
        self._server = _EmbeddedServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                http=protocol,
                # Its records go to the service's handlers (format, redaction, rate limit); uvicorn's own
                # logging config would write them to stderr past all three.
                log_config=None,
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                timeout_keep_alive=limits.keepalive_s,
                h11_max_incomplete_event_size=limits.max_header_bytes,
                # Requests in flight: connections are capped by the protocol already, before any request is read.
                limit_concurrency=limits.max_connections + 1,
                ssl_certfile=ssl_certfile,
                ssl_keyfile=ssl_keyfile,
            )
        )
        self._server.name = name
        self._server.setting = setting
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int | None:
        servers = getattr(self._server, "servers", None)
        if not servers:
            return None
        return int(servers[0].sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._task is not None:
            return
        self._task = asyncio.create_task(self._server.serve_or_raise(), name="gridwatch.http")
        while not self._server.started:
            if self._task.done():
                # Forgotten first: stop() must not re-raise this start-up error while shutting down.
                task, self._task = self._task, None
                task.result()  # re-raises a bind error
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.02)
        log.info("%s on %s://%s:%s", self._name, self._scheme, self._server.config.host, self.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
