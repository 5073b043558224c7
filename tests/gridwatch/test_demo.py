"""The demo resets only a data directory it made itself, and runs without a data key set."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from gridwatch.core.crypto import DATA_KEY_ENV
from gridwatch.demo import DEMO_CONFIG, DEMO_KEY_FILE, prepare_demo
from tests.support.models import shared_analyzer


def test_demo_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path) -> None:
    data = tmp_path / "site-data"
    data.mkdir()
    (data / "registry.sqlite3").write_bytes(b"a real site's registry")
    config = tmp_path / "gridwatch.yaml"
    config.write_text(f"service:\n  data_dir: {data}\n")
    with pytest.raises(SystemExit, match="refusing to reset"):
        prepare_demo(config, keep_state=False)
    assert (data / "registry.sqlite3").read_bytes() == b"a real site's registry"


def test_without_a_data_key_the_demo_seals_with_a_throwaway_key_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "demo"
    shutil.copytree(DEMO_CONFIG, config)
    text = (config / "gridwatch.yaml").read_text()
    (config / "gridwatch.yaml").write_text(text.replace("../../var/demo", str(tmp_path / "data")))
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    monkeypatch.delenv(DATA_KEY_ENV)

    prepare_demo(config, keep_state=False)
    key_file = tmp_path / "data" / DEMO_KEY_FILE
    assert f"{DATA_KEY_ENV} is not set: templates are sealed with a throwaway demo key" in capsys.readouterr().out
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert os.environ[DATA_KEY_ENV] == key_file.read_text().strip()  # the service started next uses it
    assert "demo_watchlist" in json.loads((tmp_path / "data" / "keys" / "registry-keys.json").read_text())["registries"]
