"""Append-only audit log: one JSON record per line, chained by SHA-256.

Each record is ``{seq, at, actor, action, target, details, prev, hash}`` where
``hash = sha256(prev + canonical JSON of the record without "hash")`` and ``prev`` is the hash of
the record before it (64 zeros for the first). Editing, deleting or reordering a record breaks the
chain, and :func:`verify` says on which line. Cutting records off the *end* of the file cannot be
seen from the file alone, and neither can a chain rebuilt from an earlier record: for that,
:class:`AuditLog` writes HMAC-signed checkpoints of the head (every ``checkpoint_every`` records and
at ``close``; see :mod:`gridwatch.core.audit_checkpoints`) and :func:`verify_against` checks a log
against an exported copy of them.

The log is opened in append mode and every record is fsynced before ``append`` returns. A lock
makes it safe to call from the event loop and worker threads; an exclusive ``flock`` on the file
keeps two processes (the service and a CLI command) from forking the chain.

Audit records must never hold embeddings, images or credentials. Callers must not pass them; as a
guard, ``details`` refuses ``bytes``-like and numpy values (``TypeError``) and keys that name a
secret (``ValueError``).
"""

from __future__ import annotations

import datetime as dt
import enum
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, BinaryIO, Final

from gridwatch.core.audit_checkpoints import (
    AUDIT_KEY_ENV,
    Checkpoint,
    CheckpointKey,
    append_checkpoint,
    checkpoints_path,
)

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
RECORD_KEYS = ("seq", "at", "actor", "action", "target", "details", "prev", "hash")
# Keys that name a secret: refused in ``details`` so a credential cannot slip into the log by accident.
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "credentials",
        "sasl_password",
    }
)
_MAX_DEPTH = 8
_TAIL_CHUNK = 64 * 1024
DEFAULT_CHECKPOINT_EVERY = 1000


class _KeyFromEnv:
    """Marker default of ``AuditLog(checkpoint_key=...)``: read ``GRIDWATCH_AUDIT_KEY``."""


KEY_FROM_ENV: Final = _KeyFromEnv()
_warned_no_key = False


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One line of the audit log."""

    seq: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The record without its hash: what the hash covers."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "prev": self.prev,
        }

    def to_json(self) -> str:
        return canonical_json({**self.body(), "hash": self.hash})


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify`; ``first_bad_line`` is 1-based."""

    ok: bool
    records: int
    first_bad_line: int | None = None
    reason: str | None = None
    last_hash: str = field(default=GENESIS_HASH)


def canonical_json(value: Mapping[str, Any]) -> str:
    """Sorted keys, no spaces, no NaN: the same bytes for the same record on every machine."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(prev: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev + canonical_json(body)).encode("utf-8")).hexdigest()


def _clean(value: object, path: str, depth: int) -> object:
    """A JSON-safe copy of ``value``; refuses binary data, numpy values and secret-named keys."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"audit details nested deeper than {_MAX_DEPTH} levels at {path}")
    # numpy scalars subclass float/int, so this check must come before the plain-type ones.
    if type(value).__module__.split(".")[0] == "numpy":
        raise TypeError(f"audit details must not hold numpy values (embeddings?) at {path}")
    if isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"audit details must not hold bytes (images?) at {path}")
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"audit details must not hold NaN or infinity at {path}")
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"audit details keys must be str, got {type(key).__name__} at {path}")
            if key.lower() in SECRET_KEYS:
                raise ValueError(f"audit details must not hold credentials (key {key!r} at {path})")
            out[key] = _clean(item, f"{path}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_clean(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise TypeError(f"audit details value of type {type(value).__name__} is not allowed at {path}")


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _read_last_line(handle: BinaryIO, size: int) -> bytes:
    """The last complete line of a file of ``size`` bytes (without its newline), or b""."""
    end = size
    buffer = b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        handle.seek(start)
        buffer = handle.read(end - start) + buffer
        end = start
        body = buffer[:-1] if buffer.endswith(b"\n") else buffer
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1 :]
    return buffer[:-1] if buffer.endswith(b"\n") else buffer


