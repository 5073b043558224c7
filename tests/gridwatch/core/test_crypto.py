"""Envelope encryption: what opens, what does not, and the errors a wrong key setting gives."""

from __future__ import annotations

import base64
import os

import pytest

from gridwatch.core.crypto import (
    DATA_KEY_ENV,
    HEADER_BYTES,
    OLD_DATA_KEYS_ENV,
    DataKeyError,
    DecryptError,
    Keyring,
    associated_data,
    new_data_key,
)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def key() -> bytes:
    return new_data_key()


@pytest.fixture
def ring(key: bytes) -> Keyring:
    return Keyring(key)


AAD = associated_data("face", "wanted", "p-1", "obj-1")


def test_round_trip(ring: Keyring) -> None:
    blob = ring.seal(b"hello", AAD)
    assert ring.open(blob, AAD) == b"hello"
    assert b"hello" not in blob


def test_wrong_key_fails(ring: Keyring) -> None:
    blob = ring.seal(b"hello", AAD)
    other = Keyring(new_data_key())
    with pytest.raises(DecryptError, match="not configured"):
        other.open(blob, AAD)


def test_wrong_key_with_the_same_key_id_fails(ring: Keyring) -> None:
    # The key id only picks a key; a forged id in front of another key's ciphertext still fails.
    blob = ring.seal(b"hello", AAD)
    other = Keyring(new_data_key())
    forged = blob[:1] + bytes.fromhex(other.key_id) + blob[1 + 8 :]
    with pytest.raises(DecryptError, match="does not authenticate"):
        other.open(forged, AAD)


def test_ciphertexts_swapped_between_persons_fail(ring: Keyring) -> None:
    aad_a = associated_data("face", "wanted", "person-a", "obj-a")
    aad_b = associated_data("face", "wanted", "person-b", "obj-b")
    blob_a, blob_b = ring.seal(b"face of a", aad_a), ring.seal(b"face of b", aad_b)
    with pytest.raises(DecryptError):
        ring.open(blob_a, aad_b)
    with pytest.raises(DecryptError):
        ring.open(blob_b, aad_a)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (("face", "r", "p", "o"), ("frame", "r", "p", "o")),
        (("face", "r", "p", "o"), ("face", "s", "p", "o")),
        (("face", "r", "p", "o"), ("face", "r", "p", "x")),
        # Length prefixes: moving a character across a field boundary is a different binding.
        (("face", "ab", "c", "o"), ("face", "a", "bc", "o")),
    ],
)
def test_associated_data_is_unambiguous(left: tuple[str, str, str, str], right: tuple[str, str, str, str]) -> None:
    assert associated_data(*left) != associated_data(*right)


def test_every_flipped_byte_fails(ring: Keyring) -> None:
    blob = ring.seal(b"some evidence bytes", AAD)
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptError):
            ring.open(bytes(tampered), AAD)


def test_truncated_blob_fails(ring: Keyring) -> None:
    with pytest.raises(DecryptError, match="truncated"):
        ring.open(ring.seal(b"x", AAD)[:HEADER_BYTES], AAD)


def test_unknown_key_id_names_the_missing_key_and_the_remedy(ring: Keyring) -> None:
    blob = Keyring(new_data_key()).seal(b"x", AAD)
    with pytest.raises(DecryptError) as raised:
        ring.open(blob, AAD)
    message = str(raised.value)
    assert blob[1:9].hex() in message
    assert OLD_DATA_KEYS_ENV in message


def test_old_key_still_opens_after_rotation() -> None:
    old, new = new_data_key(), new_data_key()
    before = Keyring.from_env({DATA_KEY_ENV: b64(old)})
    assert before is not None
    blob = before.seal(b"kept", AAD)
    after = Keyring.from_env({DATA_KEY_ENV: b64(new), OLD_DATA_KEYS_ENV: f"{b64(new_data_key())}, {b64(old)}"})
    assert after is not None
    assert after.open(blob, AAD) == b"kept"
    # New objects are sealed with the new key only.
    assert after.seal(b"fresh", AAD)[1:9].hex() == after.key_id != before.key_id
    with pytest.raises(DecryptError):
        before.open(after.seal(b"fresh", AAD), AAD)


def test_no_key_in_the_environment_is_no_keyring() -> None:
    assert Keyring.from_env({}) is None
    assert Keyring.from_env({DATA_KEY_ENV: "  "}) is None


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({DATA_KEY_ENV: "not base64!"}, "not valid base64"),
        ({DATA_KEY_ENV: b64(os.urandom(16))}, "exactly 32 random bytes"),
        ({DATA_KEY_ENV: b64(os.urandom(33))}, "exactly 32 random bytes"),
        ({DATA_KEY_ENV: "correct horse battery staple"}, "base64"),
        ({DATA_KEY_ENV: b64(os.urandom(32)), OLD_DATA_KEYS_ENV: "short"}, OLD_DATA_KEYS_ENV),
        ({OLD_DATA_KEYS_ENV: b64(os.urandom(32))}, f"{DATA_KEY_ENV} is not"),
    ],
)
def test_bad_environment_values_say_how_to_make_a_key(env: dict[str, str], match: str) -> None:
    with pytest.raises(DataKeyError, match=match) as raised:
        Keyring.from_env(env)
    assert "head -c 32 /dev/urandom | base64" in str(raised.value)


def test_error_does_not_echo_the_key() -> None:
    bad = b64(os.urandom(31))
    with pytest.raises(DataKeyError) as raised:
        Keyring.from_env({DATA_KEY_ENV: bad})
    assert bad not in str(raised.value)


def test_nonces_differ_for_the_same_plaintext(ring: Keyring) -> None:
    blobs = {ring.seal(b"same", AAD) for _ in range(50)}
    assert len(blobs) == 50
    assert len({blob[9:HEADER_BYTES] for blob in blobs}) == 50


def test_wrapped_data_key_unwraps_only_for_its_registry(ring: Keyring) -> None:
    data_key = new_data_key()
    wrapped = ring.wrap(data_key, registry="wanted")
    assert data_key not in wrapped
    assert ring.unwrap(wrapped, registry="wanted") == data_key
    with pytest.raises(DecryptError):
        ring.unwrap(wrapped, registry="missing")
    registry_ring = Keyring.from_keys([ring.unwrap(wrapped, registry="wanted")])
    assert registry_ring.open(registry_ring.seal(b"t", AAD), AAD) == b"t"
    with pytest.raises(DecryptError):
        ring.open(registry_ring.seal(b"t", AAD), AAD)
