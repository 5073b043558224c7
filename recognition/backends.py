"""Choosing the model pack by ``model.backend``: one ``FaceAnalyzer`` per pack family.

Each family has its own default decision threshold: cosine similarities of two recognisers are
on different scales, so a threshold never carries over from one pack to the other.
"""

from __future__ import annotations

from pathlib import Path

from gridwatch.core.config.model import ModelConfig
from gridwatch.core.config.registries import RegistryConfig
from recognition.analyzer import InsightFaceAnalyzer
from recognition.modelpack import ModelPack, resolve_model_pack
from recognition.opencv_zoo import DEFAULT_THRESHOLD as OPENCV_ZOO_THRESHOLD
from recognition.opencv_zoo import OpenCVZooAnalyzer, resolve_zoo_pack

Analyzer = InsightFaceAnalyzer | OpenCVZooAnalyzer

# The insightface pack's default is the registry default (different people ≤ 0.33, the same
# person ≈ 0.6 on the shared photos).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "insightface": float(RegistryConfig.model_fields["threshold"].default),
    "opencv_zoo": OPENCV_ZOO_THRESHOLD,
}


def build_analyzer(config: ModelConfig, *, config_dir: Path | None = None) -> Analyzer:
    """The analyzer of the configured pack (not loaded yet); raises ``ModelPackError`` if it is missing
    or does not match ``model.sha256``."""
    pack = resolve_pack(config, config_dir=config_dir)
    if config.backend == "opencv_zoo":
        return OpenCVZooAnalyzer(pack, config)
    return InsightFaceAnalyzer(pack, config)


def resolve_pack(config: ModelConfig, *, config_dir: Path | None = None) -> ModelPack:
    """The configured backend's pack on disk, checked against ``model.sha256`` (raises ``ModelPackError``)."""
    if config.backend == "opencv_zoo":
        return resolve_zoo_pack(config, config_dir=config_dir)
    return resolve_model_pack(config, config_dir=config_dir)


def default_threshold(config: ModelConfig) -> float:
    return DEFAULT_THRESHOLDS[config.backend]
