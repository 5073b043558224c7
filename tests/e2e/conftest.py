"""Fixtures of the end-to-end tests. The Kafka broker (``kafka``) is the session one of ``tests/conftest.py``."""

from __future__ import annotations

import pytest

from tests.support.kafka import unique_topic


@pytest.fixture
def kafka_topic(request: pytest.FixtureRequest) -> str:
    """A topic name of this test alone (the session broker is shared; its topics outlive the test)."""
    return unique_topic(request.node.name)
