"""Envelope encryption of what gridwatch keeps at rest: evidence images now, templates later.

Every object is sealed with AES-256-GCM under a random 96-bit nonce, with associated data that
binds it to what it is (`associated_data`: kind ‖ registry ‖ person ‖ object), so a ciphertext
moved to another person's row, another registry or another object does not open. A sealed blob
is self-describing::

    version (1 byte) ‖ key id (8 bytes) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)

The master key comes from ``GRIDWATCH_DATA_KEY`` (base64 of exactly 32 random bytes, made with
``head -c 32 /dev/urandom | base64``). Its key id is derived from the key itself, so rotation is:
put the new key in ``GRIDWATCH_DATA_KEY`` and the old one in ``GRIDWATCH_DATA_KEYS_OLD``
(comma-separated); new objects are sealed with the new key, old ones still open.

Crypto-shredding (issue 14) builds on the same two operations: a registry gets its own random
32-byte data key, stored only wrapped (``master.wrap(key, registry=R)``); its objects are sealed
by ``Keyring.from_keys([master.unwrap(wrapped, registry=R)])``. Deleting the wrapped key makes
every copy of the registry's objects unreadable, backups included; rotating the master key
re-wraps the data keys without touching the objects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DATA_KEY_ENV = "GRIDWATCH_DATA_KEY"
OLD_DATA_KEYS_ENV = "GRIDWATCH_DATA_KEYS_OLD"
KEY_BYTES = 32
FORMAT_VERSION = 1
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = 1 + KEY_ID_BYTES + NONCE_BYTES
# Domain separation: a key id is not a plain hash of the key, so publishing it says nothing usable.
_KEY_ID_LABEL = b"gridwatch key id v1\x00"
_WRAPPED_KEY_KIND = "data-key"
_HOW_TO_MAKE_ONE = "make one with: head -c 32 /dev/urandom | base64"


class DataKeyError(ValueError):
    """A configured data key is unusable (not base64, wrong length); the message says how to make one."""


class DecryptError(Exception):
    """A sealed object does not open: wrong or unknown key, another object's associated data, a changed byte."""


def new_data_key() -> bytes:
    """A fresh random 32-byte key (for per-registry data keys)."""
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> bytes:
    """The 8-byte id stored with every object sealed by ``key``."""
    return hashlib.sha256(_KEY_ID_LABEL + key).digest()[:KEY_ID_BYTES]


def associated_data(kind: str, registry: str, person_id: str, object_id: str) -> bytes:
    """What a sealed object is bound to; each field length-prefixed, so no two tuples encode alike."""
    parts = [part.encode("utf-8") for part in (kind, registry, person_id, object_id)]
    return b"gridwatch aad v1" + b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _decode_key(text: str, *, variable: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise DataKeyError(f"{variable} is not valid base64; {_HOW_TO_MAKE_ONE}") from None
    if len(key) != KEY_BYTES:
        raise DataKeyError(
            f"{variable} must be base64 of exactly {KEY_BYTES} random bytes (it decodes to {len(key)}); "
            f"{_HOW_TO_MAKE_ONE}"
        )
    return key


class Keyring:
    """One key that seals and any number of older keys that still open. No I/O; thread-safe."""

    def __init__(self, primary: bytes, older: Iterable[bytes] = ()) -> None:
        for key in (primary, *older):
            if len(key) != KEY_BYTES:
                raise DataKeyError(f"a data key must be exactly {KEY_BYTES} bytes; {_HOW_TO_MAKE_ONE}")
        self._primary_id = key_id(primary)
        self._ciphers: dict[bytes, AESGCM] = {}
        for key in (*older, primary):
            self._ciphers[key_id(key)] = AESGCM(key)

    @classmethod
    def from_keys(cls, keys: Iterable[bytes]) -> Keyring:
        """The first key seals, all open (e.g. a registry's unwrapped data key)."""
        primary, *older = list(keys) or [b""]
        return cls(primary, older)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Keyring | None:
        """The keyring of ``GRIDWATCH_DATA_KEY`` (+ ``GRIDWATCH_DATA_KEYS_OLD``), None when no key is set.

        Raises ``DataKeyError`` for a value that is set but unusable, and for old keys without a current one.
        """
        env = os.environ if env is None else env
        current = env.get(DATA_KEY_ENV, "").strip()
        old_text = env.get(OLD_DATA_KEYS_ENV, "").strip()
        old = [_decode_key(part, variable=OLD_DATA_KEYS_ENV) for part in old_text.split(",") if part.strip()]
        if not current:
            if old:
                raise DataKeyError(
                    f"{OLD_DATA_KEYS_ENV} is set but {DATA_KEY_ENV} is not: old keys only open, "
                    f"a current key seals; {_HOW_TO_MAKE_ONE}"
                )
            return None
        return cls(_decode_key(current, variable=DATA_KEY_ENV), old)

    @property
    def key_id(self) -> str:
        """Hex id of the sealing key (stored beside objects so rotation can tell what still needs it)."""
        return self._primary_id.hex()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypts ``plaintext`` bound to ``aad`` under the current key and a fresh random nonce."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._primary_id].encrypt(nonce, plaintext, aad)
        return bytes([FORMAT_VERSION]) + self._primary_id + nonce + sealed

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """The plaintext of a sealed ``blob`` if it was sealed with ``aad`` by a key of this ring.

        Raises ``DecryptError`` (never a cryptography exception) otherwise.
        """
        if len(blob) < HEADER_BYTES + TAG_BYTES:
            raise DecryptError("sealed object is truncated")
        if blob[0] != FORMAT_VERSION:
            raise DecryptError(f"sealed object has unknown format version {blob[0]}")
        blob_key_id = blob[1 : 1 + KEY_ID_BYTES]
        cipher = self._ciphers.get(blob_key_id)
        if cipher is None:
            raise DecryptError(
                f"sealed object needs key id {blob_key_id.hex()}, which is not configured "
                f"(current key id {self.key_id}; after a rotation put the old key in {OLD_DATA_KEYS_ENV})"
            )
        nonce = blob[1 + KEY_ID_BYTES : HEADER_BYTES]
        try:
            return cipher.decrypt(nonce, blob[HEADER_BYTES:], aad)
        except InvalidTag:
            raise DecryptError(
                "sealed object does not authenticate: it was changed, or belongs to another object, person or registry"
            ) from None

    def wrap(self, data_key: bytes, *, registry: str) -> bytes:
        """``data_key`` sealed for storage, bound to ``registry`` (a wrapped key of R never unwraps for S)."""
        if len(data_key) != KEY_BYTES:
            raise DataKeyError(f"a data key must be exactly {KEY_BYTES} bytes")
        return self.seal(data_key, associated_data(_WRAPPED_KEY_KIND, registry, "", ""))

    def unwrap(self, wrapped: bytes, *, registry: str) -> bytes:
        """The data key that ``wrap`` sealed for ``registry``; raises ``DecryptError``."""
        return self.open(wrapped, associated_data(_WRAPPED_KEY_KIND, registry, "", ""))
