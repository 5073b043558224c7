"""Per-registry data keys: what templates, evidence and reference photos of a registry are sealed with.

Each registry gets its own random 32-byte data key the first time something of it is sealed. The key
is kept only wrapped by the master key (``GRIDWATCH_DATA_KEY``, see ``gridwatch.core.crypto``), in a
key file of its own (``<data_dir>/keys/registry-keys.json``), never in the database: a copy of the
database is then ciphertext only, and destroying a registry's wrapped key (``shred``, the command
``gridwatch registry shred``) makes every copy of that registry's objects unreadable, backups of the
database included, even to whoever holds the master key. Back the key file up apart from the
database, with a retention no longer than the promise a shred makes (see the README).

Rotating the master key re-wraps the data keys (``rotate``); the objects are not touched, and a
process that already unwrapped a data key keeps using it, so rotation needs no downtime.

The file is JSON, written whole (temporary file, fsync, rename) under an exclusive ``flock`` of a
lock file beside it, so a CLI command and the running service may both change it. Readers notice
another process's change by the file's identity (inode, size, mtime) and re-read it; a shredded
registry's key is then dropped from memory too.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gridwatch.core.crypto import (
    DATA_KEY_ENV,
    OLD_DATA_KEYS_ENV,
    DataKeyError,
    DecryptError,
    Keyring,
    associated_data,
    key_id,
    new_data_key,
)

KEY_FILE_VERSION = 1
_TEMPLATE_KIND = "template"


class RegistryKeyMissingError(DecryptError):
    """A registry has no data key: it was shredded (or never sealed anything); its objects are unreadable."""


class MasterKeyMissingError(DataKeyError):
    """Something must be sealed or opened but ``GRIDWATCH_DATA_KEY`` is not set."""


def master_key_missing(what: str) -> MasterKeyMissingError:
    """The one message for a missing master key: what needs it and how to set one."""
    return MasterKeyMissingError(
        f"{what} needs the master key, but {DATA_KEY_ENV} is not set; make one with: "
        f"head -c 32 /dev/urandom | base64, export it as {DATA_KEY_ENV} and keep a copy safe "
        f"(without it every template and evidence image is lost)"
    )


def template_aad(registry: str, person_id: str, model_id: str) -> bytes:
    """Associated data of a template: it opens only as this person's, of this registry, for this model."""
    return associated_data(_TEMPLATE_KIND, registry, person_id, model_id)


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A registry's data key as stored: sealed by the master key whose id is ``master_key_id``."""

    registry: str
    key_id: str  # hex id of the data key (stored beside every object it sealed)
    master_key_id: str
    wrapped: bytes
    created_at: str
    wrapped_at: str

    def to_json(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "master_key_id": self.master_key_id,
            "wrapped": base64.b64encode(self.wrapped).decode("ascii"),
            "created_at": self.created_at,
            "wrapped_at": self.wrapped_at,
        }

    @classmethod
    def from_json(cls, registry: str, value: dict[str, str]) -> WrappedKey:
        return cls(
            registry=registry,
            key_id=value["key_id"],
            master_key_id=value["master_key_id"],
            wrapped=base64.b64decode(value["wrapped"]),
            created_at=value["created_at"],
            wrapped_at=value["wrapped_at"],
        )


@dataclass(frozen=True, slots=True)
class Rotation:
    """What ``RegistryKeys.rotate`` did: registries re-wrapped, and those already under the current key."""

    rewrapped: tuple[str, ...]
    current: tuple[str, ...]
    master_key_id: str


