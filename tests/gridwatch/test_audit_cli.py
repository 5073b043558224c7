"""`gridwatch audit checkpoint` and `gridwatch audit verify --against`: anchored checkpoints from the command line."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gridwatch.cli import main
from gridwatch.core.audit import AuditLog
from gridwatch.core.audit_checkpoints import AUDIT_KEY_ENV, CheckpointKey, checkpoints_path, read_checkpoints

KEY = bytes(range(32))


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUDIT_KEY_ENV, base64.b64encode(KEY).decode())


def _log(tmp_path: Path, n: int) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n")
    path = tmp_path / "data" / "audit.jsonl"
    with AuditLog(path, checkpoint_key=CheckpointKey(KEY), checkpoint_every=4) as log:
        for i in range(n):
            log.append("registry.enroll", actor="admin", target=f"person-{i}")
    return path


@pytest.mark.usefixtures("keyed")
def test_export_then_verify_against_detects_truncation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _log(tmp_path, 10)
    config = str(tmp_path / "gridwatch.yaml")
    anchors = tmp_path / "elsewhere" / "anchors.jsonl"
    anchors.parent.mkdir()
    assert main(["audit", "checkpoint", "-c", config, "--export", str(anchors)]) == 0
    assert "exported 3 checkpoint(s) (3 new, up to record 10)" in capsys.readouterr().out
    assert main(["audit", "verify", "-c", config, "--against", str(anchors)]) == 0
    out = capsys.readouterr().out
    assert "10 record(s), chain intact; 3 checkpoint(s)" in out
    assert "signatures checked" in out

    # Record 11 and a checkpoint of it written now; a second export keeps the old anchors and adds it.
    with AuditLog(path, checkpoint_key=None) as log:
        log.append("config.reload", actor="cli", target="config")
    assert main(["audit", "checkpoint", str(path)]) == 0
    assert "checkpoint of record 11" in capsys.readouterr().out
    assert main(["audit", "checkpoint", str(path)]) == 0
    assert "nothing to write" in capsys.readouterr().out
    assert main(["audit", "checkpoint", str(path), "--export", str(anchors)]) == 0
    assert [c.seq for c in read_checkpoints(anchors)] == [4, 8, 10, 11]

    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:9]))  # cut after the checkpoint of record 8
    assert main(["audit", "verify", str(path)]) == 0  # the chain alone cannot tell
    capsys.readouterr()
    assert main(["audit", "verify", str(path), "--against", str(anchors)]) == 1
    err = capsys.readouterr().err
    assert "FAILS checkpoint seq=10" in err
    assert "truncated" in err
    # An export from the cut log refuses to overwrite the anchors that show the cut.
    checkpoints_path(path).write_bytes(b"")
    before = anchors.read_bytes()
    assert main(["audit", "checkpoint", str(path), "--export", str(anchors)]) == 1
    assert "left as it was" in capsys.readouterr().err
    assert anchors.read_bytes() == before


def test_without_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = _log(tmp_path, 6)
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_bytes(checkpoints_path(path).read_bytes())
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    assert main(["audit", "verify", str(path), "--against", str(anchors)]) == 0
    captured = capsys.readouterr()
    assert "signatures are NOT checked" in captured.err
    assert "signatures NOT checked" in captured.out
    assert main(["audit", "checkpoint", str(path)]) == 2
    assert AUDIT_KEY_ENV in capsys.readouterr().err
    monkeypatch.setenv(AUDIT_KEY_ENV, "too-short")
    assert main(["audit", "verify", str(path), "--against", str(anchors)]) == 2
    assert "make one with" in capsys.readouterr().err


@pytest.mark.usefixtures("keyed")
def test_a_forged_anchor_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _log(tmp_path, 6)
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_text(checkpoints_path(path).read_text().replace('"seq":4', '"seq":3'))
    assert main(["audit", "verify", str(path), "--against", str(anchors)]) == 1
    assert "FAILS checkpoint seq=3" in capsys.readouterr().err
    anchors.write_text("{not json\n")
    assert main(["audit", "verify", str(path), "--against", str(anchors)]) == 1
    assert "line 1 is not a checkpoint" in capsys.readouterr().err
