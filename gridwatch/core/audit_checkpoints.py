"""Signed checkpoints of the audit chain's head, so that a cut-off or re-chained log is detected.

A hash chain alone shows edited, deleted or reordered records, but anyone who can write the file can
cut records off its end or rebuild the chain from an earlier record. A checkpoint anchors the chain:
``{seq, head, at, key_id, hmac}`` says "the record with this sequence number had this hash", signed
with HMAC-SHA-256 under ``${GRIDWATCH_AUDIT_KEY}`` (base64 of 32 random bytes). ``seq`` is also the
number of records up to the head (sequence numbers start at 1 and have no gaps in a sound chain).

Checkpoints are appended (one JSON line each, fsynced) to ``audit.checkpoints.jsonl`` next to the log,
so the chain's format stays as it was. They anchor anything only once a copy lives where the service
cannot write: ``gridwatch audit checkpoint --export FILE``, then ``gridwatch audit verify --against FILE``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridwatch.core.crypto import DataKeyError, key_id

AUDIT_KEY_ENV = "GRIDWATCH_AUDIT_KEY"
KEY_BYTES = 32
CHECKPOINT_KEYS = ("seq", "head", "at", "key_id", "hmac")
# Domain separation: the same bytes signed for another purpose never verify as a checkpoint.
_HMAC_LABEL = b"gridwatch audit checkpoint v1\x00"
_HOW_TO_MAKE_ONE = "make one with: head -c 32 /dev/urandom | base64"


class CheckpointFileError(ValueError):
    """A checkpoint file holds a line that is not a checkpoint (the message names the line)."""


def checkpoints_path(log_path: Path) -> Path:
    """Where the checkpoints of ``log_path`` are kept: ``audit.jsonl`` → ``audit.checkpoints.jsonl``."""
    return log_path.with_name(f"{log_path.stem}.checkpoints.jsonl")


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The chain's head at one moment, signed."""

    seq: int
    head: str
    at: str
    key_id: str
    hmac: str

    def signed_part(self) -> dict[str, Any]:
        return {"seq": self.seq, "head": self.head, "at": self.at, "key_id": self.key_id}

    def to_json(self) -> str:
        return _canonical({**self.signed_part(), "hmac": self.hmac}).decode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes | str) -> Checkpoint:
        """Raises ``ValueError`` for anything but a well-formed checkpoint line."""
        value = json.loads(raw)
        if not isinstance(value, dict) or sorted(value) != sorted(CHECKPOINT_KEYS):
            raise ValueError(f"checkpoint keys must be exactly {', '.join(CHECKPOINT_KEYS)}")
        seq = value["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError(f"checkpoint seq must be a positive integer, got {seq!r}")
        texts = [value[key] for key in ("head", "at", "key_id", "hmac")]
        if not all(isinstance(text, str) for text in texts):
            raise ValueError("checkpoint head, at, key_id and hmac must be strings")
        return cls(seq=seq, head=value["head"], at=value["at"], key_id=value["key_id"], hmac=value["hmac"])


class CheckpointKey:
    """The HMAC key that signs and checks checkpoints. No I/O."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise DataKeyError(f"an audit key must be exactly {KEY_BYTES} bytes; {_HOW_TO_MAKE_ONE}")
        self._key = key
        self.key_id = key_id(key).hex()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CheckpointKey | None:
        """The key of ``GRIDWATCH_AUDIT_KEY``, None when unset; ``DataKeyError`` when set but unusable."""
        env = os.environ if env is None else env
        text = env.get(AUDIT_KEY_ENV, "").strip()
        if not text:
            return None
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise DataKeyError(f"{AUDIT_KEY_ENV} is not valid base64; {_HOW_TO_MAKE_ONE}") from None
        if len(key) != KEY_BYTES:
            raise DataKeyError(
                f"{AUDIT_KEY_ENV} must be base64 of exactly {KEY_BYTES} random bytes (it decodes to {len(key)}); "
                f"{_HOW_TO_MAKE_ONE}"
            )
        return cls(key)

    def _mac(self, signed_part: Mapping[str, Any]) -> str:
        return hmac.new(self._key, _HMAC_LABEL + _canonical(signed_part), hashlib.sha256).hexdigest()

    def sign(self, *, seq: int, head: str, at: str) -> Checkpoint:
        part = {"seq": seq, "head": head, "at": at, "key_id": self.key_id}
        return Checkpoint(seq=seq, head=head, at=at, key_id=self.key_id, hmac=self._mac(part))

    def check(self, checkpoint: Checkpoint) -> str | None:
        """Why ``checkpoint`` is not signed by this key, or None when it is."""
        if checkpoint.key_id != self.key_id:
            return f"signed by key id {checkpoint.key_id}, not by the key in {AUDIT_KEY_ENV} ({self.key_id})"
        if not hmac.compare_digest(checkpoint.hmac, self._mac(checkpoint.signed_part())):
            return "signature invalid (forged or altered checkpoint)"
        return None


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """The checkpoints of a file, in file order; an incomplete last line (a cut write) is left out.

    Raises ``CheckpointFileError`` for any other unreadable line, ``OSError`` when the file cannot be read.
    """
    data = path.read_bytes()
    lines = data.split(b"\n")
    # The part after the last newline is either empty or a write cut short by a crash: never a checkpoint.
    checkpoints = []
    for line_no, raw in enumerate(lines[:-1], start=1):
        try:
            checkpoints.append(Checkpoint.from_json(raw))
        except ValueError as exc:
            raise CheckpointFileError(f"{path}: line {line_no} is not a checkpoint ({exc})") from None
    return checkpoints


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line and fsync it; the caller holds the audit log's lock (one writer at a time)."""
    created = not path.exists()
    with open(path, "ab+") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > 0:
            handle.seek(size - 1)
            if handle.read(1) != b"\n":
                # A checkpoint cut by a crash: drop its bytes so the file stays one checkpoint a line.
                handle.seek(0)
                os.truncate(path, handle.read(size).rfind(b"\n") + 1)
        handle.write((checkpoint.to_json() + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def merge_checkpoints(*groups: Iterable[Checkpoint]) -> list[Checkpoint]:
    """All distinct checkpoints of ``groups``, ordered by sequence number (an export never drops one)."""
    seen: dict[str, Checkpoint] = {}
    for group in groups:
        for checkpoint in group:
            seen.setdefault(checkpoint.to_json(), checkpoint)
    return sorted(seen.values(), key=lambda c: (c.seq, c.at, c.hmac))


def write_checkpoints_file(path: Path, checkpoints: Iterable[Checkpoint]) -> None:
    """Replace ``path`` atomically with these checkpoints (temporary file, fsync, rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(b"".join((c.to_json() + "\n").encode("utf-8") for c in checkpoints))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