class AuditLog:
    """An append-only, hash-chained JSON-lines file (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        checkpoint_key: CheckpointKey | _KeyFromEnv | None = KEY_FROM_ENV,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
    ) -> None:
        """``checkpoint_key`` None writes no checkpoints; by default the key comes from the environment
        (``DataKeyError`` when it is set but malformed)."""
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        if isinstance(checkpoint_key, _KeyFromEnv):
            checkpoint_key = CheckpointKey.from_env()
            if checkpoint_key is None:
                _warn_no_key_once()
        self._checkpoint_key = checkpoint_key
        self._checkpoint_every = checkpoint_every
        self._checkpoints_path = checkpoints_path(path)
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        # Binary append mode: every write lands at the end, whatever another writer did.
        self._file: BinaryIO | None = open(path, "ab")  # noqa: SIM115 - owned by this object, closed in close()
        if created:
            _fsync_dir(path.parent)
        self._known_size = -1
        self._seq = 0
        self._prev = GENESIS_HASH
        with self._lock, self._locked_file() as handle:
            self._sync_tail(handle)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def last_hash(self) -> str:
        """Hash of the newest record; keep a copy elsewhere to detect a cut-off tail."""
        return self._prev

    def append(
        self, action: str, *, actor: str, target: str, details: Mapping[str, object] | None = None
    ) -> AuditRecord:
        """Write one record, fsync it and return it. Raises ``TypeError``/``ValueError`` on bad details."""
        cleaned = _clean(dict(details or {}), "details", 0)
        assert isinstance(cleaned, dict)
        for name, text in (("action", action), ("actor", actor), ("target", target)):
            if not isinstance(text, str) or not text:
                raise ValueError(f"audit {name} must be a non-empty string")
        with self._lock, self._locked_file() as handle:
            self._sync_tail(handle)
            body: dict[str, Any] = {
                "seq": self._seq + 1,
                "at": _utc_now_iso(),
                "actor": actor,
                "action": action,
                "target": target,
                "details": cleaned,
                "prev": self._prev,
            }
            record = AuditRecord(**body, hash=record_hash(self._prev, body))
            data = (record.to_json() + "\n").encode("utf-8")
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            self._seq = record.seq
            self._prev = record.hash
            self._known_size = os.fstat(handle.fileno()).st_size
            # After the record is on disk, never before: a checkpoint never names a record a crash lost.
            if record.seq % self._checkpoint_every == 0:
                self._try_checkpoint()
            return record

    @property
    def checkpoints_path(self) -> Path:
        return self._checkpoints_path

    def checkpoint(self) -> Checkpoint | None:
        """Sign and write a checkpoint of the head now; None for an empty log or one already checkpointed.

        Raises ``RuntimeError`` without a key.
        """
        if self._checkpoint_key is None:
            raise RuntimeError(f"no audit checkpoint key: set {AUDIT_KEY_ENV}")
        with self._lock, self._locked_file() as handle:
            self._sync_tail(handle)
            return self._write_checkpoint()

    def close(self) -> None:
        """Writes a checkpoint of the head (with a key), then closes. Idempotent."""
        with self._lock:
            if self._file is None:
                return
            try:
                if self._checkpoint_key is not None:
                    with self._locked_file() as handle:
                        self._sync_tail(handle)
                        self._try_checkpoint()
            finally:
                self._file.close()
                self._file = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _try_checkpoint(self) -> None:
        """A checkpoint that cannot be written is logged, not raised: the record is on disk already, and
        the next checkpoint (N records on, or at close) names the head that this one would have."""
        try:
            self._write_checkpoint()
        except OSError as exc:
            logger.error("audit log %s: checkpoint not written: %s", self._path, exc)

    def _write_checkpoint(self) -> Checkpoint | None:
        """Under the lock and flock: append a signed checkpoint of the head unless the last one names it."""
        if self._checkpoint_key is None or self._seq == 0:
            return None
        if self._checkpoints_path.exists():
            with open(self._checkpoints_path, "rb") as reader:
                last = _read_last_line(reader, os.fstat(reader.fileno()).st_size)
            try:
                previous = Checkpoint.from_json(last) if last else None
            except ValueError:
                previous = None  # a line cut by a crash: append_checkpoint drops it
            if previous is not None and (previous.seq, previous.head) == (self._seq, self._prev):
                return None
        checkpoint = self._checkpoint_key.sign(seq=self._seq, head=self._prev, at=_utc_now_iso())
        append_checkpoint(self._checkpoints_path, checkpoint)
        return checkpoint

    def _locked_file(self) -> _FileLock:
        if self._file is None:
            raise RuntimeError("audit log is closed")
        return _FileLock(self._file)

    def _sync_tail(self, handle: BinaryIO) -> None:
        """Continue the chain from the last record on disk (another process may have appended)."""
        size = os.fstat(handle.fileno()).st_size
        if size == self._known_size:
            return
        with open(self._path, "rb") as reader:
            if size > 0:
                reader.seek(size - 1)
                if reader.read(1) != b"\n":
                    # A record whose write never completed was never returned to a caller: drop it so
                    # the chain goes on from the last whole record (verify would flag it otherwise).
                    reader.seek(0)
                    whole = reader.read(size).rfind(b"\n") + 1
                    logger.warning("audit log %s: dropping %d bytes of a torn last record", self._path, size - whole)
                    os.truncate(self._path, whole)
                    size = whole
            last = _read_last_line(reader, size) if size > 0 else b""
        if last:
            try:
                record = json.loads(last)
                self._seq = int(record["seq"])
                self._prev = str(record["hash"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"audit log {self._path}: last record is unreadable ({exc})") from exc
        else:
            self._seq, self._prev = 0, GENESIS_HASH
        self._known_size = size


def _warn_no_key_once() -> None:
    global _warned_no_key
    if not _warned_no_key:
        _warned_no_key = True
        logger.warning(
            "%s is not set: no signed audit checkpoints are written; the audit chain is then tamper-evident "
            "only against readers without write access to the data directory",
            AUDIT_KEY_ENV,
        )


class _FileLock:
    """An exclusive ``flock`` held while one record is written (guards against a second process)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def __enter__(self) -> BinaryIO:
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX)
        return self._handle

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify(path: Path) -> VerifyResult:
    """Check every record's hash, sequence number and link to the previous record."""
    prev = GENESIS_HASH
    count = 0
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            bad = _check_line(raw, prev, count + 1)
            if bad is not None:
                return VerifyResult(ok=False, records=count, first_bad_line=line_no, reason=bad, last_hash=prev)
            prev = json.loads(raw)["hash"]
            count += 1
    return VerifyResult(ok=True, records=count, last_hash=prev)


