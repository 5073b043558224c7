"""Erasure reaches the disk at once: after `gridwatch registry remove` while the service runs, the vector
bytes and the display name are nowhere in the database files (main file, WAL, shared memory).

The service runs in-process on the real model pack; the commands run in-process too (``main([...])``),
with their own database connections, as a second process would. While the command erases, a thread of
the service holds a read snapshot for a moment (a search reloading the index): the command's checkpoint
has to wait for it, not give up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from gridwatch.cli import main
from gridwatch.core.config.loader import load_config
from gridwatch.core.crypto import HEADER_BYTES, TAG_BYTES
from gridwatch.core.db.schema import cooldowns, embeddings, rule_timers
from gridwatch.service import Service
from rules.state import RuleState
from tests.support.models import shared_analyzer
from tests.support.paths import TESTDATA

PHOTO = TESTDATA / "faces" / "obama" / "obama.jpg"
NAME = "Erasable-Name-4f1b"
WINDOW = 16  # any 16 bytes of the vector found in a file count as a leftover

SITE = """\
service:
  name: erasure
  data_dir: {data_dir}
  http: {{enabled: false}}
registries:
  - name: watch
    purpose: erasure test
    legal_basis: test fixture
    retention_days: 30
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 600}}
  - {{id: away-watch, kind: not_seen, registries: [watch], after_s: 3600}}
notifier:
  console: {{enabled: true}}
  kafka: {{enabled: false}}
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(SITE.format(data_dir=tmp_path / "data"))
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    return config


def cli(site: Path, *args: str) -> int:
    action, *rest = args
    return main(["registry", action, "-c", str(site), *rest])


def database_files(site: Path) -> dict[str, bytes]:
    data = site.parent / "data"
    return {path.name: path.read_bytes() for path in sorted(data.glob("gridwatch.sqlite3*"))}


def leftovers(files: dict[str, bytes], vector: bytes, name: str) -> list[str]:
    """Where pieces of the vector or the name are found: ``file: what``."""
    found = []
    for file, content in files.items():
        windows = sum(1 for i in range(len(vector) - WINDOW + 1) if vector[i : i + WINDOW] in content)
        if windows:
            found.append(f"{file}: {windows} windows of the vector")
        if name.encode() in content:
            found.append(f"{file}: the display name")
    return found


async def test_registry_remove_while_the_service_runs_leaves_no_vector_bytes_in_the_database_files(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(site, "enroll", "--registry", "watch", "--name", NAME, str(PHOTO)) == 0
    person_id = capsys.readouterr().out.split()[1]

    service = Service(load_config(site))
    await service.start()
    try:
        store = service.registries.store
        database = store.database
        vector = database.transaction(
            lambda conn: conn.execute(select(embeddings.c.vector)).scalar_one(), what="test read", read_only=True
        )
        assert len(vector) == 2048 + HEADER_BYTES + TAG_BYTES  # the sealed template is what the files hold
        # Rule state about the person: the absence timer the service armed, and a cooldown.
        RuleState(database).record_alert("seen-watch", person_id, dt.datetime.now(dt.UTC), 1, alert_id="a1")
        assert leftovers(database_files(site), vector, NAME), "the scan must see the enrolled vector before erasure"

        # A search of the service reloading the index holds a read snapshot from before the erasure until
        # after it has committed: the command's checkpoint must wait for it to end, not give up.
        reading, released = threading.Event(), threading.Event()

        def erased() -> bool:
            return store.get(person_id) is None  # a fresh snapshot, on another connection

        def hold_snapshot(conn: Connection) -> None:
            conn.execute(select(embeddings.c.vector)).all()
            reading.set()
            deadline = time.monotonic() + 30
            while not erased() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            released.set()

        reader = threading.Thread(
            target=lambda: database.transaction(hold_snapshot, what="test snapshot", read_only=True)
        )
        reader.start()
        assert await asyncio.to_thread(reading.wait, 10)
        try:
            assert await asyncio.to_thread(cli, site, "remove", person_id) == 0
        finally:
            await asyncio.to_thread(reader.join)
        assert released.is_set()
        assert f"removed {person_id}" in capsys.readouterr().out

        files = database_files(site)
        assert leftovers(files, vector, NAME) == []
        assert len(files.get("gridwatch.sqlite3-wal", b"")) == 0  # the TRUNCATE checkpoint emptied it

        # The running service notices the erasure at its next search and writes nothing of it back.
        service.registries.registries.sync()
        assert service.registries.registries.size("watch") == 0
        assert leftovers(database_files(site), vector, NAME) == []

        def rule_rows(conn: Connection) -> list[object]:
            return [
                *conn.execute(select(cooldowns.c.rule).where(cooldowns.c.person_id == person_id)).all(),
                *conn.execute(select(rule_timers.c.rule).where(rule_timers.c.person_id == person_id)).all(),
            ]

        assert database.transaction(rule_rows, what="test read", read_only=True) == []
    finally:
        await service.stop()
