from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import TansuBroker


@pytest.fixture
def kafka() -> Iterator[TansuBroker]:
    with TansuBroker() as broker:
        yield broker
