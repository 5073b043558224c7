"""MQTT face terminals: subscribe to the capture topic, hand each capture on, acknowledge it.

A terminal publishes one JSON capture per face event — ``device_no``, ``cap_time`` (ISO 8601 or
Unix seconds), ``sequence_no`` and a base64 JPEG under one of the common field names
(``face_picture``, ``face_image``, ``pic``, ``picture``, ``img``; a ``data:image/jpeg;base64,``
prefix is stripped) — and expects an acknowledgement on ``ack_topic``::

    {"device_no": "T1", "sequence_no": 9, "result": "ok"}
    {"device_no": "T1", "sequence_no": 9, "result": "rejected", "reason": "picture is not a JPEG"}

A capture is acknowledged ``ok`` only once it is durable (the handler returned: recognised, its
sightings stored or acknowledged by Kafka). When recognition is saturated (``GateBusy``) or fails,
no acknowledgement is sent: the dialect has no "busy" result, and terminals resend a capture whose
acknowledgement did not come. Captures are handled one at a time, in order. A repeated
``sequence_no`` that was taken is acknowledged again but handed on only once. A bad capture is
acknowledged as rejected, logged and counted; the subscription goes on. The connection is retried
forever with capped backoff.

Never logged: the picture (base64 or bytes) and the broker credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import re
from typing import Annotated

import aiomqtt
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from gridwatch.core.config.gates import MqttGateConfig
from gridwatch.core.interfaces import GateBusy, GateEvent, GateEventHandler, SourceStatus
from gridwatch.core.metrics import GATE_DUPLICATES
from ingest.backoff import Backoff
from ingest.gates.common import GateHealth, PayloadRejected, device_time, direction_for
from ingest.gates.images import check_jpeg

log = logging.getLogger(__name__)

PICTURE_FIELDS = ("face_picture", "face_image", "pic", "picture", "img")
DATA_URL_PREFIX = re.compile(r"^data:image/[a-z]+;base64,", re.IGNORECASE)
# Room for the JSON around the base64 picture (which is 4/3 of the JPEG's size).
JSON_OVERHEAD_BYTES = 64 * 1024
# Sequence numbers remembered per device to drop resent captures.
SEEN_PER_DEVICE = 1024
# Devices whose sequence numbers are remembered; the least recently heard one is forgotten first.
# ``device_no`` comes from the payload: without a bound, captures naming ever new devices grow
# the memory of a long-running service without end.
MAX_DEVICES = 1024
DEVICE_NO_PATTERN = r"^[^/+#\x00-\x1f]+$"
# Bounded, backtracking-free patterns: they run on payloads ``json`` could not load.
_DEVICE_NO_TEXT = re.compile(rb'"device_no"\s{0,8}:\s{0,8}"([0-9A-Za-z_.:-]{1,128})"')
_SEQUENCE_NO_TEXT = re.compile(rb'"sequence_no"\s{0,8}:\s{0,8}(\d{1,19})\b')
MILLISECONDS_ABOVE = 1e11
STOP_TIMEOUT_S = 5.0
UnixTime = Annotated[float, Field(ge=0.0, le=4_102_444_800.0, allow_inf_nan=False)]  # up to 2100-01-01
ACK_QOS = 1
SUBSCRIBE_QOS = 1


class MqttCapture(BaseModel):
    """The fields gridwatch uses from a terminal's capture; unknown fields are kept and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    device_no: str = Field(
        min_length=1,
        max_length=128,
        pattern=DEVICE_NO_PATTERN,
        description="The terminal's device number (no MQTT topic separators or wildcards: it may name a topic).",
    )
    sequence_no: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="The terminal's capture counter: drops resends."
    )
    cap_time: Annotated[str, Field(max_length=64)] | UnixTime | None = Field(
        default=None,
        description="Capture time: ISO 8601 (with or without offset) or Unix seconds (milliseconds accepted).",
    )
    picture: str | None = Field(
        default=None,
        validation_alias=AliasChoices(*PICTURE_FIELDS),
        repr=False,
        description="The face snapshot, base64 JPEG.",
    )
    door: str | None = Field(
        default=None,
        max_length=32,
        validation_alias=AliasChoices("door_no", "door", "channel_no"),
        description="Door or channel the capture is from, when the terminal has several.",
    )
    person_id: str | None = Field(
        default=None,
        max_length=128,
        validation_alias=AliasChoices("person_id", "user_id", "employee_no"),
        repr=False,
        description="The terminal's own person id, when it recognised someone.",
    )
    card_no: str | None = Field(default=None, max_length=128, repr=False, description="Card number, if any.")
    verify_mode: str | None = Field(default=None, max_length=64, description="How the terminal verified.")

    @field_validator("device_no", "door", "person_id", "card_no", mode="before")
    @classmethod
    def _number_as_text(cls, value: object) -> object:
        # Terminals send ids as numbers or strings; bool is an int in Python but not an id.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("cap_time", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be a time, not a boolean")
        # An int too large for a float would raise OverflowError, which pydantic does not turn into an error.
        if isinstance(value, int) and abs(value) > 2**63:
            raise ValueError("is out of range")
        # Some terminals count milliseconds: no capture is from before 1973 in seconds.
        if isinstance(value, int | float) and value > MILLISECONDS_ABOVE:
            return value / 1000.0
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class AckAddress:
    """Whom an acknowledgement answers: read from the capture even when the capture is rejected."""

    device_no: str | None
    sequence_no: int | None

    @classmethod
    def of(cls, document: object) -> AckAddress:
        if not isinstance(document, dict):
            return cls(None, None)
        device_no = document.get("device_no")
        if isinstance(device_no, int) and not isinstance(device_no, bool):
            device_no = str(device_no)
        if not isinstance(device_no, str) or not re.match(DEVICE_NO_PATTERN, device_no[:128]):
            device_no = None
        sequence_no = document.get("sequence_no")
        # Only a sequence number the capture model would accept is echoed back (not 10**400).
        usable = isinstance(sequence_no, int) and not isinstance(sequence_no, bool) and 0 <= sequence_no <= 2**63 - 1
        return cls(None if device_no is None else device_no[:128], sequence_no if usable else None)

    @classmethod
    def salvage(cls, payload: bytes) -> AckAddress:
        """The address of a capture that is valid JSON but cannot be loaded (too deep, a huge number).

        Without it a rejection to a ``{device_no}`` topic cannot be sent, and the terminal resends forever.
        """
        device = _DEVICE_NO_TEXT.search(payload)
        sequence = _SEQUENCE_NO_TEXT.search(payload)
        return cls.of(
            {
                "device_no": device[1].decode() if device else None,
                "sequence_no": int(sequence[1]) if sequence else None,
            }
        )


