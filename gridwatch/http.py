"""The HTTP API (FastAPI), served in the service's own event loop by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gridwatch import __version__

log = logging.getLogger(__name__)

# How long stop() lets open requests finish before cancelling them. Unbounded, one client that
# announces a body and never sends it (anyone on the gate network can) keeps the service from stopping.
GRACEFUL_SHUTDOWN_S = 5


def create_app(status: Callable[[], dict[str, Any]], routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The API: health, status, metrics, and the ``routers`` of push sources (gates that POST their events)."""
    app = FastAPI(title="gridwatch", version=__version__)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    async def get_status() -> dict[str, Any]:
        """Cameras and gates with their health, recognition and rule counters."""
        return status()

    @app.get("/metrics", response_class=Response)
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

    async def serve_or_raise(self) -> None:
        try:
            await self.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind
            raise HttpStartError(
                f"the HTTP API could not listen on {self.config.host}:{self.config.port} (port in use?); "
                "free the port or set service.http.port"
            ) from exc


class HttpServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self._server = _EmbeddedServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                lifespan="off",
                access_log=False,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )
        )
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
        log.info("HTTP API on http://%s:%s", self._server.config.host, self.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
