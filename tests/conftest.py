"""Generic fixtures for every test package: test data and the RTSP test server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import CLIP, TESTDATA
from tests.support.rtsp import RtspServer


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The shared test data folder (real photos, a real clip)."""
    if not TESTDATA.is_dir():
        pytest.fail(f"test data not found at {TESTDATA}; set GRIDWATCH_TESTDATA")
    return TESTDATA


@pytest.fixture
def rtsp_server_factory(testdata: Path) -> Iterator[Callable[..., RtspServer]]:
    """Start RTSP test servers (``RtspServer`` keyword arguments); all are stopped after the test."""
    servers: list[RtspServer] = []

    def start(clip: Path = CLIP, **kwargs: Any) -> RtspServer:
        server = RtspServer(clip, **kwargs)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def rtsp_server(rtsp_server_factory: Callable[..., RtspServer]) -> RtspServer:
    """A live, endless RTSP stream of the real test clip on a free port of 127.0.0.1."""
    return rtsp_server_factory(mode="loop")