def parse_capture(payload: bytes, config: MqttGateConfig) -> tuple[MqttCapture, AckAddress]:
    """The validated capture, and whom to acknowledge; ``PayloadRejected`` says what is wrong.

    A rejection carries the ``AckAddress`` it could read (``exc.address``) so that it can still
    be acknowledged to the right device.
    """
    limit = (config.max_image_bytes * 4) // 3 + JSON_OVERHEAD_BYTES
    if len(payload) > limit:
        raise CaptureRejected(f"capture of {len(payload)} bytes exceeds {limit} bytes", AckAddress(None, None))
    try:
        document = json.loads(payload)
    # ValueError covers invalid UTF-8, bad JSON and integers of more than 4,300 digits; RecursionError
    # deep nesting. Each must end in a `rejected` acknowledgement, or the terminal resends forever.
    except json.JSONDecodeError as exc:
        raise CaptureRejected(f"invalid JSON at position {exc.pos}", AckAddress(None, None)) from None
    except (ValueError, RecursionError) as exc:
        # JSON whose structure is fine but which Python will not load (bad UTF-8 in a string, a number
        # of more than 4,300 digits, deep nesting): whom to answer is read from the text.
        if isinstance(exc, UnicodeDecodeError):
            what = "invalid JSON (not UTF-8)"
        elif isinstance(exc, RecursionError):
            what = "JSON nested too deeply"
        else:
            what = "JSON number with too many digits"
        raise CaptureRejected(what, AckAddress.salvage(payload)) from None
    address = AckAddress.of(document)
    if not isinstance(document, dict):
        raise CaptureRejected(f"capture must be a JSON object, not {type(document).__name__}", address)
    try:
        capture = MqttCapture.model_validate(document)
    except ValidationError as exc:
        raise CaptureRejected(_describe(exc), address) from None
    return capture, AckAddress(capture.device_no, capture.sequence_no)


class CaptureRejected(PayloadRejected):
    """A capture that cannot be used, with the device it came from when that could be read."""

    def __init__(self, reason: str, address: AckAddress) -> None:
        super().__init__(reason)
        self.address = address


def capture_picture(capture: MqttCapture, max_bytes: int) -> bytes:
    """The capture's face picture as JPEG bytes, checked (``PayloadRejected`` otherwise).

    Base64 decoding of up to a few MB (the JPEG check reads headers only): call it in a worker thread
    from async code.
    """
    if capture.picture is None or not capture.picture.strip():
        raise PayloadRejected(f"no face picture (expected one of: {', '.join(PICTURE_FIELDS)})")
    encoded = DATA_URL_PREFIX.sub("", capture.picture.strip(), count=1)
    if len(encoded) > (max_bytes * 4) // 3 + 4:
        raise PayloadRejected(f"picture exceeds {max_bytes} bytes", status_code=413)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadRejected("picture is not valid base64") from None
    check_jpeg(data, max_bytes=max_bytes)
    return data


