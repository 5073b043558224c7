"""The interfaces between the stages, in one place; drivers live behind them.

Every long-lived component has explicit async ``start()`` / ``stop()``; ``stop()`` is safe to
call twice. Value types that cross a stage boundary are defined here too, except the face
result type (``gridwatch.core.faces.Faces``) and the event contracts (``gridwatch.core.events``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from gridwatch.core.events import Alert, CaseState, Notification, Outcome, Sighting, StrangerAttempt
    from gridwatch.core.faces import Faces
    from gridwatch.core.persons import PersonConditions


@runtime_checkable
class Lifecycle(Protocol):
    """A component with an explicit lifecycle. ``stop()`` must be idempotent."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded video frame.

    ``image`` is BGR ``uint8`` of shape ``(H, W, 3)``; it lives in memory only.
    ``captured_at`` is UTC: the wall-clock time the frame was read (RTSP) or its paced time (file).
    """

    source_id: str
    seq: int
    captured_at: dt.datetime
    image: npt.NDArray[np.uint8]


class SourceState(enum.StrEnum):
    STARTING = "starting"
    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


@dataclass(slots=True)
class SourceStatus:
    """Health of one ingest source (camera or gate), as shown in the status output."""

    source_id: str
    kind: str
    state: SourceState = SourceState.STARTING
    last_frame_at: dt.datetime | None = None
    last_error: str | None = None
    reconnects: int = 0
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    fps_in: float = 0.0
    fps_out: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


class FrameReader(Protocol):
    """A blocking reader of one open stream (run in a worker thread by the camera worker)."""

    def read(self) -> npt.NDArray[np.uint8] | None:
        """The next frame, or ``None`` at the end of the stream / on a disconnect."""
        ...

    def close(self) -> None: ...


class FrameSource(Protocol):
    """Opens a stream. Raises ``OSError`` (or a subclass) when it cannot be opened."""

    @property
    def display_url(self) -> str:
        """Where frames come from, with any credentials masked; safe to log."""
        ...

    @property
    def nominal_fps(self) -> float | None:
        """The stream's own frame rate when known."""
        ...

    def open(self) -> FrameReader: ...


class FaceAnalyzer(Protocol):
    """Detector + embedder (one model pack)."""

    @property
    def model_id(self) -> str:
        """Pack name and file hash, recorded on every sighting."""
        ...

    @property
    def embedding_dim(self) -> int: ...

    def detect(self, image: npt.NDArray[np.uint8], *, input_size: int | None = None) -> Faces:
        """Boxes, scores and landmarks of the faces in a BGR image; no embeddings. ``input_size``: the
        detector's input side for this image (default: the model config's)."""
        ...

    def embed(self, image: npt.NDArray[np.uint8], faces: Faces) -> Faces:
        """The same faces with L2-normalised embeddings filled in."""
        ...


@dataclass(frozen=True, slots=True)
class Match:
    """The best identity for one probe in one registry."""

    registry: str
    person_id: str
    similarity: float
    second_similarity: float | None


