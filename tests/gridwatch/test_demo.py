"""The demo resets only a data directory it made itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.demo import prepare_demo


def test_demo_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path) -> None:
    data = tmp_path / "site-data"
    data.mkdir()
    (data / "registry.sqlite3").write_bytes(b"a real site's registry")
    config = tmp_path / "gridwatch.yaml"
    config.write_text(f"service:\n  data_dir: {data}\n")
    with pytest.raises(SystemExit, match="refusing to reset"):
        prepare_demo(config, keep_state=False)
    assert (data / "registry.sqlite3").read_bytes() == b"a real site's registry"
