from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gridwatch.console.rig import ConsoleRig


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleRig]:
    rig = ConsoleRig(tmp_path)
    yield rig
    rig.close()
