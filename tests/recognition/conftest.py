from __future__ import annotations

import pytest

from recognition.analyzer import InsightFaceAnalyzer
from tests.support.models import shared_analyzer


@pytest.fixture(scope="session")
def analyzer() -> InsightFaceAnalyzer:
    return shared_analyzer()
