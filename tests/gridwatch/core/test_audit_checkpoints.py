"""Signed checkpoints of the audit chain: a cut-off, re-chained or forged history is detected."""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gridwatch.core import audit as audit_module
from gridwatch.core.audit import AuditLog, verify, verify_against
from gridwatch.core.audit_checkpoints import (
    AUDIT_KEY_ENV,
    Checkpoint,
    CheckpointKey,
    checkpoints_path,
    read_checkpoints,
)
from gridwatch.core.crypto import DataKeyError

KEY = CheckpointKey(bytes(range(32)))
OTHER_KEY = CheckpointKey(bytes(range(1, 33)))


def _write(path: Path, n: int, *, every: int = 4, key: CheckpointKey | None = KEY, tag: str = "a") -> None:
    with AuditLog(path, checkpoint_key=key, checkpoint_every=every) as log:
        for i in range(n):
            log.append("registry.enroll", actor="admin", target=f"person-{tag}{i}", details={"i": i})


def _keep_lines(path: Path, n: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:n]))


def test_checkpoints_every_n_and_at_close(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    checkpoints = read_checkpoints(checkpoints_path(path))
    assert checkpoints_path(path).name == "audit.checkpoints.jsonl"
    assert [c.seq for c in checkpoints] == [4, 8, 10]
    heads = [json.loads(line)["hash"] for line in path.read_text().splitlines()]
    assert [c.head for c in checkpoints] == [heads[3], heads[7], heads[9]]
    assert all(KEY.check(c) is None for c in checkpoints)
    assert all(c.key_id == KEY.key_id for c in checkpoints)
    outcome = verify_against(path, checkpoints, KEY)
    assert outcome.ok
    assert outcome.signatures_checked
    assert outcome.chain.records == 10


def test_an_already_checkpointed_head_is_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 8)  # the 8th record's checkpoint already names the head at close
    with AuditLog(path, checkpoint_key=KEY) as log:
        assert log.checkpoint() is None
    assert [c.seq for c in read_checkpoints(checkpoints_path(path))] == [4, 8]


def test_truncation_after_a_checkpoint_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    exported = read_checkpoints(checkpoints_path(path))
    _keep_lines(path, 6)
    assert verify(path).ok  # the chain alone cannot see a cut-off tail
    outcome = verify_against(path, exported, KEY)
    assert not outcome.ok
    assert outcome.failing is not None
    assert outcome.failing.seq == 8  # the first failing checkpoint; 4 still holds
    assert outcome.reason is not None
    assert "truncated" in outcome.reason


def test_a_rewritten_and_rechained_log_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    exported = read_checkpoints(checkpoints_path(path))
    # A forger with write access cuts the log after record 5 and re-chains new records with the same code.
    _keep_lines(path, 5)
    _write(path, 5, key=None, tag="forged")
    assert verify(path).ok
    assert verify(path).records == 10
    outcome = verify_against(path, exported, KEY)
    assert not outcome.ok
    assert outcome.failing is not None
    assert outcome.failing.seq == 8
    assert outcome.reason is not None
    assert "rewritten" in outcome.reason


@pytest.mark.parametrize("forgery", ["head", "seq", "other-key", "hmac"])
def test_a_forged_checkpoint_is_rejected(tmp_path: Path, forgery: str) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 10)
    checkpoints = read_checkpoints(checkpoints_path(path))
    real = checkpoints[1]
    if forgery == "head":
        # A forger re-chains the log and moves the checkpoint to the new head, keeping the old signature.
        _keep_lines(path, 5)
        _write(path, 5, key=None, tag="forged")
        new_head = json.loads(path.read_text().splitlines()[7])["hash"]
        forged = Checkpoint(seq=real.seq, head=new_head, at=real.at, key_id=real.key_id, hmac=real.hmac)
    elif forgery == "seq":
        forged = Checkpoint(seq=real.seq - 1, head=real.head, at=real.at, key_id=real.key_id, hmac=real.hmac)
    elif forgery == "other-key":
        forged = OTHER_KEY.sign(seq=real.seq, head=real.head, at=real.at)
    else:
        forged = Checkpoint(seq=real.seq, head=real.head, at=real.at, key_id=real.key_id, hmac="0" * 64)
    outcome = verify_against(path, [checkpoints[0], forged], KEY)
    assert not outcome.ok
    assert outcome.failing == forged
    assert outcome.reason is not None
    assert ("signature invalid" in outcome.reason) or ("signed by key id" in outcome.reason)
    if forgery == "head":
        # Without the key only seq/head can be compared: the forgery passes, which is why the result says so.
        unsigned = verify_against(path, [forged], None)
        assert unsigned.ok
        assert not unsigned.signatures_checked


