"""The scale-out tests' own Apache Kafka broker.

gridwatch's transport topics have fixed names (``gridwatch.sightings`` ...): on the session's shared broker
another test may have created them first, with one partition, and then two rule workers cannot split them.
These tests take a broker of their own for the package, where the topics are made as their config declares.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kafka import KafkaBroker


@pytest.fixture(scope="package")
def kafka() -> Iterator[KafkaBroker]:
    with KafkaBroker() as broker:
        yield broker
