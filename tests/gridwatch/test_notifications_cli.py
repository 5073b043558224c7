"""`gridwatch notifications parked`: list what a channel refused for good, and requeue one (audited)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import URL

from gridwatch.cli import main
from gridwatch.core.db import Database
from notifier.notification_outbox import NotificationOutbox
from tests.notifier.notification_support import notification_factory, store


def test_list_and_requeue_a_parked_notification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n")
    (tmp_path / "data").mkdir()
    with Database(URL.create("sqlite", database=str(tmp_path / "data" / "gridwatch.sqlite3"))) as database:
        note = notification_factory()()
        store(database, note)
        NotificationOutbox(database).park(note.notification_id, "HTTP 400: the robot refuses the message")

    assert main(["notifications", "parked", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert note.notification_id in out
    assert "the robot refuses" in out
    assert out.strip().endswith("1 parked")

    assert (
        main(["notifications", "parked", "-c", str(config), "--requeue", note.notification_id, "--actor", "ops"]) == 0
    )
    assert main(["notifications", "parked", "-c", str(config), "--requeue", note.notification_id]) == 1
    records = [json.loads(line) for line in (tmp_path / "data" / "audit.jsonl").read_text().splitlines()]
    assert [(r["action"], r["actor"], r["target"]) for r in records] == [
        ("notification.requeued", "ops", note.notification_id)
    ]
