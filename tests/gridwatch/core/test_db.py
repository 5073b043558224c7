"""The one database layer on SQLite and PostgreSQL: migrations, legacy import, failures, retry."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from gridwatch.core.config.loader import ConfigError, load_config
from gridwatch.core.config.notifier import NotifierConfig, OutboxConfig
from gridwatch.core.db import (
    Database,
    DatabaseMigrationError,
    DatabaseUnreachableError,
    create_engine,
    display_url,
    schema,
)
from gridwatch.core.db.migrate import MIGRATIONS, current_revision, head_revision
from gridwatch.core.events import Alert
from gridwatch.core.persons import PersonConditions
from gridwatch.core.redact import mask_url
from gridwatch.wiring import build_database
from notifier.notifier import Notifier
from notifier.outbox import Outbox
from recognition.store import RegistryStore
from rules.state import RuleState
from tests.gridwatch.core.fixtures.legacy_db import build as legacy
from tests.notifier.helpers import wait_until
from tests.support.db import Databases, sqlite_url
from tests.support.keys import site_keys
from tests.support.postgres import PostgresCluster

FIXTURE = Path(__file__).parent / "fixtures" / "legacy_db"
LEGACY_FILES = ("registry.sqlite3", "rule_state.sqlite3", "outbox.sqlite3")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrations_build_exactly_the_declared_tables(databases: Databases) -> None:
    database = databases()
    with database.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []


def test_the_legacy_files_are_imported_once(databases: Databases, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in LEGACY_FILES:
        shutil.copy(FIXTURE / name, data_dir / name)

    database = databases(legacy_dir=data_dir)

    for name in LEGACY_FILES:
        assert not (data_dir / name).exists()
        assert (data_dir / f"{name}.migrated").is_file()
    store = RegistryStore(database, keys=databases.keys())  # seals the imported plaintext templates
    persons = store.list_persons()
    assert [(p.person_id, p.registry, p.display_name, p.embeddings) for p in persons] == [
        (pid, reg, name, count) for pid, reg, name, _, _, count in legacy.PERSONS
    ]
    assert [(p.enrolled_at, p.expires_at) for p in persons] == [(e, x) for _, _, _, e, x, _ in legacy.PERSONS]
    watch = store.embeddings("watch", legacy.MODEL)
    assert watch.ids.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(watch.vectors, np.stack([legacy.vector(s) for s in (1, 2, 3)]))
    rule, person, at, rank, suppressed = legacy.COOLDOWN
    cooldown = RuleState(database).cooldown(rule, person)
    assert cooldown is not None
    assert (cooldown.last_alert_at, cooldown.severity_rank, cooldown.suppressed) == (at, rank, suppressed)
    with Outbox(database) as outbox:
        kafka = outbox.pending("kafka")
        assert [(p.alert_id, p.attempts, p.last_error) for p in kafka] == [
            ("legacy-alert-1", 3, "KafkaConnectionError: Unable to bootstrap"),
            ("legacy-alert-2", 0, None),
        ]
        assert kafka[0].alert() == Alert.model_validate_json(legacy.ALERTS[0][2])
        assert [p.alert_id for p in outbox.pending("console")] == ["legacy-alert-2"]
        assert outbox.count_pending() == 3
        # New rows continue after the imported ones.
        person_new, ids = store.add_person(
            registry="watch",
            display_name="New",
            model_id=legacy.MODEL,
            embeddings=[("f" * 64, legacy.vector(9))],
            now=dt.datetime.now(dt.UTC),
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        )
        assert ids.tolist() == [5]
        assert outbox.pending("kafka")[-1].seq == 2

    # The next start finds nothing to import (and a file put back by hand is not imported twice).
    database.close()
    shutil.copy(FIXTURE / "outbox.sqlite3", data_dir / "outbox.sqlite3")
    again = databases(legacy_dir=data_dir)
    with Outbox(again) as outbox:
        assert outbox.count_pending() == 3
    assert len(RegistryStore(again).list_persons()) == 4
    assert person_new.person_id in {p.person_id for p in RegistryStore(again).list_persons()}


def test_entries_of_the_first_schema_keep_their_embeddings_and_get_no_conditions(
    databases: Databases, tmp_path: Path
) -> None:
    first = tmp_path / "migrations-0001"
    # Only the first revision: every later one must carry its rows over.
    shutil.copytree(MIGRATIONS, first, ignore=shutil.ignore_patterns("__pycache__", "000[2-9]_*", "00[1-9]?_*"))
    old = databases(migrations=first)
    enrolled = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    with old.engine.begin() as conn:
        assert current_revision(conn) == "0001"
        conn.execute(
            schema.persons.insert().values(
                person_id="p_0001",
                registry="watch",
                display_name="Before",
                enrolled_at=enrolled,
                expires_at=enrolled + dt.timedelta(days=30),
            )
        )
        conn.execute(
            schema.embeddings.insert().values(
                person_id="p_0001", model_id=legacy.MODEL, photo_sha256="a" * 64, vector=legacy.vector(1).tobytes()
            )
        )
    old.close()

    store = RegistryStore(databases(), keys=databases.keys())  # seals the first schema's plaintext template
    (person,) = store.list_persons()
    assert (person.person_id, person.display_name, person.embeddings) == ("p_0001", "Before", 1)
    assert store.conditions("p_0001") == PersonConditions("p_0001", "watch", enrolled)
    assert store.embeddings("watch", legacy.MODEL).person_ids == ["p_0001"]


def failing_migrations(tmp_path: Path) -> Path:
    """The shipped migrations plus a revision that changes things, then fails."""
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_broken.py").write_text(
        '"""A migration that fails half-way."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        'revision = "9999"\n'
        f"down_revision = {head_revision()!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        "def upgrade() -> None:\n"
        '    op.create_table("broken_things", sa.Column("case_id", sa.String(64), primary_key=True))\n'
        "    op.execute(\"UPDATE persons SET display_name = 'changed'\")\n"
        '    op.execute("DELETE FROM cooldowns")\n'
        '    raise RuntimeError("migration bug")\n\n\n'
        "def downgrade() -> None:\n"
        "    pass\n"
    )
    return scripts


