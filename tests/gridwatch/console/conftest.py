from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gridwatch.console.rig import ConsoleRig


@pytest.fixture
def console(tmp_path: Path, database_url: str) -> Iterator[ConsoleRig]:
    """A console on SQLite and on PostgreSQL."""
    rig = ConsoleRig(tmp_path, database_url=database_url)
    yield rig
    rig.close()
