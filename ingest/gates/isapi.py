"""Hikvision ISAPI access-control notifications (JSON) → ``GateEvent``.

The same JSON arrives pushed to gridwatch's HTTP endpoint and on the ``alertStream`` long poll.
Field names come from public integrations, not vendor PDFs: the models accept unknown fields
(``extra="allow"``) and validate only the fields gridwatch uses.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, field_validator

from gridwatch.core.config.gates import Direction, GateConfig
from gridwatch.core.interfaces import FaceRect, GateEvent
from ingest.gates.common import PayloadRejected, device_time

MAX_EVENT_JSON_BYTES = 256 * 1024
MAX_PICTURES = 16
HEARTBEAT_TYPES = frozenset({"heartbeat"})
ACCESS_EVENT_TYPE = "AccessControllerEvent"

# The terminal's own verdict, from the minor types of major type 5 (MAJOR_EVENT) in Hikvision's
# HCNetSDK headers (the names below are theirs). Other minors (door opened, remote unlock, alarms)
# say nothing about a person at the reader: no verdict.
MAJOR_EVENT = 5
GRANTED_MINORS = frozenset(
    {
        0x01,  # MINOR_LEGAL_CARD_PASS
        0x26,  # MINOR_FINGERPRINT_COMPARE_PASS
        0x4B,  # MINOR_FACE_VERIFY_PASS (75)
        0x4D,  # MINOR_EMPLOYEENO_AND_FACE_VERIFY_PASS
        0x9C,  # MINOR_ORCODE_VERIFY_PASS (QR code)
        0xB5,  # MINOR_PASSWD_VERIFY_PASS
    }
)
DENIED_MINORS = frozenset(
    {
        0x06,  # MINOR_CARD_NO_RIGHT
        0x07,  # MINOR_CARD_INVALID_PERIOD
        0x08,  # MINOR_CARD_OUT_OF_DATE
        0x09,  # MINOR_INVALID_CARD
        0x27,  # MINOR_FINGERPRINT_COMPARE_FAIL
        0x31,  # MINOR_FINGERPRINT_INEXISTENCE
        0x4C,  # MINOR_FACE_VERIFY_FAIL (76): face authentication failed
        0x4E,  # MINOR_EMPLOYEENO_AND_FACE_VERIFY_FAIL
        0x50,  # MINOR_FACE_RECOGNIZE_FAIL
        0x96,  # MINOR_PSW_VERIFY_FAIL
        0x9D,  # MINOR_ORCODE_VERIFY_FAIL
    }
)

ShortText = Annotated[str, Field(max_length=256)]
DeviceNumber = Annotated[int, Field(ge=0, le=2**31 - 1)]


class IsapiFaceRect(BaseModel):
    """``FaceRect`` of an access event (some firmwares): where the terminal saw the face in the picture,
    normalised to 0..1 (``x, y`` the top-left corner)."""

    model_config = ConfigDict(extra="allow")

    x: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Left edge, share of the picture's width.")
    y: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Top edge, share of the picture's height.")
    width: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Width, share of the picture's width.")
    height: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="Height, share of the picture's height.")

    def face_rect(self) -> FaceRect | None:
        """The rectangle; None when it is empty (firmwares send zeros when they located no face)."""
        if self.width <= 0.0 or self.height <= 0.0:
            return None
        return FaceRect(self.x, self.y, self.width, self.height)


class IsapiAccessControllerEvent(BaseModel):
    """The ``AccessControllerEvent`` object; unknown fields are kept, used fields validated."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    device_name: ShortText | None = Field(default=None, alias="deviceName", description="Device name.")
    major_event_type: DeviceNumber | None = Field(
        default=None, alias="majorEventType", description="Major event type (5: event)."
    )
    sub_event_type: DeviceNumber | None = Field(
        default=None,
        alias="subEventType",
        description="Minor event type (75: face authentication passed, 76: face authentication failed).",
    )
    employee_no: ShortText | None = Field(
        default=None, alias="employeeNoString", description="Device-side person (employee) number."
    )
    card_no: ShortText | None = Field(default=None, alias="cardNo", description="Card number.")
    door_no: DeviceNumber | None = Field(default=None, alias="doorNo", description="Door number.")
    card_reader_no: DeviceNumber | None = Field(default=None, alias="cardReaderNo", description="Reader number.")
    serial_no: int | None = Field(
        default=None, alias="serialNo", ge=0, le=2**63 - 1, description="Event serial; orders events, reveals gaps."
    )
    verify_mode: ShortText | None = Field(
        default=None, alias="currentVerifyMode", description="How the person was verified (face, card, ...)."
    )
    pictures_number: int | None = Field(
        default=None, alias="picturesNumber", ge=0, le=MAX_PICTURES, description="Picture parts that follow."
    )
    face_rect: IsapiFaceRect | None = Field(
        default=None, alias="FaceRect", description="Where the terminal saw the face in the picture (0..1)."
    )

    @field_validator("face_rect", mode="wrap")
    @classmethod
    def _face_rect_or_none(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> IsapiFaceRect | None:
        # A hint, not the event: a malformed rectangle is dropped, the access event is still taken.
        try:
            rect: IsapiFaceRect | None = handler(value)
        except ValidationError:
            return None
        return rect


class IsapiNotification(BaseModel):
    """One ISAPI event notification (an access event, a heartbeat, or another event type)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_type: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        alias="eventType", description="AccessControllerEvent, heartBeat, ..."
    )
    date_time: ShortText | None = Field(default=None, alias="dateTime", description="Device time, ISO 8601.")
    ip_address: ShortText | None = Field(default=None, alias="ipAddress", description="Device address.")
    mac_address: ShortText | None = Field(default=None, alias="macAddress", description="Device MAC address.")
    access: IsapiAccessControllerEvent | None = Field(
        default=None, alias="AccessControllerEvent", description="The access event (eventType AccessControllerEvent)."
    )

    @property
    def is_heartbeat(self) -> bool:
        return self.event_type.lower() in HEARTBEAT_TYPES

    @property
    def is_access_event(self) -> bool:
        return self.event_type == ACCESS_EVENT_TYPE and self.access is not None

    @property
    def verdict(self) -> Literal["granted", "denied"] | None:
        """The terminal's own decision, when the event type states one (``GRANTED_MINORS``, ``DENIED_MINORS``)."""
        access = self.access
        if access is None or access.major_event_type != MAJOR_EVENT:
            return None
        if access.sub_event_type in GRANTED_MINORS:
            return "granted"
        if access.sub_event_type in DENIED_MINORS:
            return "denied"
        return None

    @property
    def pictures_expected(self) -> int:
        """Picture parts announced for this event (0 when not announced or not an access event)."""
        if self.access is None or self.access.pictures_number is None:
            return 0
        return self.access.pictures_number


def validation_reason(error: ValidationError, what: str) -> str:
    """A short reason naming the bad fields, without echoing their (untrusted) values."""
    problems = []
    for item in error.errors()[:3]:
        location = ".".join(str(part) for part in item["loc"]) or "(root)"
        problems.append(f"{location}: {item['msg']}")
    return f"invalid {what}: " + "; ".join(problems)


def parse_notification(raw: bytes) -> IsapiNotification:
    """Parse one notification's JSON; ``PayloadRejected`` with a reason when it is unusable."""
    if len(raw) > MAX_EVENT_JSON_BYTES:
        raise PayloadRejected(f"event JSON of {len(raw)} bytes exceeds the limit of {MAX_EVENT_JSON_BYTES}")
    try:
        document = json.loads(raw)
    # ValueError: invalid UTF-8, bad JSON, integers of more than 4,300 digits; RecursionError: deep nesting.
    except (ValueError, RecursionError):
        raise PayloadRejected("event part is not valid JSON") from None
    if not isinstance(document, dict):
        raise PayloadRejected("event JSON is not an object")
    try:
        return IsapiNotification.model_validate(document)
    except ValidationError as error:
        raise PayloadRejected(validation_reason(error, "ISAPI event")) from None


def _configured_direction(config: GateConfig, door: str | None) -> Direction | None:
    if door is None:
        return None
    return next((entry.direction for entry in config.doors if entry.door == door), None)


def to_gate_event(
    notification: IsapiNotification, config: GateConfig, *, received_at: dt.datetime, pictures: Sequence[bytes]
) -> GateEvent:
    """The ``GateEvent`` of an access notification; the first picture is the face snapshot, and
    ``FaceRect`` (when the firmware sends one) says where the face is in it.

    The door is ``doorNo`` (else ``cardReaderNo``). Its direction comes from the config: the door's
    entry, else the reader's entry (two readers on one door: one in, one out), else the default.
    """
    access = notification.access
    if access is None:
        raise PayloadRejected("not an access event")
    door = str(access.door_no) if access.door_no is not None else None
    reader = str(access.card_reader_no) if access.card_reader_no is not None else None
    direction = _configured_direction(config, door) or _configured_direction(config, reader) or config.default_direction
    event_type = (
        f"{access.major_event_type}/{access.sub_event_type}"
        if access.major_event_type is not None and access.sub_event_type is not None
        else notification.event_type
    )
    return GateEvent(
        gate_id=config.id,
        received_at=received_at,
        device_time=device_time(notification.date_time, config, received_at=received_at),
        door=door if door is not None else reader,
        direction=direction,
        serial=access.serial_no,
        event_type=event_type,
        verify_mode=access.verify_mode,
        device_person_id=access.employee_no or None,
        card_no=access.card_no or None,
        face_image=pictures[0] if pictures else None,
        verdict=notification.verdict,
        face_rect=access.face_rect.face_rect() if access.face_rect is not None and pictures else None,
    )
