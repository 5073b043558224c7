"""Generic fixtures for every test package: test data, the RTSP test server and Apache Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gridwatch.core.crypto import DATA_KEY_ENV
from tests.support.db import Databases
from tests.support.kafka import KafkaBroker, KafkaCluster
from tests.support.keys import TEST_MASTER_KEY_B64
from tests.support.paths import CLIP, TESTDATA
from tests.support.postgres import PostgresCluster, PostgresUnavailableError
from tests.support.rtsp import RtspServer

# The real-browser harness (Debian's Chromium through Playwright) for the console's page tests:
# fixtures `chromium`, `browser_contexts`, `browser_context`, `page`, `page_errors`, `screenshots`.
pytest_plugins = ["tests.support.browser"]


@pytest.fixture(autouse=True)
def data_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Templates are sealed at rest: every test (and the processes it starts) has the session's master
    key, unless it removes it."""
    monkeypatch.setenv(DATA_KEY_ENV, TEST_MASTER_KEY_B64)


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


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    """One single-node Apache Kafka for the session, started by the first test that needs it.

    Shared: tests use topics of their own (unique names) and never stop it; a test that stops a
    broker takes its own (``tests/notifier/conftest.py``: ``kafka_broker``) or ``kafka_cluster``.
    """
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    """Three Apache Kafka brokers and their KRaft controller for the session, started lazily.

    Defaults: replication factor 3, ``min.insync.replicas=2``. A test that stops brokers starts them
    again before it ends (``KafkaCluster.start_brokers``).
    """
    with KafkaCluster() as cluster:
        yield cluster


# --- databases (SQLite and a throwaway PostgreSQL server) ----------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL server for the session, started by the first test that needs it."""
    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresUnavailableError as exc:
        cluster.close()
        pytest.fail(f"the PostgreSQL test server did not start: {exc}")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The session server's maintenance database; a test that writes takes ``database_url``."""
    return postgres_cluster.url()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gridwatch.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database()


@pytest.fixture
def databases(database_url: str, tmp_path: Path) -> Iterator[Databases]:
    """Open ``Database`` objects on ``database_url`` (one per simulated process); all closed after the test.

    ``databases.keys()``: the site's registry data keys (a key file in ``tmp_path``).
    """
    opened = Databases(database_url, keys_dir=tmp_path)
    try:
        yield opened
    finally:
        opened.close()