def test_without_a_key_no_checkpoints_and_everything_else_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    monkeypatch.setattr(audit_module, "_warned_no_key", False)
    path = tmp_path / "audit.jsonl"
    with caplog.at_level(logging.WARNING, logger="gridwatch.core.audit"):
        for _ in range(2):
            with AuditLog(path, checkpoint_every=2) as log:
                for i in range(5):
                    log.append("x", actor="a", target=str(i))
                with pytest.raises(RuntimeError, match=AUDIT_KEY_ENV):
                    log.checkpoint()
    warnings = [r for r in caplog.records if AUDIT_KEY_ENV in r.getMessage()]
    assert len(warnings) == 1  # once per process, not per open
    assert warnings[0].levelno == logging.WARNING
    assert not checkpoints_path(path).exists()
    assert verify(path).ok
    assert verify(path).records == 10


def test_the_key_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    monkeypatch.setenv(AUDIT_KEY_ENV, base64.b64encode(key).decode())
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("x", actor="a", target="t")
    (checkpoint,) = read_checkpoints(checkpoints_path(path))
    assert CheckpointKey(key).check(checkpoint) is None
    for bad, message in [("not base64!", "not valid base64"), (base64.b64encode(b"short").decode(), "exactly 32")]:
        monkeypatch.setenv(AUDIT_KEY_ENV, bad)
        with pytest.raises(DataKeyError, match=message):
            AuditLog(tmp_path / "other.jsonl")


def test_a_torn_checkpoint_line_is_ignored_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write(path, 4)
    with checkpoints_path(path).open("ab") as handle:
        handle.write(b'{"seq":5,"he')  # a crash in the middle of a checkpoint write
    assert [c.seq for c in read_checkpoints(checkpoints_path(path))] == [4]
    _write(path, 1)
    assert [c.seq for c in read_checkpoints(checkpoints_path(path))] == [4, 5]


_APPENDER = """
import sys
from pathlib import Path
from gridwatch.core.audit import AuditLog
log = AuditLog(Path(sys.argv[1]), checkpoint_every=3)
i = 0
while True:
    log.append("tick", actor="probe", target=str(i), details={"i": i})
    i += 1
"""


def _records(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_during_writes_leaves_a_verifiable_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    script = tmp_path / "appender.py"
    script.write_text(_APPENDER)
    key = bytes(range(32))
    repo = str(Path(__file__).resolve().parents[3])
    python_path = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, AUDIT_KEY_ENV: base64.b64encode(key).decode(), "PYTHONPATH": python_path}
    for _cycle in range(5):
        target = _records(path) + 20
        process = subprocess.Popen([sys.executable, str(script), str(path)], env=env)
        try:
            deadline = time.monotonic() + 15  # a generous bound, not a timing assertion
            while _records(path) < target and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            assert process.poll() is None, "the appender died on its own"
            assert _records(path) >= target, "the appender wrote too little"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    result = verify(path)
    assert result.ok, result.reason
    assert result.records >= 100
    checkpoints = read_checkpoints(checkpoints_path(path))
    assert len(checkpoints) >= 5
    outcome = verify_against(path, checkpoints, CheckpointKey(key))
    assert outcome.ok, outcome.reason


def test_a_checkpoint_that_cannot_be_written_does_not_fail_the_append(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"
    checkpoints_path(path).mkdir(parents=True)  # not writable as a file
    with caplog.at_level(logging.ERROR, logger="gridwatch.core.audit"):
        _write(path, 5)
    assert verify(path).records == 5
    assert any("checkpoint not written" in r.getMessage() for r in caplog.records)
