"""The master key of the test session and the registries' data keys built on it.

Templates are sealed at rest, so every test runs with ``GRIDWATCH_DATA_KEY`` set (``tests/conftest.py``)
unless it removes it; a store built directly takes ``site_keys(tmp_path)``. Two stores given the
same directory stand for two processes of one site: they share the key file.
"""

from __future__ import annotations

import base64
from pathlib import Path

from gridwatch.core.crypto import Keyring, new_data_key
from gridwatch.core.registry_keys import RegistryKeys

TEST_MASTER_KEY = new_data_key()
TEST_MASTER_KEY_B64 = base64.b64encode(TEST_MASTER_KEY).decode("ascii")


def site_keys(directory: Path, master: bytes | None = TEST_MASTER_KEY) -> RegistryKeys:
    """The registry keys of a site whose data directory is ``directory`` (the key file under ``keys/``)."""
    return RegistryKeys(None if master is None else Keyring(master), directory / "keys" / "registry-keys.json")
