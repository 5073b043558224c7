"""The real face models, loaded once per test session (they are read-only)."""

from __future__ import annotations

from gridwatch.core.config.model import ModelConfig
from recognition.analyzer import InsightFaceAnalyzer
from recognition.modelpack import resolve_model_pack

_ANALYZER: InsightFaceAnalyzer | None = None


def shared_analyzer() -> InsightFaceAnalyzer:
    global _ANALYZER
    if _ANALYZER is None:
        config = ModelConfig()
        _ANALYZER = InsightFaceAnalyzer(resolve_model_pack(config), config)
        _ANALYZER.load()
    return _ANALYZER
