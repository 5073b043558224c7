"""Hikvision access terminals' event log: ``POST /ISAPI/AccessControl/AcsEvent?format=json``.

The request is ``{"AcsEventCond": {searchID, searchResultPosition, maxResults, major, minor,
startTime, endTime, timeReverseOrder, beginSerialNo, endSerialNo}}``; the answer is ``{"AcsEvent":
{searchID, responseStatusStrg: OK | MORE | NO MATCH, numOfMatches, totalMatches, InfoList: [...]}}``
with, per event, ``major``, ``minor``, ``time``, ``serialNo``, ``doorNo``, ``cardReaderNo``,
``employeeNoString``, ``cardNo``, ``currentVerifyMode`` and, when the terminal kept one, a
``pictureURL``. Field names come from public integrations; unknown fields are accepted.

The serial bounds select the events; the time window is wide on purpose (2000 to 2037): a terminal
whose clock was reset logs events at odd times, and the window must not hide them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from ingest.gates.common import PayloadRejected
from ingest.gates.isapi import ACCESS_EVENT_TYPE, DeviceNumber, IsapiAccessControllerEvent, IsapiNotification, ShortText

ACS_EVENT_PATH = "/ISAPI/AccessControl/AcsEvent"
MAX_ANSWER_BYTES = 1024 * 1024
MAX_PAGE = 100
WINDOW_START = "2000-01-01T00:00:00+00:00"
WINDOW_END = "2037-12-31T23:59:59+00:00"
Status = Literal["OK", "MORE", "NO MATCH"]


class AcsEventInfo(BaseModel):
    """One logged event (an ``InfoList`` entry)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    major: DeviceNumber | None = Field(default=None, description="Major event type (5: event).")
    minor: DeviceNumber | None = Field(default=None, description="Minor event type (75: face passed).")
    time: ShortText | None = Field(default=None, description="Device time, ISO 8601.")
    serial_no: int | None = Field(default=None, alias="serialNo", ge=0, le=2**63 - 1, description="Event serial.")
    door_no: DeviceNumber | None = Field(default=None, alias="doorNo", description="Door number.")
    card_reader_no: DeviceNumber | None = Field(default=None, alias="cardReaderNo", description="Reader number.")
    employee_no: ShortText | None = Field(default=None, alias="employeeNoString", description="Person number.")
    card_no: ShortText | None = Field(default=None, alias="cardNo", description="Card number.")
    verify_mode: ShortText | None = Field(default=None, alias="currentVerifyMode", description="How verified.")
    picture_url: Annotated[str, Field(max_length=2048)] | None = Field(
        default=None, alias="pictureURL", description="The event's picture on the device, when kept."
    )

    def notification(self) -> IsapiNotification:
        """The event as the stream would have announced it, so the live path converts it."""
        access = IsapiAccessControllerEvent(
            majorEventType=self.major,
            subEventType=self.minor,
            serialNo=self.serial_no,
            doorNo=self.door_no,
            cardReaderNo=self.card_reader_no,
            employeeNoString=self.employee_no,
            cardNo=self.card_no,
            currentVerifyMode=self.verify_mode,
        )
        return IsapiNotification(eventType=ACCESS_EVENT_TYPE, dateTime=self.time, AccessControllerEvent=access)


class AcsEventPage(BaseModel):
    """One page of a search (``AcsEvent``)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: Status = Field(alias="responseStatusStrg", description="MORE: further pages follow.")
    matches: int = Field(default=0, alias="numOfMatches", ge=0, le=MAX_PAGE, description="Events on this page.")
    info_list: list[AcsEventInfo] = Field(
        default_factory=list, alias="InfoList", max_length=MAX_PAGE, description="The events."
    )


class AcsEventAnswer(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    page: AcsEventPage = Field(alias="AcsEvent", description="The search result.")


def search_body(
    search_id: str, position: int, max_results: int, *, first: int | None = None, last: int | None = None
) -> dict[str, object]:
    """A search condition: all event types, oldest first; without bounds the newest event alone."""
    condition: dict[str, object] = {
        "searchID": search_id,
        "searchResultPosition": position,
        "maxResults": max_results,
        "major": 0,  # all types: the stream's serials count every type, so must the search
        "minor": 0,
        "startTime": WINDOW_START,
        "endTime": WINDOW_END,
        "timeReverseOrder": first is None,
    }
    if first is not None:
        condition["beginSerialNo"] = first
    if last is not None:
        condition["endSerialNo"] = last
    return {"AcsEventCond": condition}


def picture_url(base_url: str, picture: str) -> str:
    """``pictureURL`` on the configured device: its path only, against ``url``.

    Terminals write their LAN address into the URL, unreachable behind NAT; and the device's
    credentials must never go to a host the device names. So only the path and query are kept.
    """
    try:
        target = httpx.URL(picture.strip())
    except httpx.InvalidURL:
        raise PayloadRejected("unreadable pictureURL") from None
    if not target.raw_path.startswith(b"/"):
        raise PayloadRejected("pictureURL without a path")
    base = httpx.URL(base_url.rstrip("/"))
    return str(base.copy_with(raw_path=target.raw_path))