class FaceIndex(Protocol):
    """A searchable set of normalised embeddings, each labelled with an int64 id."""

    def __len__(self) -> int: ...

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None: ...

    def remove(self, ids: npt.NDArray[np.int64]) -> int: ...

    def search(self, vectors: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Similarities and ids, shape ``(n, k)`` each; missing neighbours have id -1."""
        ...


class PersonDirectory(Protocol):
    """Per-person conditions and enrolment times of registry entries, for rules (no names, no embeddings).

    Implemented by the registry store: one query per call. Blocking (a database read): an async caller
    runs it in a worker thread. A change (enrolment, update, erasure) moves the store's
    ``data_version()``, so a caller may cache the answers until then.
    """

    def conditions(self, person_id: str) -> PersonConditions | None:
        """The person's conditions; ``None`` if no such person (erased meanwhile)."""
        ...

    def persons(self, registries: Collection[str]) -> list[PersonConditions]:
        """Everyone enrolled in these registries, in order of registry, enrolment time and id."""
        ...


class PersonErasure(Protocol):
    """What else holds rows about a person, told when the person is erased (the rule state's cooldowns,
    timers and passes). Blocking (a database write); called by the registry store after the erasure commits.
    """

    def forget_persons(self, person_ids: Sequence[str]) -> None:
        """Delete every row kept about these persons (nothing if there is none)."""
        ...


class SightingSink(Protocol):
    """Output port of recognition, input of the rules stage: matched sightings.

    Wired to a transport publisher (``gridwatch.core.transport.SIGHTINGS``): an in-process queue or
    the ``gridwatch.sightings`` topic, keyed by person id.
    """

    async def put(self, sighting: Sighting) -> None: ...


class StrangerAttemptSink(Protocol):
    """Output port of recognition, input of the rules stage: unknown faces and refusals at gates.

    Wired to a transport publisher (``gridwatch.core.transport.STRANGER_ATTEMPTS``): an in-process
    queue or the ``gridwatch.stranger-attempts`` topic, keyed by source id. An attempt carries no
    biometric data: the look-alike label it may carry means something only in recognition's memory.
    """

    async def put(self, attempt: StrangerAttempt) -> None: ...


class AlertSink(Protocol):
    """Output port of the rules stage, input of the notifier (and soon routing): alerts.

    ``put`` returns once the alert is durable (in the outbox) or raises; the rules stage then
    releases the cooldown the alert took.
    """

    async def put(self, alert: Alert) -> None: ...


class DeliveryChannel(Protocol):
    """One delivery channel for alerts (console, JSONL file, Kafka, ...)."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def deliver(self, alert: Alert) -> None:
        """Deliver or raise; the outbox retries what raised, except ``RecordRejectedError`` (parked)."""
        ...


class RecordRejectedError(Exception):
    """A sink refuses this one alert for good (e.g. a Kafka record larger than the topic allows).

    Raised by ``DeliveryChannel.deliver`` only when retrying the same alert cannot succeed while other
    alerts still can: the notifier then parks the alert for that sink and goes on with the next one.
    A sink that is down, or misconfigured for every alert, raises anything else and is retried.
    """


class NotificationChannel(Protocol):
    """One way of reaching staff (Kafka push topic, webhook, WeCom or DingTalk robot, console)."""

    name: str  # the channel id of `channels:`

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, notification: Notification) -> None:
        """Deliver or raise; the notification outbox retries what raised, except ``RecordRejectedError``."""
        ...


class CaseError(Exception):
    """A case operation that cannot be done; ``status`` is the HTTP status it maps to."""

    status = 400


class CaseNotFoundError(CaseError):
    """No such alert, or not one the caller may see (the same answer, so nothing leaks)."""

    status = 404


class CaseConflictError(CaseError):
    """The case is not in a state that allows this step (already resolved; confirmed twice by one person)."""

    status = 409


@dataclass(frozen=True, slots=True)
class CaseView:
    """What a caller learns about a case after a step."""

    alert_id: str
    state: CaseState
    level: int
    acked_by: str | None = None
    confirmations: int = 0
    changed: bool = True  # False: the step had been done already (an acknowledgement repeated)


class CaseDesk(Protocol):
    """The handling steps of cases; ``by`` is a staff id (or an operator), ``channel`` where the step came from."""

    async def acknowledge(self, alert_id: str, by: str, *, channel: str, comment: str | None = None) -> CaseView: ...

    async def confirm(self, alert_id: str, by: str, *, channel: str) -> CaseView: ...

    async def resolve(
        self, alert_id: str, by: str, outcome: Outcome, *, channel: str, comment: str | None = None
    ) -> CaseView: ...

    def is_staff(self, staff_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class FaceRect:
    """Where a gate terminal says the face is in its snapshot, normalised to 0..1 of the picture's width
    and height (top-left corner ``x, y``; Hikvision ISAPI's ``FaceRect``). Recognition uses the face
    whose box centre lies inside it when the snapshot shows several."""

    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        if not all(0.0 <= v <= 1.0 for v in (self.x, self.y, self.width, self.height)):
            raise ValueError("a FaceRect is normalised: x, y, width and height lie in 0..1")
        if self.width <= 0.0 or self.height <= 0.0:
            raise ValueError("a FaceRect has a width and a height")

    def pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The rectangle ``x1, y1, x2, y2`` in pixels of a ``width`` x ``height`` picture (clipped to it)."""
        return (
            self.x * width,
            self.y * height,
            min(self.x + self.width, 1.0) * width,
            min(self.y + self.height, 1.0) * height,
        )


@dataclass(frozen=True, slots=True)
class GateEvent:
    """One access event of a gate terminal, in every dialect's terms.

    The face snapshot lives in memory only: it goes through recognition and is dropped. Device-side
    person, card and employee numbers never leave the process either (they are not on sightings).
    ``verdict`` is the gate's own decision when the dialect reports one (ISAPI face authentication
    passed or failed, Dahua ``Status``); gridwatch never changes it, it only counts refusals.
    """

    gate_id: str
    received_at: dt.datetime  # UTC, when gridwatch got it
    device_time: dt.datetime  # timezone-aware, the device's own clock
    door: str | None = None
    direction: Literal["in", "out"] | None = None
    serial: int | None = None  # serialNo / RecNo / sequence_no: orders events, reveals gaps
    event_type: str = "access"  # the dialect's event name (e.g. "5/75" for ISAPI major/minor)
    verify_mode: str | None = None
    device_person_id: str | None = field(default=None, repr=False)
    card_no: str | None = field(default=None, repr=False)
    face_image: bytes | None = field(default=None, repr=False)  # JPEG bytes; memory only
    verdict: Literal["granted", "denied"] | None = None  # the gate's own decision; None = not reported
    face_rect: FaceRect | None = None  # where the terminal saw the face in ``face_image``, when it says

    @property
    def reaches_recognition(self) -> bool:
        """A face to recognise, or a refusal: the gate's own "no" is a stranger attempt even without a face."""
        return self.face_image is not None or self.verdict == "denied"

    @property
    def event_id(self) -> str | None:
        """The device's own id of this event (its serial), as stranger alerts name it."""
        return None if self.serial is None else str(self.serial)


class GateBusy(Exception):
    """Recognition did not take a gate event (its gate's queue is full, it waited too long, or the
    service is stopping): nothing of it was kept. A pushing device is told to send it again later
    (HTTP 503 with ``Retry-After``, or no MQTT acknowledgement); a stream can only count it lost."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


# Returns once the event was recognised and its sightings (if any) are durable — any alert they
# make is in the outbox, or the sightings are acknowledged by Kafka; raises ``GateBusy`` when the
# event was not taken, or what processing raised. Only after it returned may a device be told
# "accepted".
GateEventHandler = Callable[[GateEvent], Awaitable[None]]


class SerialWatermarks(Protocol):
    """Per stream gate, the serial up to which every event was handed over, kept across restarts.

    Blocking (database) calls: call them off the event loop.
    """

    def load(self, gate_id: str) -> int | None:
        """The gate's watermark, or ``None`` when none was saved."""
        ...

    def save(self, gate_id: str, serial: int) -> None:
        """Replace the gate's watermark."""
        ...


class GateSource(Protocol):
    """A gate terminal's event source (``ingest.gates``): it calls the handler for every face event
    and every refusal (``GateEvent.reaches_recognition``).

    Push sources (HTTP, MQTT) and pull sources (long-poll streams) look the same from outside.
    Push sources await the handler before they answer the device, so an event is acknowledged only
    once it is durable; streams cannot be asked to resend, so they hand events on without waiting
    (the handler's queue is bounded, and what it refuses is counted as dropped).
    """

    @property
    def status(self) -> SourceStatus: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
