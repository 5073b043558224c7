"""Face detection (SCRFD) and embedding (ArcFace) through insightface on onnxruntime."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.model import ModelConfig
from gridwatch.core.faces import Faces
from recognition.modelpack import ModelPack, cpu_session_options

ARCFACE_INPUT = 112


class InsightFaceAnalyzer:
    """The ``FaceAnalyzer`` of one model pack. Sessions are created in ``load()``, not at import.

    Calls are serialised by a lock: onnxruntime sessions are thread-safe, but two inference
    calls competing for 2 cores only slow each other down.
    """

    def __init__(self, pack: ModelPack, config: ModelConfig) -> None:
        self._pack = pack
        self._config = config
        self._detector: Any = None
        self._recognizer: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._pack.model_id

    @property
    def pack(self) -> ModelPack:
        return self._pack

    @property
    def embedding_dim(self) -> int:
        return 512

    def load(self) -> None:
        if self._detector is not None:
            return
        import onnxruntime as ort
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX
        from insightface.model_zoo.scrfd import SCRFD

        options = cpu_session_options(self._config.threads)
        providers = ["CPUExecutionProvider"]
        det_session = ort.InferenceSession(str(self._pack.detector), sess_options=options, providers=providers)
        rec_session = ort.InferenceSession(str(self._pack.recognizer), sess_options=options, providers=providers)
        size = self._config.detector_input_size
        detector = SCRFD(str(self._pack.detector), session=det_session)
        detector.prepare(-1, input_size=(size, size), det_thresh=self._config.detector_threshold)
        recognizer = ArcFaceONNX(str(self._pack.recognizer), session=rec_session)
        self._detector, self._recognizer = detector, recognizer

    def detect(self, image: npt.NDArray[np.uint8], *, input_size: int | None = None) -> Faces:
        """``input_size``: the detector's input side for this image (a camera's ``detector_size``)."""
        self.load()
        size = input_size or self._config.detector_input_size
        with self._lock:
            boxes, keypoints = self._detector.detect(image, input_size=(size, size))
        return Faces.from_insightface(boxes, keypoints)

    def embed(self, image: npt.NDArray[np.uint8], faces: Faces) -> Faces:
        self.load()
        if len(faces) == 0:
            return faces.with_embeddings(np.empty((0, self.embedding_dim), np.float32))
        from insightface.utils import face_align

        with warnings.catch_warnings():
            # scikit-image 0.26 deprecates an API insightface's aligner still uses.
            warnings.simplefilter("ignore", FutureWarning)
            crops = [
                face_align.norm_crop(image, landmark=faces.landmarks[i], image_size=ARCFACE_INPUT)
                for i in range(len(faces))
            ]
        with self._lock:
            if _batched(self._recognizer.input_shape):
                vectors = np.asarray(self._recognizer.get_feat(crops), dtype=np.float32)
            else:
                vectors = np.concatenate([self._recognizer.get_feat(crop) for crop in crops]).astype(np.float32)
        del crops  # aligned crops are personal data: never kept beyond this call
        return faces.with_embeddings(normalize(vectors))


def _batched(input_shape: list[object]) -> bool:
    """Whether the recogniser takes several crops in one run (its batch dimension is not fixed)."""
    return not isinstance(input_shape[0], int) or input_shape[0] != 1


def normalize(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalized: npt.NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalized
