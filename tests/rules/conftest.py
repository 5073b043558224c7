from __future__ import annotations

import pytest

from gridwatch.core.db import Database
from tests.support.db import Databases


@pytest.fixture
def database(databases: Databases) -> Database:
    """The rule state's database, on SQLite and on PostgreSQL."""
    return databases()