def to_gate_event(capture: MqttCapture, config: MqttGateConfig, *, received_at: dt.datetime, jpeg: bytes) -> GateEvent:
    """The ``GateEvent`` of a checked capture; ``PayloadRejected`` when its time is unusable."""
    return GateEvent(
        gate_id=config.id,
        received_at=received_at,
        device_time=device_time(capture.cap_time, config, received_at=received_at),
        door=capture.door,
        direction=direction_for(config, capture.door),
        serial=capture.sequence_no,
        event_type="capture",
        verify_mode=capture.verify_mode,
        device_person_id=capture.person_id,
        card_no=capture.card_no,
        face_image=jpeg,
    )


def _describe(exc: ValidationError) -> str:
    """Field errors without the input values (they could hold a picture)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "capture"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)[:300]


def _ack_topic_pattern(template: str) -> re.Pattern[str] | None:
    """A pattern of the topics the acknowledgements go to, or None when it would match any topic.

    With a wildcard subscription (``terminals/#``) and acknowledgements under it (``{topic}/ack``),
    gridwatch receives its own acknowledgements: they must not be taken for captures.
    """
    parts = re.split(r"(\{topic\}|\{device_no\})", template)
    if all(part in ("{topic}", "{device_no}", "") for part in parts):
        return None
    regex = "".join(
        ".+" if part == "{topic}" else "[^/]+" if part == "{device_no}" else re.escape(part) for part in parts
    )
    return re.compile(f"^{regex}$")


def _looks_like_ack(payload: bytes) -> bool:
    """An acknowledgement (ours or another server's) published where captures arrive."""
    if len(payload) > 4096 or b'"result"' not in payload:
        return False
    with contextlib.suppress(ValueError, RecursionError):
        document = json.loads(payload)
        return (
            isinstance(document, dict)
            and document.get("result") in ("ok", "rejected")
            and not any(name in document for name in PICTURE_FIELDS)
        )
    return False


class MqttGateSource:
    """One MQTT face terminal (or a fleet of them behind one topic): ``start()`` … ``stop()``."""

    kind = "mqtt"

    def __init__(self, config: MqttGateConfig, on_event: GateEventHandler) -> None:
        self.config = config
        self._on_event = on_event
        self._health = GateHealth(config.id, self.kind)
        # The serial counters have the names the other dialects use (``ingest.gates.serials``).
        self._health.status.extra.update(
            {"duplicates": 0, "serial_gaps": 0, "missed_events": 0, "acks": 0, "busy": 0, "handler_errors": 0}
        )
        self._backoff = Backoff.from_config(config.backoff)
        self._ack_pattern = _ack_topic_pattern(config.ack_topic)
        self._seen: collections.OrderedDict[str, collections.OrderedDict[int, None]] = collections.OrderedDict()
        self._last_sequence: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> SourceStatus:
        status = self._health.status
        return dataclasses.replace(status, extra=dict(status.extra))

    @property
    def client_id(self) -> str:
        return self.config.client_id or f"gridwatch-{self.config.id}"

    async def start(self) -> None:
        """Connect in the background; returns at once. Idempotent."""
        if self._task is not None:
            return
        log.info(
            "gate %s: MQTT %s:%d topic %r (ack %r)",
            self.config.id,
            self.config.host,
            self.config.port,
            self.config.topic,
            self.config.ack_topic,
        )
        self._task = asyncio.create_task(self._run(), name=f"gate-{self.config.id}-mqtt")

    async def stop(self) -> None:
        """Disconnect and stop. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, STOP_TIMEOUT_S)
        self._health.stopped()
        log.info("gate %s stopped", self.config.id)

    async def __aenter__(self) -> MqttGateSource:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- connection ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.config.host,
                    self.config.port,
                    username=self.config.username,
                    password=self.config.password,
                    identifier=self.client_id,
                    logger=log.getChild("paho"),
                ) as client:
                    await client.subscribe(self.config.topic, qos=SUBSCRIBE_QOS)
                    self._health.connected()
                    self._backoff.reset()
                    async for message in client.messages:
                        try:
                            await self._on_message(client, message)
                        except aiomqtt.MqttError:
                            raise
                        except Exception as exc:  # a bug on one message must not end the subscription
                            self._health.rejected(f"unexpected {type(exc).__name__}")
                self._health.disconnected("the broker closed the connection")
            except aiomqtt.MqttError as exc:
                # paho's messages name the host or the reason, never the credentials.
                self._health.disconnected(f"MQTT: {exc}")
            delay = self._backoff.next_delay()
            log.debug("gate %s: reconnecting in %.1f s", self.config.id, delay)
            await asyncio.sleep(delay)

    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        if self._ack_pattern is not None and self._ack_pattern.match(topic):
            return
        if _looks_like_ack(payload):
            return
        received_at = dt.datetime.now(dt.UTC)
        try:
            capture, address = parse_capture(payload, self.config)
        except CaptureRejected as exc:
            await self._reject(client, topic, exc.address, exc.reason)
            return
        try:
            jpeg = await asyncio.to_thread(capture_picture, capture, self.config.max_image_bytes)
            event = to_gate_event(capture, self.config, received_at=received_at, jpeg=jpeg)
        except PayloadRejected as exc:
            await self._reject(client, topic, address, exc.reason)
            return
        extra = self._health.status.extra
        if self._seen_before(capture):
            # Taken before and our acknowledgement was lost: acknowledge again, hand on nothing.
            await self._acknowledge(client, topic, address, None)
            extra["duplicates"] = _count(extra["duplicates"]) + 1
            GATE_DUPLICATES.labels(gate=self.config.id).inc()
            log.debug("gate %s: capture %s/%s resent; dropped", self.config.id, capture.device_no, capture.sequence_no)
            return
        try:
            await self._on_event(event)
        except GateBusy as busy:
            # No acknowledgement: the terminal keeps the capture and resends it.
            extra["busy"] = _count(extra["busy"]) + 1
            log.debug("gate %s: capture %s not taken (%s)", self.config.id, capture.sequence_no, busy.reason)
            return
        except Exception as exc:  # one failing handler call must not end the subscription
            extra["handler_errors"] = _count(extra["handler_errors"]) + 1
            log.error("gate %s: event handler failed: %s", self.config.id, type(exc).__name__)
            return
        # Remembered only once taken: a capture not taken is new again when the terminal resends it.
        self._remember(capture)
        self._health.event(received_at)
        await self._acknowledge(client, topic, address, None)

    async def _reject(self, client: aiomqtt.Client, topic: str, address: AckAddress, reason: str) -> None:
        self._health.rejected(reason)
        await self._acknowledge(client, topic, address, reason)

    def _seen_before(self, capture: MqttCapture) -> bool:
        seen = self._seen.get(capture.device_no)
        return capture.sequence_no is not None and seen is not None and capture.sequence_no in seen

    def _remember(self, capture: MqttCapture) -> bool:
        """Whether this capture was seen already; counts the sequence numbers that never came."""
        if capture.sequence_no is None:
            return False
        seen = self._seen.get(capture.device_no)
        if seen is None:
            seen = self._seen[capture.device_no] = collections.OrderedDict()
            while len(self._seen) > MAX_DEVICES:
                forgotten, _ = self._seen.popitem(last=False)
                self._last_sequence.pop(forgotten, None)
        else:
            self._seen.move_to_end(capture.device_no)
        if capture.sequence_no in seen:
            return True
        seen[capture.sequence_no] = None
        if len(seen) > SEEN_PER_DEVICE:
            seen.popitem(last=False)
        last = self._last_sequence.get(capture.device_no)
        if last is not None and capture.sequence_no > last + 1:
            missed = capture.sequence_no - last - 1
            extra = self._health.status.extra
            extra["serial_gaps"] = _count(extra["serial_gaps"]) + 1
            extra["missed_events"] = _count(extra["missed_events"]) + missed
            log.warning(
                "gate %s: device %s skipped %d capture(s) (%d → %d)",
                self.config.id,
                capture.device_no,
                missed,
                last,
                capture.sequence_no,
            )
        if last is None or capture.sequence_no > last:
            self._last_sequence[capture.device_no] = capture.sequence_no
        return False

    async def _acknowledge(self, client: aiomqtt.Client, topic: str, address: AckAddress, reason: str | None) -> None:
        if address.device_no is None and "{device_no}" in self.config.ack_topic:
            log.debug("gate %s: no device number to address the rejection to", self.config.id)
            return
        ack: dict[str, object] = {
            "device_no": address.device_no,
            "sequence_no": address.sequence_no,
            "result": "ok" if reason is None else "rejected",
        }
        if reason is not None:
            ack["reason"] = reason
        device_no = address.device_no or ""
        ack_topic = self.config.ack_topic.replace("{topic}", topic).replace("{device_no}", device_no)
        try:
            await client.publish(ack_topic, json.dumps(ack).encode(), qos=ACK_QOS)
        except (aiomqtt.MqttError, ValueError) as exc:
            log.warning("gate %s: acknowledgement not published: %s", self.config.id, exc)
            return
        self._health.status.extra["acks"] = _count(self._health.status.extra["acks"]) + 1


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0
