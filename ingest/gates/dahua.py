"""Dahua ``eventManager.cgi`` attach-stream events → ``GateEvent``.

A part's text is one or more lines ``Code=AccessControl;action=Pulse;index=0;data={...}`` (the JSON
pretty-printed over several lines), or ``Heartbeat``. Field names come from public integrations: the
model accepts unknown fields and validates only those gridwatch uses.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridwatch.core.config.gates import Direction, GateConfig
from gridwatch.core.interfaces import GateEvent
from ingest.gates.common import PayloadRejected, device_time
from ingest.gates.isapi import validation_reason

ACCESS_CODE = "AccessControl"
HEARTBEAT = "Heartbeat"
MAX_EVENT_TEXT_BYTES = 256 * 1024
# Dahua's documented Method codes, for the ones a face terminal reports most; others stay numeric.
VERIFY_METHODS = {0: "password", 1: "card", 4: "fingerprint", 15: "face"}
# A device file path (e.g. /mnt/appdata1/userpic/SnapShot/x.jpg) is served by this CGI.
LOADFILE_CGI = "/cgi-bin/RPC_Loadfile"

ShortText = Annotated[str, Field(max_length=256)]

_EVENT_LINE = re.compile(
    r"Code=(?P<code>[^;\r\n]*);action=(?P<action>[^;\r\n]*);index=(?P<index>-?\d{1,9})(?:;data=(?P<data>.*))?\s*\Z",
    re.DOTALL,
)
_EVENT_START = re.compile(r"(?m)^(?=Code=)")


class DahuaAccessData(BaseModel):
    """The ``data`` object of an ``AccessControl`` event; unknown fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    card_no: ShortText | None = Field(default=None, alias="CardNo", description="Card number.")
    method: int | None = Field(default=None, alias="Method", ge=0, le=1000, description="Verify method (15: face).")
    name: ShortText | None = Field(default=None, alias="Name", description="Person name on the device.")
    reader_id: ShortText | int | None = Field(default=None, alias="ReaderID", description="Reader id.")
    rec_no: int | None = Field(default=None, alias="RecNo", ge=0, le=2**63 - 1, description="Record number (serial).")
    snap_url: ShortText | None = Field(default=None, alias="SnapURL", description="Where the snapshot can be fetched.")
    status: int | None = Field(
        default=None, alias="Status", ge=0, le=1000, description="The controller's verdict: 1 granted, 0 refused."
    )
    type: ShortText | None = Field(default=None, alias="Type", description="Entry or Exit.")
    user_id: ShortText | None = Field(default=None, alias="UserID", description="Device-side person id.")
    utc: float | None = Field(default=None, alias="UTC", ge=0, le=32503680000, description="Event time, Unix seconds.")


@dataclass(frozen=True, slots=True)
class DahuaEvent:
    """One ``Code=...`` line; ``data`` is the raw JSON object (``None`` when the line has none)."""

    code: str
    action: str
    index: int
    data: dict[str, Any] | None


def is_heartbeat(text: str) -> bool:
    return text.strip() == HEARTBEAT


def parse_events(text: str) -> list[DahuaEvent]:
    """Every ``Code=...`` event in one part's text; ``PayloadRejected`` if any of it is unreadable."""
    if len(text) > MAX_EVENT_TEXT_BYTES:
        raise PayloadRejected(f"event text of {len(text)} characters exceeds the limit of {MAX_EVENT_TEXT_BYTES}")
    chunks = [chunk for chunk in _EVENT_START.split(text.strip()) if chunk.strip()]
    if not chunks:
        raise PayloadRejected("empty event part")
    events = []
    for chunk in chunks:
        match = _EVENT_LINE.match(chunk.strip())
        if match is None:
            raise PayloadRejected("event part is not 'Code=...;action=...;index=...;data=...'")
        data: dict[str, Any] | None = None
        if match["data"] is not None and match["data"].strip():
            try:
                parsed = json.loads(match["data"])
            # ValueError: bad JSON, integers of more than 4,300 digits; RecursionError: deep nesting.
            except (ValueError, RecursionError):
                raise PayloadRejected(f"event {match['code'][:40]!r} carries invalid JSON data") from None
            if not isinstance(parsed, dict):
                raise PayloadRejected(f"event {match['code'][:40]!r} data is not a JSON object")
            data = parsed
        events.append(DahuaEvent(match["code"], match["action"], int(match["index"]), data))
    return events


def parse_access_data(event: DahuaEvent) -> DahuaAccessData:
    if event.data is None:
        raise PayloadRejected("AccessControl event without data")
    try:
        return DahuaAccessData.model_validate(event.data)
    except ValidationError as error:
        raise PayloadRejected(validation_reason(error, "Dahua AccessControl data")) from None


def snapshot_url(base_url: str, snap_url: str) -> str:
    """The absolute URL of a ``SnapURL``: relative ones against the device's ``url``.

    A device file path (``/mnt/...``) goes through ``/cgi-bin/RPC_Loadfile``. An absolute URL must
    point at the configured device itself: the device's credentials are never sent elsewhere.
    """
    base = httpx.URL(base_url.rstrip("/") + "/")
    text = snap_url.strip()
    if not text:
        raise PayloadRejected("empty SnapURL")
    if text.startswith("//"):
        raise PayloadRejected("SnapURL points away from the configured device")
    try:
        if "://" in text:
            target = httpx.URL(text)
        else:
            if text.startswith("/") and not text.startswith("/cgi-bin/"):
                text = LOADFILE_CGI + text
            target = base.join(text.lstrip("/"))
    except httpx.InvalidURL:
        raise PayloadRejected("unreadable SnapURL") from None
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        raise PayloadRejected("SnapURL points away from the configured device")
    return str(target)


def _configured_direction(config: GateConfig, door: str | None) -> Direction | None:
    if door is None:
        return None
    return next((entry.direction for entry in config.doors if entry.door == door), None)


def direction_of(data: DahuaAccessData, config: GateConfig) -> Direction | None:
    """The configured reader's direction, else the event's ``Type`` (Entry/Exit), else the default."""
    reader = str(data.reader_id) if data.reader_id is not None else None
    configured = _configured_direction(config, reader)
    if configured is not None:
        return configured
    kind = (data.type or "").strip().lower()
    if kind == "entry":
        return "in"
    if kind == "exit":
        return "out"
    return config.default_direction


def verdict_of(data: DahuaAccessData) -> Literal["granted", "denied"] | None:
    """The controller's own decision: ``Status`` 1 opened the door, 0 refused; anything else says nothing."""
    if data.status == 1:
        return "granted"
    if data.status == 0:
        return "denied"
    return None


def to_gate_event(
    data: DahuaAccessData, config: GateConfig, *, received_at: dt.datetime, face_image: bytes | None, action: str
) -> GateEvent:
    method = data.method
    verify_mode = None if method is None else VERIFY_METHODS.get(method, f"method-{method}")
    return GateEvent(
        gate_id=config.id,
        received_at=received_at,
        device_time=device_time(data.utc, config, received_at=received_at),
        door=str(data.reader_id) if data.reader_id is not None else None,
        direction=direction_of(data, config),
        serial=data.rec_no,
        event_type=f"{ACCESS_CODE}/{action}",
        verify_mode=verify_mode,
        device_person_id=data.user_id or None,
        card_no=data.card_no or None,
        face_image=face_image,
        verdict=verdict_of(data),
    )