class RegistryKeys:
    """The data keys of every registry, from the key file at ``path``. Thread-safe; no I/O in ``__init__``.

    ``master`` None (no ``GRIDWATCH_DATA_KEY``): shredding and listing still work (they need no key);
    sealing or opening raises ``MasterKeyMissingError`` saying how to set one.
    """

    def __init__(self, master: Keyring | None, path: Path) -> None:
        self._master = master
        self._path = path
        self._lock = threading.Lock()
        self._wrapped: dict[str, WrappedKey] = {}
        self._keyrings: dict[str, Keyring] = {}
        self._file_state: tuple[int, int, int] | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def master(self) -> Keyring | None:
        return self._master

    def keyring(self, registry: str, *, create: bool = False) -> Keyring:
        """The keyring sealing and opening ``registry``'s objects.

        ``create``: make (and store, wrapped) a data key when the registry has none yet (to seal);
        otherwise a registry without one raises ``RegistryKeyMissingError`` (shredded).
        """
        master = self._require_master(f"the registry {registry!r} (templates are encrypted at rest)")
        with self._lock:
            self._refresh()
            ring = self._keyrings.get(registry)
            if ring is not None:
                return ring
            wrapped = self._wrapped.get(registry)
            if wrapped is None:
                if not create:
                    raise RegistryKeyMissingError(
                        f"registry {registry!r} has no data key (it was shredded): its objects cannot be opened"
                    )
                wrapped = self._create(master, registry)
            ring = Keyring.from_keys([master.unwrap(wrapped.wrapped, registry=registry)])
            self._keyrings[registry] = ring
            return ring

    def wrapped_keys(self) -> dict[str, WrappedKey]:
        """Every registry's wrapped key as the file holds it now (no master key needed)."""
        with self._lock:
            self._refresh()
            return dict(self._wrapped)

    def shred(self, registry: str) -> WrappedKey | None:
        """Destroys ``registry``'s wrapped key (returns it, None if there was none). Needs no master key."""
        with self._lock, self._locked():
            keys = self._read()
            gone = keys.pop(registry, None)
            if gone is not None:
                self._write(keys)
            self._keyrings.pop(registry, None)
            self._adopt(keys)
            return gone

    def rotate(self) -> Rotation:
        """Re-wraps every data key under the current master key (the old one must be in ``GRIDWATCH_DATA_KEYS_OLD``).

        Raises ``DecryptError`` naming the registry whose key no configured master key opens; nothing
        is written then.
        """
        master = self._require_master("key rotation")
        now = _now()
        with self._lock, self._locked():
            keys = self._read()
            rewrapped, current = [], []
            for registry, wrapped in sorted(keys.items()):
                if wrapped.master_key_id == master.key_id:
                    current.append(registry)
                    continue
                try:
                    data_key = master.unwrap(wrapped.wrapped, registry=registry)
                except DecryptError as exc:
                    raise DecryptError(
                        f"the data key of registry {registry!r} does not open: {exc}; nothing was rotated"
                    ) from None
                keys[registry] = WrappedKey(
                    registry,
                    wrapped.key_id,
                    master.key_id,
                    master.wrap(data_key, registry=registry),
                    wrapped.created_at,
                    now,
                )
                rewrapped.append(registry)
            if rewrapped:
                self._write(keys)
            self._adopt(keys)
            return Rotation(tuple(rewrapped), tuple(current), master.key_id)

    # --- the file ---------------------------------------------------------------------------------

    def _require_master(self, what: str) -> Keyring:
        if self._master is None:
            raise master_key_missing(what)
        return self._master

    def _create(self, master: Keyring, registry: str) -> WrappedKey:
        with self._locked():
            keys = self._read()  # another process may have made it meanwhile
            wrapped = keys.get(registry)
            if wrapped is None:
                data_key = new_data_key()
                now = _now()
                wrapped = WrappedKey(
                    registry, key_id(data_key).hex(), master.key_id, master.wrap(data_key, registry=registry), now, now
                )
                keys[registry] = wrapped
                self._write(keys)
            self._adopt(keys)
            return wrapped

    def _refresh(self) -> None:
        """Re-reads the file when another process (or another object) changed it."""
        state = self._stat()
        if state is not None and state == self._file_state:
            return
        self._adopt(self._read())

    def _adopt(self, keys: dict[str, WrappedKey]) -> None:
        # An unwrapped key is dropped when its registry's wrapped key is gone or replaced (shred, re-create).
        for registry in list(self._keyrings):
            now = keys.get(registry)
            before = self._wrapped.get(registry)
            if now is None or before is None or now.key_id != before.key_id:
                del self._keyrings[registry]
        self._wrapped = keys
        self._file_state = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = self._path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def _read(self) -> dict[str, WrappedKey]:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            document = json.loads(text)
            if document.get("version") != KEY_FILE_VERSION:
                raise ValueError(f"unknown version {document.get('version')!r}")
            return {name: WrappedKey.from_json(name, value) for name, value in document["registries"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataKeyError(f"the registry key file {self._path} is unreadable ({exc})") from None

    def _write(self, keys: dict[str, WrappedKey]) -> None:
        document = {
            "version": KEY_FILE_VERSION,
            "registries": {name: keys[name].to_json() for name in sorted(keys)},
        }
        temporary = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._path)
        _fsync_dir(self._path.parent)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock across processes for a read-change-write of the key file."""
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._path.with_name(self._path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "DATA_KEY_ENV",
    "OLD_DATA_KEYS_ENV",
    "MasterKeyMissingError",
    "RegistryKeyMissingError",
    "RegistryKeys",
    "Rotation",
    "WrappedKey",
    "master_key_missing",
    "template_aad",
]