def _check_line(raw: bytes, prev: str, expected_seq: int) -> str | None:
    """Why this line breaks the chain, or None when it is sound."""
    if not raw.endswith(b"\n"):
        return "incomplete last line (torn write)"
    try:
        record = json.loads(raw)
    except ValueError as exc:
        return f"not JSON: {exc}"
    if not isinstance(record, dict) or sorted(record) != sorted(RECORD_KEYS):
        return f"record keys must be exactly {', '.join(RECORD_KEYS)}"
    if record["seq"] != expected_seq:
        return f"sequence number {record['seq']!r}, expected {expected_seq} (record deleted or reordered)"
    if record["prev"] != prev:
        return "prev does not match the hash of the record before (record deleted or reordered)"
    body = {key: record[key] for key in RECORD_KEYS if key != "hash"}
    try:
        expected_hash = record_hash(prev, body)
    except ValueError as exc:
        return f"record cannot be hashed: {exc}"
    if record["hash"] != expected_hash:
        return "hash mismatch (record edited)"
    return None


@dataclass(frozen=True, slots=True)
class AgainstResult:
    """Outcome of :func:`verify_against`: the chain's own check, then every checkpoint's.

    ``signatures_checked`` is False when no key was given: then only sequence numbers and heads were compared,
    and a forged checkpoint file would not be noticed.
    """

    chain: VerifyResult
    checkpoints: int
    signatures_checked: bool
    failing: Checkpoint | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.reason is None


def verify_against(path: Path, checkpoints: Sequence[Checkpoint], key: CheckpointKey | None) -> AgainstResult:
    """Check the chain, then that the log still holds every checkpoint's record with its hash.

    A log cut off after a checkpoint has fewer records than the checkpoint's ``seq``; a log re-chained from
    an earlier record has another hash at that ``seq``. The first failing checkpoint (by ``seq``) is named.
    """
    signed = key is not None
    ordered = sorted(checkpoints, key=lambda c: c.seq)
    if key is not None:
        for checkpoint in ordered:
            bad = key.check(checkpoint)
            if bad is not None:
                chain = VerifyResult(ok=True, records=0)  # not read: a forged anchor settles it
                return AgainstResult(chain, len(ordered), signed, checkpoint, bad)
    prev = GENESIS_HASH
    count = 0
    pending = iter(ordered)
    due = next(pending, None)
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            bad = _check_line(raw, prev, count + 1)
            if bad is not None:
                chain = VerifyResult(ok=False, records=count, first_bad_line=line_no, reason=bad, last_hash=prev)
                return AgainstResult(chain, len(ordered), signed)
            prev = json.loads(raw)["hash"]
            count += 1
            while due is not None and due.seq == count:
                if due.head != prev:
                    chain = VerifyResult(ok=True, records=count, last_hash=prev)
                    reason = f"record {count} has another hash than the checkpoint says (log rewritten)"
                    return AgainstResult(chain, len(ordered), signed, due, reason)
                due = next(pending, None)
    chain = VerifyResult(ok=True, records=count, last_hash=prev)
    if due is not None:
        reason = f"the log has {count} record(s), the checkpoint names record {due.seq} (log truncated)"
        return AgainstResult(chain, len(ordered), signed, due, reason)
    return AgainstResult(chain, len(ordered), signed)
