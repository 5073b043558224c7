"""Per-person conditions of a registry entry: where and when the person is expected, and why they are listed.

Conditions name config ids only (sources, zones, a schedule) plus an external case number: never free
text about a person. Rules read them through ``gridwatch.core.interfaces.PersonDirectory``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Config ids (sources, zones, schedules) and case references: the pattern of the config's ``Identifier``.
# For a case reference it means a case number like "2024-WS-0173", never a sentence or a name (no spaces,
# ASCII only), so that the field cannot become a free-text note about someone.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CONFIG_ID_MAX_LENGTH = 64
CASE_REF_MAX_LENGTH = 64

# The condition fields, in the order they are shown and audited.
CONDITION_FIELDS = ("home_sources", "allowed_zones", "allowed_hours", "case_ref")


@dataclass(frozen=True, slots=True)
class PersonConditions:
    """What rules need to know about an enrolled person besides the match: no name, no embedding."""

    person_id: str
    registry: str
    enrolled_at: dt.datetime  # UTC
    home_sources: tuple[str, ...] = ()  # cameras/gates where the person is expected (e.g. their building's)
    allowed_zones: tuple[str, ...] = ()  # zones the person may be in; empty: no zone condition
    allowed_hours: str | None = None  # a schedule id: when the person may be seen; None: no time condition
    case_ref: str | None = None  # external case number the entry rests on
    # An entry of a corrections registry: the (start, end) of each of its approvals; it is ignored outside them
    # (no match, no alert). None: an entry that rests on no approval record.
    approvals: tuple[tuple[dt.datetime, dt.datetime], ...] | None = None

    def ignored_at(self, at: dt.datetime) -> bool:
        """True when the entry rests on approvals and none of them runs at ``at`` (before start, from end on)."""
        return self.approvals is not None and not any(start <= at < end for start, end in self.approvals)

    def next_approval_start(self, at: dt.datetime) -> dt.datetime | None:
        """The start of the next approval after ``at`` (an extension recorded ahead), or None."""
        starts = [start for start, _ in self.approvals or () if start > at]
        return min(starts) if starts else None


def check_case_ref(value: str) -> str:
    """``value`` if it is a valid case reference, else ``ValueError`` (the message never quotes it)."""
    if not 0 < len(value) <= CASE_REF_MAX_LENGTH or _ID.fullmatch(value) is None:
        raise ValueError(
            f"a case reference is 1 to {CASE_REF_MAX_LENGTH} ASCII letters, digits, '-', '_' or '.', "
            "starting with a letter or digit (a case number, never a note about the person)"
        )
    return value


def check_config_id(what: str, value: str) -> str:
    """``value`` if it has the form of a config id, else ``ValueError`` naming ``what`` (not the value)."""
    if not 0 < len(value) <= CONFIG_ID_MAX_LENGTH or _ID.fullmatch(value) is None:
        raise ValueError(f"{what}: not a valid id (1 to {CONFIG_ID_MAX_LENGTH} ASCII letters, digits, '-', '_' or '.')")
    return value


def check_config_ids(what: str, values: Iterable[str]) -> tuple[str, ...]:
    """``values`` as a tuple without repeats (order kept) if each has the form of a config id."""
    return tuple(dict.fromkeys(check_config_id(what, value) for value in values))
