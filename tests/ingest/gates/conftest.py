"""Fixtures of the gate tests: a real uvicorn server on 127.0.0.1 serving the ISAPI push route."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI

from gridwatch.core.config.gates import IsapiPushGateConfig
from gridwatch.core.interfaces import GateBusy, GateEvent
from ingest.gates.isapi_push import IsapiPushSource
from tests.support.gate_payloads import face_jpeg
from tests.support.rtsp import free_port

PUSH_USER = "terminal"
PUSH_PASSWORD = "s3cret-Push-pw"


def push_config(**overrides: object) -> IsapiPushGateConfig:
    values: dict[str, object] = {
        "id": "gate-a",
        "kind": "isapi_push",
        "username": PUSH_USER,
        "password": PUSH_PASSWORD,
        "timezone": "Asia/Shanghai",
        "doors": [{"door": "1", "direction": "in"}, {"door": "2", "direction": "out"}],
        "max_image_bytes": 400_000,
        "max_body_bytes": 1_000_000,
    }
    values.update(overrides)
    return IsapiPushGateConfig.model_validate(values)


def small_face_jpeg(name: str = "obama", width: int = 160) -> bytes:
    """A real face photo, scaled down: small bodies keep the fuzz test fast."""
    image = cv2.imdecode(np.frombuffer(face_jpeg(name), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    height = round(image.shape[0] * width / image.shape[1])
    ok, encoded = cv2.imencode(".jpg", cv2.resize(image, (width, height)))
    assert ok
    return encoded.tobytes()


@dataclass
class PushServer:
    """A running uvicorn server (in its own thread and event loop) with one ``IsapiPushSource``."""

    source: IsapiPushSource
    base_url: str
    events: list[GateEvent] = field(default_factory=list)
    fail_handler: bool = False
    busy_handler: bool = False  # the handler refuses (recognition saturated)

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.source.path}"

    def __repr__(self) -> str:
        return f"PushServer({self.url!r})"

    def counter(self, name: str) -> int:
        value = self.source.status.extra[name]
        assert isinstance(value, int)
        return value


def _serve(config: IsapiPushGateConfig) -> Iterator[PushServer]:
    holder: dict[str, PushServer] = {}

    async def on_event(event: GateEvent) -> None:
        if holder["server"].busy_handler:
            raise GateBusy("the gate's recognition queue is full (8)", 2)
        holder["server"].events.append(event)
        if holder["server"].fail_handler:
            raise RuntimeError("downstream failed")

    source = IsapiPushSource(config, on_event)
    app = FastAPI()
    app.include_router(source.router)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)
    )
    holder["server"] = PushServer(source, f"http://127.0.0.1:{port}")
    loop = asyncio.new_event_loop()

    async def run() -> None:
        await source.start()
        await server.serve()
        await source.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), name="push-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)  # polling with a deadline
        yield holder["server"]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def push_server() -> Iterator[PushServer]:
    yield from _serve(push_config())


@pytest.fixture(scope="module")
def module_push_server() -> Iterator[PushServer]:
    yield from _serve(push_config())
