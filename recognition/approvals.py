"""Approval records of corrections registries (Community Corrections Law art. 29).

An entry of a ``kind: corrections`` registry rests on an approval: the approval document's number, who
approved, the art. 29 situation (code 1 to 5) and the period, at most ``MAX_APPROVAL_DAYS`` long. The
entry is matched only while one of its approvals runs (``start <= now < end``); before its start and
after its end it is ignored (no match, so no sighting and no alert). Records are never edited: an
extension is a new approval that names the one it extends (``supersedes``), checked like the first.

Rows live in the ``approvals`` table (``gridwatch.core.db.schema``), written in the caller's
transaction (the entry and its first approval commit together). Who reads or adds them is audited by
``recognition.registries.Registries``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, select

from gridwatch.core.config.registries import MAX_APPROVAL_DAYS, RegistryConfig
from gridwatch.core.db.schema import approvals as approvals_t

SITUATION_CODES = range(1, 6)
TEXT_MAX_LENGTH = 200


class ApprovalError(ValueError):
    """An approval is missing or invalid; nothing was enrolled or recorded. The message never quotes a value."""


@dataclass(frozen=True, slots=True)
class Approval:
    """What an approval says (as given by the registrar); ``check()`` before recording it."""

    approval_doc: str
    approver: str
    situation_code: int
    start: dt.datetime
    end: dt.datetime

    def check(self) -> Approval:
        """This approval if it is well formed, else ``ApprovalError`` saying which field and why."""
        for name in ("approval_doc", "approver"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip() or len(value) > TEXT_MAX_LENGTH:
                raise ApprovalError(f"{name}: 1 to {TEXT_MAX_LENGTH} characters needed")
        if isinstance(self.situation_code, bool) or self.situation_code not in SITUATION_CODES:
            raise ApprovalError("situation_code: an integer from 1 to 5 (Community Corrections Law art. 29)")
        for name in ("start", "end"):
            if getattr(self, name).tzinfo is None:
                raise ApprovalError(f"{name}: needs a time zone (an offset or Z)")
        if self.end <= self.start:
            raise ApprovalError("end: must be after start")
        if self.end - self.start > dt.timedelta(days=MAX_APPROVAL_DAYS):
            raise ApprovalError(
                f"end: at most {MAX_APPROVAL_DAYS} days after start (each approval lasts at most three months; "
                "an extension is a new approval)"
            )
        return self

    def covers(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class ApprovalRecord:
    """A recorded approval of one entry."""

    approval_id: str
    person_id: str
    registry: str
    approval: Approval
    supersedes: str | None
    recorded_at: dt.datetime
    recorded_by: str

    def audited(self) -> dict[str, Any]:
        """The record for the audit log: the approval's fields and ids, never the person's name."""
        return {
            "approval_id": self.approval_id,
            "registry": self.registry,
            "approval_doc": self.approval.approval_doc,
            "approver": self.approval.approver,
            "situation_code": self.approval.situation_code,
            "start": self.approval.start.isoformat(),
            "end": self.approval.end.isoformat(),
            "supersedes": self.supersedes,
        }


def check_fits(config: RegistryConfig, approval: Approval | None) -> None:
    """A corrections registry's enrolment needs an approval, any other registry's takes none (``ApprovalError``)."""
    if config.corrections and approval is None:
        raise ApprovalError(
            f"registry {config.name!r} is a corrections registry: enrolment needs an approval record "
            "(approval_doc, approver, situation_code 1-5, start, end at most 92 days after start)"
        )
    if not config.corrections and approval is not None:
        raise ApprovalError(f"registry {config.name!r} is not a corrections registry: it takes no approval record")


# A window during which an entry may be matched: (start, end), end excluded.
Window = tuple[dt.datetime, dt.datetime]


def covered(windows: Iterable[Window], at: dt.datetime) -> bool:
    return any(start <= at < end for start, end in windows)


def parse_instant(value: str, *, what: str) -> dt.datetime:
    """An ISO 8601 instant with its offset (``2026-12-01T08:00+08:00``), or a date: 00:00 UTC of that day."""
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApprovalError(f"{what}: not an ISO 8601 date or time") from None
    if parsed.tzinfo is None:
        raise ApprovalError(f"{what}: a time needs its offset (e.g. +08:00 or Z)")
    return parsed.astimezone(dt.UTC)


def approval_from(values: Mapping[str, Any], *, what: str = "") -> Approval | None:
    """An approval from the five fields (strings as typed, or values); None when none is given.

    Some but not all given is ``ApprovalError`` naming the missing ones.
    """
    names = ("approval_doc", "approver", "situation_code", "start", "end")
    given = {name: values.get(name) for name in names if values.get(name) not in (None, "")}
    if not given:
        return None
    missing = [name for name in names if name not in given]
    if missing:
        raise ApprovalError(f"{what}approval incomplete: missing {', '.join(missing)}")
    code = given["situation_code"]
    try:
        situation = code if isinstance(code, int) else int(str(code))
    except ValueError:
        raise ApprovalError("situation_code: an integer from 1 to 5") from None
    start, end = given["start"], given["end"]
    return Approval(
        approval_doc=str(given["approval_doc"]),
        approver=str(given["approver"]),
        situation_code=situation,
        start=start if isinstance(start, dt.datetime) else parse_instant(str(start), what="start"),
        end=end if isinstance(end, dt.datetime) else parse_instant(str(end), what="end"),
    ).check()


# --- rows (inside the store's transactions) --------------------------------------------------------


def insert_in(
    conn: Connection,
    *,
    person_id: str,
    registry: str,
    approval: Approval,
    supersedes: str | None,
    now: dt.datetime,
    actor: str,
) -> ApprovalRecord:
    record = ApprovalRecord(
        approval_id="ap_" + secrets.token_hex(8),
        person_id=person_id,
        registry=registry,
        approval=approval.check(),
        supersedes=supersedes,
        recorded_at=now,
        recorded_by=actor,
    )
    seq = conn.execute(select(func.count()).select_from(approvals_t).where(approvals_t.c.person_id == person_id))
    conn.execute(
        approvals_t.insert().values(
            approval_id=record.approval_id,
            person_id=person_id,
            seq=int(seq.scalar_one()) + 1,
            registry=registry,
            approval_doc=approval.approval_doc,
            approver=approval.approver,
            situation_code=approval.situation_code,
            start=approval.start,
            end=approval.end,
            supersedes=supersedes,
            recorded_at=now,
            recorded_by=actor,
        )
    )
    return record


def of_person(conn: Connection, person_id: str) -> list[ApprovalRecord]:
    """A person's approvals, oldest first."""
    c = approvals_t.c
    rows = conn.execute(select(approvals_t).where(c.person_id == person_id).order_by(c.seq)).all()
    return [_record(row) for row in rows]


def windows_of_registries(conn: Connection, registries: Sequence[str]) -> dict[str, dict[str, list[Window]]]:
    """Registry → person → the windows of their approvals (only what matching needs)."""
    if not registries:
        return {}
    c = approvals_t.c
    rows = conn.execute(select(c.registry, c.person_id, c.start, c.end).where(c.registry.in_(sorted(registries)))).all()
    out: dict[str, dict[str, list[Window]]] = {name: {} for name in registries}
    for row in rows:
        out[row.registry].setdefault(row.person_id, []).append((row.start, row.end))
    return out


def _record(row: Row[Any]) -> ApprovalRecord:
    return ApprovalRecord(
        approval_id=row.approval_id,
        person_id=row.person_id,
        registry=row.registry,
        approval=Approval(row.approval_doc, row.approver, int(row.situation_code), row.start, row.end),
        supersedes=row.supersedes,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
    )
