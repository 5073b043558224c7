from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from gridwatch.core.audit import GENESIS_HASH, AuditLog, record_hash, verify


def _write_some(path: Path, n: int = 5) -> list[str]:
    with AuditLog(path) as log:
        return [
            log.append(
                "registry.enrol", actor="admin", target=f"person-{i}", details={"registry": "watch", "i": i}
            ).hash
            for i in range(n)
        ]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_records_are_chained_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    hashes = _write_some(path)
    records = [json.loads(line) for line in _lines(path)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == GENESIS_HASH
    for before, after in itertools.pairwise(records):
        assert after["prev"] == before["hash"]
    body = {k: v for k, v in records[2].items() if k != "hash"}
    assert records[2]["hash"] == record_hash(records[2]["prev"], body)
    assert records[0]["at"].endswith("Z")
    assert dt.datetime.fromisoformat(records[0]["at"]).tzinfo is not None
    result = verify(path)
    assert result.ok
    assert result.records == 5
    assert result.first_bad_line is None
    assert result.reason is None
    assert result.last_hash == hashes[-1]


def test_reopen_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    hashes = _write_some(path, 3)
    with AuditLog(path) as log:
        assert log.last_hash == hashes[-1]
        record = log.append("config.reload", actor="cli", target="config")
    assert record.seq == 4
    assert record.prev == hashes[-1]
    assert verify(path).ok
    assert verify(path).records == 4


def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    """The service and a CLI command may append to the same file; the flock + tail re-read keep order."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as service, AuditLog(path) as cli:
        service.append("a", actor="svc", target="t")
        cli.append("b", actor="cli", target="t")
        service.append("c", actor="svc", target="t")
    result = verify(path)
    assert result.ok
    assert result.records == 3


def test_threads_append_safely(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:

        def work(worker: int) -> None:
            for i in range(25):
                log.append("tick", actor=f"w{worker}", target=str(i))

        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    result = verify(path)
    assert result.ok
    assert result.records == 100


@pytest.mark.parametrize(
    ("tamper", "bad_line", "reason_part"),
    [
        ("edit", 3, "hash mismatch"),
        ("delete", 3, "deleted or reordered"),
        ("swap", 2, "deleted or reordered"),
        ("garbage", 4, "not JSON"),
        ("edit-and-rehash", 4, "deleted or reordered"),
    ],
)
def test_verify_detects_tampering(tmp_path: Path, tamper: str, bad_line: int, reason_part: str) -> None:
    path = tmp_path / "audit.jsonl"
    _write_some(path, 5)
    lines = _lines(path)
    if tamper == "edit":
        lines[2] = lines[2].replace('"person-2"', '"person-X"')
    elif tamper == "delete":
        del lines[2]
    elif tamper == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    elif tamper == "garbage":
        lines[3] = "{oops\n"
    elif tamper == "edit-and-rehash":
        # A forger who recomputes the edited record's own hash still breaks the next link.
        record = json.loads(lines[2])
        record["target"] = "person-X"
        body = {k: v for k, v in record.items() if k != "hash"}
        record["hash"] = record_hash(record["prev"], body)
        lines[2] = json.dumps(record) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    result = verify(path)
    assert not result.ok
    assert result.first_bad_line == bad_line
    assert result.reason is not None
    assert reason_part in result.reason
    assert result.records == bad_line - 1


def test_torn_last_record_is_dropped_on_open(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _write_some(path, 2)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"seq":3,"at":"20')  # a crash in the middle of a write
    assert verify(path).first_bad_line == 3
    with AuditLog(path) as log:
        assert log.append("after.crash", actor="svc", target="t").seq == 3
    assert verify(path).ok
    assert verify(path).records == 3


@pytest.mark.parametrize(
    ("details", "error"),
    [
        ({"embedding": np.zeros(4, dtype=np.float32)}, TypeError),
        ({"score": np.float64(0.5)}, TypeError),
        ({"photo": b"\xff\xd8\xff"}, TypeError),
        ({"nested": {"crop": bytearray(b"x")}}, TypeError),
        ({"list": [1, memoryview(b"x")]}, TypeError),
        ({"obj": object()}, TypeError),
        ({"password": "hunter2"}, ValueError),
        ({"kafka": {"sasl_password": "x"}}, ValueError),
        ({"nan": float("nan")}, ValueError),
    ],
)
def test_refuses_binary_numpy_and_secrets(tmp_path: Path, details: dict[str, object], error: type[Exception]) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        with pytest.raises(error):
            log.append("x", actor="a", target="t", details=details)
        assert (
            log.append("ok", actor="a", target="t", details={"when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}).seq == 1
        )
    assert verify(path).ok
    assert verify(path).records == 1


def test_empty_log_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).close()
    result = verify(path)
    assert result.ok
    assert result.records == 0


def test_closed_log_refuses_appends(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.close()
    log.close()
    with pytest.raises(RuntimeError, match="closed"):
        log.append("x", actor="a", target="t")
