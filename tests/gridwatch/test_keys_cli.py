"""`gridwatch registry shred` and `gridwatch keys rotate|list`, as an operator runs them (issue 14).

In-process (``main([...])``) on real photos and the session's model pack; the site is SQLite, and its
backup is made with SQLite's online backup, as an operator would.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from gridwatch.cli import main
from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import load_config
from gridwatch.core.crypto import DATA_KEY_ENV, OLD_DATA_KEYS_ENV, Keyring, new_data_key
from gridwatch.core.db import Database
from gridwatch.core.registry_keys import RegistryKeyMissingError
from gridwatch.wiring import build_recognition, data_paths, registry_keys
from recognition.store import RegistryStore
from tests.gridwatch.test_registry_cli import SITE, audit_records
from tests.support.models import shared_analyzer
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
KEY_A, KEY_B = new_data_key(), new_data_key()


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(
        SITE.format(data_dir=tmp_path / "data")
        + "  - {name: other, purpose: test registry, legal_basis: test fixture, retention_days: 30}\n"
    )
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    monkeypatch.setenv(DATA_KEY_ENV, b64(KEY_A))
    monkeypatch.delenv(OLD_DATA_KEYS_ENV, raising=False)
    return config


def enrol(site: Path, registry: str, photo: str, capsys: pytest.CaptureFixture[str]) -> str:
    args = ["registry", "enroll", "-c", str(site), "--registry", registry, "--name", photo, str(FACES / photo)]
    assert main(args) == 0, capsys.readouterr().err
    return capsys.readouterr().out.split()[1]


def templates(site: Path, registry: str, database: Database | None = None) -> int:
    """How many templates of ``registry`` the site can open (its current master key and key file)."""
    loaded = load_config(site)
    with AuditLog(data_paths(loaded).audit_log) as audit:
        parts = build_recognition(loaded, audit, database=database)
        try:
            return len(parts.store.embeddings(registry, parts.analyzer.model_id).ids)
        finally:
            parts.close()


def test_shred_destroys_the_key_so_a_backup_made_before_opens_nothing(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enrol(site, "watch", "obama/obama.jpg", capsys)
    enrol(site, "watch", "biden/biden.jpg", capsys)
    enrol(site, "other", "kit_harington/kit1.jpeg", capsys)
    assert templates(site, "watch") == 2
    backup = tmp_path / "backup.sqlite3"
    with sqlite3.connect(tmp_path / "data" / "gridwatch.sqlite3") as live, sqlite3.connect(backup) as copy:
        live.backup(copy)

    assert main(["registry", "shred", "-c", str(site), "watch", "--actor", "dpo-1"]) == 0
    out, err = capsys.readouterr()
    assert "shredded watch: data key" in out
    assert "still in the config" in err
    assert "erased 2 person(s), 2 template(s)" in out
    [record] = [r for r in audit_records(site) if r["action"] == "registry.shred"]
    assert (record["actor"], record["target"]) == ("dpo-1", "watch")
    assert record["details"]["persons"] == 2
    assert record["details"]["templates"] == 2
    assert "watch" not in json.loads((tmp_path / "data" / "keys" / "registry-keys.json").read_text())["registries"]

    # The backup still has the rows; with the site's master key and key file it opens nothing of "watch".
    with Database(f"sqlite:///{backup}") as copy:
        assert len(RegistryStore(copy).list_persons("watch")) == 2
        with pytest.raises(RegistryKeyMissingError):
            templates(site, "watch", database=copy)
        assert templates(site, "other", database=copy) == 1
    assert templates(site, "other") == 1

    assert main(["registry", "shred", "-c", str(site), "watch"]) == 1  # nothing left to shred
    assert "nothing to shred" in capsys.readouterr().err


def test_shred_needs_no_master_key(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    enrol(site, "watch", "obama/obama.jpg", capsys)
    monkeypatch.delenv(DATA_KEY_ENV)
    assert main(["registry", "shred", "-c", str(site), "watch"]) == 0, capsys.readouterr().err


def test_rotate_rewraps_under_the_new_master_key_and_everything_still_opens(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    enrol(site, "watch", "obama/obama.jpg", capsys)
    enrol(site, "other", "kit_harington/kit1.jpeg", capsys)
    before = registry_keys(load_config(site)).wrapped_keys()

    monkeypatch.setenv(DATA_KEY_ENV, b64(KEY_B))
    monkeypatch.setenv(OLD_DATA_KEYS_ENV, b64(KEY_A))
    assert main(["keys", "rotate", "-c", str(site), "--actor", "admin-2"]) == 0, capsys.readouterr().err
    assert "re-wrapped 2 registry key(s)" in capsys.readouterr().out
    [record] = [r for r in audit_records(site) if r["action"] == "keys.rotate"]
    assert record["details"]["rewrapped"] == ["other", "watch"]
    assert record["details"]["master_key_id"] == Keyring(KEY_B).key_id
    after = registry_keys(load_config(site)).wrapped_keys()
    for name in ("watch", "other"):
        assert after[name].key_id == before[name].key_id  # the same data key: objects are not touched
        assert after[name].master_key_id == Keyring(KEY_B).key_id != before[name].master_key_id

    # Only the new master key from now on: templates open, enrolment goes on, and the list shows it.
    monkeypatch.delenv(OLD_DATA_KEYS_ENV)
    assert templates(site, "watch") == 1
    enrol(site, "watch", "biden/biden.jpg", capsys)
    assert templates(site, "watch") == 2
    assert main(["keys", "list", "-c", str(site)]) == 0
    listing = capsys.readouterr().out
    assert listing.count(Keyring(KEY_B).key_id) == 2
    assert main(["keys", "rotate", "-c", str(site)]) == 0
    assert "re-wrapped 0 registry key(s) under master key" in capsys.readouterr().out


def test_rotate_without_the_old_key_changes_nothing(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    enrol(site, "watch", "obama/obama.jpg", capsys)
    key_file = tmp_path / "data" / "keys" / "registry-keys.json"
    before = key_file.read_bytes()
    monkeypatch.setenv(DATA_KEY_ENV, b64(KEY_B))
    assert main(["keys", "rotate", "-c", str(site)]) == 1
    err = capsys.readouterr().err
    assert "'watch'" in err
    assert OLD_DATA_KEYS_ENV in err  # the remedy
    assert key_file.read_bytes() == before


def test_rotate_without_a_master_key_says_how_to_set_one(
    site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(DATA_KEY_ENV)
    assert main(["keys", "rotate", "-c", str(site)]) == 2
    err = capsys.readouterr().err
    assert f"{DATA_KEY_ENV} is not set" in err
    assert "head -c 32 /dev/urandom | base64" in err
