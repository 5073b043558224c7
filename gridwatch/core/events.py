"""The event contracts between stages (versioned; they travel over Kafka).

Neither contract ever carries an embedding or image bytes: only references.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SIGHTING_SCHEMA = "gridwatch.sighting/v1"
ALERT_SCHEMA = "gridwatch.alert/v1"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quality(_Event):
    """The quality values of the face behind a sighting."""

    det_score: float = Field(ge=0.0, le=1.0, description="Detector confidence.")
    face_px: float = Field(ge=0.0, description="Shorter side of the face box, in pixels.")
    blur: float | None = Field(default=None, ge=0.0, description="Variance of the Laplacian of the crop.")
    yaw: float | None = Field(default=None, description="Estimated yaw in degrees.")


class SourceKind(enum.StrEnum):
    CAMERA = "camera"
    GATE = "gate"


class Sighting(_Event):
    """A face that matched a registry entry. Unmatched faces never become a Sighting."""

    schema_: Literal["gridwatch.sighting/v1"] = Field(default="gridwatch.sighting/v1", alias="schema")
    sighting_id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=64)
    source: str = Field(description="Camera or gate id.")
    source_kind: SourceKind
    captured_at: dt.datetime = Field(description="Frame or device time, UTC.")
    received_at: dt.datetime
    person_id: str = Field(description="Pseudonymous id of the registry entry.")
    registry: str
    similarity: float
    threshold: float
    model: str = Field(description="Model pack name and recogniser file hash.")
    quality: Quality
    track_id: str | None = None
    direction: Literal["in", "out"] | None = None
    evidence_ref: str | None = Field(default=None, description="Id of a stored snapshot, if any.")
    grid: str | None = Field(default=None, description="Grid (area of responsibility) of the source.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class StrangerAttempt(_Event):
    """A face at a source that matched no registry, or a gate's own refusal. Carries nothing biometric.

    ``cluster`` is a random label recognition gives, in memory only, to faces of one source that
    look alike; it is forgotten after the longest `stranger_at_gate` window and means nothing elsewhere.
    """

    schema_: Literal["gridwatch.stranger-attempt/v1"] = Field(default="gridwatch.stranger-attempt/v1", alias="schema")
    attempt_id: str = Field(default_factory=lambda: uuid.uuid4().hex, max_length=64)
    source: str = Field(description="Gate (or camera) id.")
    source_kind: SourceKind
    captured_at: dt.datetime = Field(description="Device or frame time, UTC.")
    received_at: dt.datetime | None = Field(
        default=None,
        description="When gridwatch received it, UTC (the server's clock, which windows count on). "
        "Absent from attempts of versions before it was added: captured_at stands in.",
    )
    cluster: str | None = Field(default=None, max_length=64, description="In-memory look-alike label; None = no face.")
    verdict: Literal["unmatched", "denied"] = Field(
        description="unmatched: our recognition matched no registry; denied: the gate refused the person itself."
    )
    gate_event_id: str | None = Field(default=None, max_length=128, description="The device's own event id.")
    grid: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


class Alert(_Event):
    """An advisory notification for people. Nothing acts on a person automatically."""

    schema_: Literal["gridwatch.alert/v1"] = Field(default="gridwatch.alert/v1", alias="schema")
    alert_id: str
    rule: str
    severity: Severity
    person_id: str | None = Field(description="Pseudonymous person id; None for an unknown face (stranger_at_gate).")
    registry: str | None = Field(description="Registry of the person; None for an unknown face.")
    source: str
    source_kind: SourceKind
    grid: str | None = None
    recipients: list[str] = Field(default_factory=list)
    created_at: dt.datetime
    sightings: list[str] = Field(description="Sighting ids that led to this alert.")
    similarity: float
    explanation: str
    state: AlertState = AlertState.OPEN
    suppressed: int = Field(
        default=0,
        ge=0,
        description="Sightings the cooldown suppressed since the previous alert of this rule and person.",
    )
    kind: str | None = Field(default=None, description="Kind of the rule that made the alert (seen, not_seen, ...).")
    model: str | None = Field(
        default=None,
        max_length=200,
        description="Model pack and recogniser file hash of the match behind the alert (None: a timer or a "
        "stranger alert, which no match made).",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @property
    def key(self) -> str:
        """Partition key: the person, or for an unknown face the place it was seen."""
        return self.person_id if self.person_id is not None else f"source:{self.source}"


def event_id_for(*parts: str) -> str:
    """A deterministic id (32 hex) derived from the parts: the same event resent makes the same id.

    Used for the sightings and stranger attempts of a gate event (gate id, the device's serial and its
    event time, then what distinguishes one sighting of the event from another), so that a terminal
    resending an event it thinks was lost makes no second alert.
    """
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def alert_id_of(rule: str, subject: str, event_id: str) -> str:
    """The id of the alert a rule makes of one event (a sighting or a stranger attempt).

    Derived from the event's own id, never from a clock: a replayed event (the transport delivering it
    again, a gate resending it) keeps its id and makes no second alert, while two visits are two events
    even when a device's clock stands still. ``subject``: the person, or the stranger's place and label.
    """
    return event_id_for("alert", rule, subject, event_id)


def alert_id_for(rule: str, person_id: str, source: str, at: dt.datetime, bucket_s: int) -> str:
    """Deterministic id: rule + person + source + time bucket, for alerts of a timer (``not_seen``:
    ``at`` is the server-side due time of the timer, so the bucket is not a device's clock)."""
    bucket = int(at.timestamp()) // max(bucket_s, 1)
    digest = hashlib.sha256(f"{rule}\x1f{person_id}\x1f{source}\x1f{bucket}".encode()).hexdigest()
    return digest[:32]


# --- the responsible staff: cases, notifications, acknowledgements ---------------------------------


class CaseState(enum.StrEnum):
    """The lifecycle of an alert's case (the alert itself never changes)."""

    PENDING_CONFIRMATION = "pending_confirmation"  # a two-person registry: waiting for two operators
    OPEN = "open"  # routed, first notification not made yet (group_wait) or nobody to notify
    NOTIFIED = "notified"
    ESCALATED = "escalated"  # level > 0, still unacknowledged
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Outcome(enum.StrEnum):
    ASSISTED = "assisted"
    PERSON_OK = "person_ok"
    FALSE_MATCH = "false_match"
    NOT_FOUND = "not_found"
    OTHER = "other"


class Notification(_Event):
    """One message to one staff member through one channel about one alert (``gridwatch.notifications``).

    ``notification_id`` is deterministic (alert, staff, channel, level, repeat): consumers dedupe on it.
    ``ack_url`` is that staff member's one-click acknowledgement link: a capability, never logged.
    """

    schema_: Literal["gridwatch.notification/v1"] = Field(default="gridwatch.notification/v1", alias="schema")
    notification_id: str = Field(max_length=64)
    alert_id: str = Field(max_length=255)
    staff_id: str = Field(max_length=64)
    staff_name: str = Field(max_length=200)
    channel: str = Field(max_length=64)
    level: int = Field(ge=0, le=100, description="0: the first notification; n: escalation step n.")
    repeat: int = Field(default=0, ge=0, description="0: the first at this level; n: the n-th reminder.")
    created_at: dt.datetime
    rule: str
    kind: str | None = None
    severity: Severity
    person_id: str | None
    registry: str | None
    source: str
    grid: str | None
    explanation: str
    alert_created_at: dt.datetime
    ack_url: str | None = Field(default=None, description="One-click acknowledgement link for this staff member.")
    linked_to: str | None = Field(default=None, description="An earlier case of the same person still open.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


CASE_EVENT_TYPES = {
    "notified": "gridwatch.alert.notified.v1",
    "acknowledged": "gridwatch.alert.acknowledged.v1",
    "escalated": "gridwatch.alert.escalated.v1",
    "resolved": "gridwatch.alert.resolved.v1",
    "confirmed": "gridwatch.alert.confirmed.v1",
    "commented": "gridwatch.alert.commented.v1",
}


class CaseEvent(_Event):
    """One transition of a case (``gridwatch.alert-events``, keyed like the alert)."""

    schema_: Literal["gridwatch.alert-event/v1"] = Field(default="gridwatch.alert-event/v1", alias="schema")
    event_id: str = Field(max_length=64)
    type: str = Field(description="CloudEvents type, e.g. gridwatch.alert.acknowledged.v1.")
    alert_id: str = Field(max_length=255)
    key: str = Field(description="The alert's partition key (person id, or source:<id>).")
    state: CaseState = Field(description="The case's state after the transition.")
    level: int = Field(ge=0)
    at: dt.datetime
    actor: str = Field(max_length=64, description="Staff id, operator, or `gridwatch` for the service's own steps.")
    channel: str | None = Field(
        default=None, max_length=64, description="Where the step came from (api, link, kafka...)."
    )
    comment: str | None = Field(default=None, max_length=2000)
    outcome: Outcome | None = None
    recipients: list[str] = Field(default_factory=list, description="Staff notified by this step.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)


class AckMessage(_Event):
    """What a push gateway produces to ``gridwatch.acks``: staff ``staff_id`` acknowledges ``alert_id``."""

    alert_id: str = Field(min_length=1, max_length=255)
    staff_id: str = Field(min_length=1, max_length=64)
    at: dt.datetime | None = Field(default=None, description="When the person acknowledged (informative).")
    comment: str | None = Field(default=None, max_length=2000)


def notification_id_for(alert_id: str, staff_id: str, channel: str, level: int, repeat: int) -> str:
    return event_id_for("notification", alert_id, staff_id, channel, str(level), str(repeat))