def test_a_failing_migration_leaves_the_database_untouched(databases: Databases, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in LEGACY_FILES:
        shutil.copy(FIXTURE / name, data_dir / name)
    broken = failing_migrations(tmp_path)

    # From nothing: no table is left behind and the legacy files stay where they were.
    with pytest.raises(DatabaseMigrationError, match="nothing was changed: migration bug") as failed:
        databases(legacy_dir=data_dir, migrations=broken)
    assert "\n" not in str(failed.value)
    engine = create_engine(databases.url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert all((data_dir / name).is_file() for name in LEGACY_FILES)

    # From the current schema with data: everything as it was, still at the shipped head revision.
    good = databases(legacy_dir=data_dir)
    good.close()
    with pytest.raises(DatabaseMigrationError):
        databases(migrations=broken)
    check = databases()
    with check.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert "broken_things" not in inspect(conn).get_table_names()
        names = conn.execute(select(schema.persons.c.display_name).order_by(schema.persons.c.person_id)).scalars()
        assert sorted(names) == sorted(name for _, _, name, _, _, _ in legacy.PERSONS)
        assert conn.execute(select(schema.cooldowns.c.rule)).scalars().all() == [legacy.COOLDOWN[0]]


def test_an_unreachable_database_at_start_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://gridwatch:s3cret-pw@127.0.0.1:{closed_port()}/gridwatch"
    with pytest.raises(DatabaseUnreachableError) as failed:
        Database(url, connect_timeout_s=2).open()
    message = str(failed.value)
    assert message.startswith("cannot reach the database postgresql+psycopg://***@127.0.0.1:")
    assert "\n" not in message
    assert "s3cret" not in message

    # What an operator sees: `gridwatch run` prints one line and exits 1, the password nowhere.
    config = tmp_path / "gridwatch.yaml"
    config.write_text(
        f"service:\n  data_dir: {tmp_path / 'data'}\n  http: {{enabled: false}}\n"
        f"  database:\n    url: postgresql+psycopg://gridwatch:${{DB_PASSWORD}}@127.0.0.1:{closed_port()}/gw\n"
        "    connect_timeout_s: 2\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "gridwatch", "run", "-c", str(config), "--for", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "DB_PASSWORD": "s3cret-pw"},
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "cannot reach the database postgresql+psycopg://***@127.0.0.1:" in errors[0]
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    log = tmp_path / "data" / "logs" / "gridwatch.log"
    assert not log.exists() or "s3cret" not in log.read_text()


def test_database_urls_in_config_and_logs_never_show_a_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://gridwatch:pw@db.example:5432/gridwatch"
    assert mask_url(url) == "postgresql+psycopg://***@db.example:5432/gridwatch"
    assert display_url(url) == "postgresql+psycopg://***@db.example:5432/gridwatch"
    config = tmp_path / "service.yaml"
    config.write_text(f"service:\n  database:\n    url: {url}\n")
    with pytest.raises(ConfigError, match="literal password in the URL"):
        load_config(config, env={})
    config.write_text("service:\n  database:\n    url: ${GRIDWATCH_DATABASE_URL}\n")
    loaded = load_config(config, env={"GRIDWATCH_DATABASE_URL": url})
    assert loaded.config.service.database.url == url
    config.write_text("service:\n  database:\n    url: mysql://h/db\n")
    with pytest.raises(ConfigError, match=r"service\.database\.url"):
        load_config(config, env={})


class Collecting:
    """A sink that keeps the ids of what it is given."""

    name = "collect"

    def __init__(self) -> None:
        self.alerts: list[str] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, alert: Alert) -> None:
        self.alerts.append(alert.alert_id)


def make_alert(n: int) -> Alert:
    return Alert.model_validate_json(legacy.alert_json(n, f"p_{n:016x}"))


async def test_the_outbox_survives_the_database_dropping(postgres_cluster: PostgresCluster) -> None:
    """PostgreSQL stops while alerts flow: callers wait and retry, every alert is stored and delivered."""
    database = Database(postgres_cluster.create_database(), retry_s=60)
    sink = Collecting()
    config = NotifierConfig(outbox=OutboxConfig(retry_initial_s=0.05, retry_max_s=0.5))
    with database, Outbox(database) as outbox:
        async with Notifier(config, outbox, [sink], None) as notifier:
            before = make_alert(1)
            assert await notifier.submit(before)
            await wait_until(lambda: sink.alerts == [before.alert_id], what="delivery before the outage")

            registry = RegistryStore(database)
            version = registry.data_version()

            postgres_cluster.stop()
            try:
                during = [make_alert(n) for n in (2, 3, 4)]
                submits = [asyncio.create_task(notifier.submit(alert)) for alert in during]
                # Recognition's poll of the registry does not wait: it matches on what it loaded.
                started = time.monotonic()
                assert registry.data_version() == version
                assert time.monotonic() - started < 1.0
                await asyncio.sleep(1.5)
                assert not any(task.done() for task in submits)  # waiting, not failing
            finally:
                postgres_cluster.start_again()
            assert await asyncio.gather(*submits) == [True, True, True]
            await wait_until(
                lambda: len(sink.alerts) == 4 and outbox.count_pending() == 0, 30.0, what="delivery after the outage"
            )
            assert sorted(sink.alerts[1:]) == sorted(a.alert_id for a in during)


def test_sqlite_settings_and_erasure_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "gridwatch.sqlite3"
    with Database(sqlite_url(path)) as database:
        with database.engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "secure_delete", "busy_timeout")
            }
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 2,  # FULL
            "foreign_keys": 1,
            "secure_delete": 1,
            "busy_timeout": 10000,
        }
        store = RegistryStore(database, keys=site_keys(tmp_path))
        now = dt.datetime.now(dt.UTC)
        person, _ = store.add_person(
            registry="watch",
            display_name="Erasable-Name-7f3a",
            model_id="test@0",
            embeddings=[("a" * 64, legacy.vector(1))],
            now=now,
            expires_at=now + dt.timedelta(days=1),
        )
        store.remove_person(person.person_id)
    # Closed: the WAL is folded into the file; secure_delete overwrote the erased rows there.
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("gridwatch.sqlite3"))
    assert b"Erasable-Name-7f3a" not in data
    assert legacy.vector(1).tobytes()[:64] not in data


def test_the_configured_url_and_its_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "service.yaml"
    for url, expected in [
        ("", data_dir / "gridwatch.sqlite3"),  # ${GRIDWATCH_DATABASE_URL:-} unset
        ("sqlite:///state/site.sqlite3", tmp_path / "state" / "site.sqlite3"),  # relative to the config
    ]:
        config.write_text(f"service:\n  data_dir: {data_dir}\n  database:\n    url: '{url}'\n")
        database = build_database(load_config(config, env={}))
        assert database.dialect == "sqlite"
        assert database.url.database == str(expected)
    config.write_text("service:\n  database:\n    url: postgresql://gw:${PW}@db:5432/gw\n")
    database = build_database(load_config(config, env={"PW": "pw"}))
    assert database.display_url == "postgresql+psycopg://***@db:5432/gw"
    assert "pw" not in repr(database)
