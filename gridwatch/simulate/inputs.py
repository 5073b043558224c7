"""The simulator's input files: registry entries and events, one JSON object a line, checked against the config.

Every problem of both files is collected (not only the first) and reported as ``FILE:LINE: FIELD: reason``,
like config issues. Reasons quote config ids and person ids (pseudonymous) but never other values.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gridwatch.core.config.base import Identifier
from gridwatch.core.config.issues import format_key_path
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.events import Quality, Sighting, SourceKind, StrangerAttempt
from gridwatch.core.persons import PersonConditions
from gridwatch.wiring import rule_surroundings

MODEL = "simulation"
DEFAULT_SIMILARITY = 1.0
# Rules never read a sighting's quality; recognition would have passed the face through its gate.
PASSED_QUALITY = Quality(det_score=1.0, face_px=112.0)

Event = Sighting | StrangerAttempt
# The threshold a matched line must reach in a registry with this many entries in the entries file.
ThresholdOf = Callable[[RegistryConfig, int], float]


def utc_instant(value: object) -> dt.datetime:
    """An ISO 8601 string with a time zone, as an aware UTC datetime (``Z`` allowed); else ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError("invalid datetime: expected an ISO 8601 string with a time zone, e.g. 2026-11-22T08:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        # fromisoformat's message quotes the value; ours does not.
        raise ValueError("invalid datetime: expected ISO 8601 with a time zone, e.g. 2026-11-22T08:00:00Z") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("invalid datetime: no time zone (add Z or an offset such as +08:00)")
    return parsed.astimezone(dt.UTC)


UtcInstant = Annotated[dt.datetime, BeforeValidator(utc_instant)]


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


M = TypeVar("M", bound=_Line)


class EntryLine(_Line):
    """A registry entry as the rules see it (``PersonConditions``): no name, no photo."""

    person_id: Identifier
    registry: Identifier
    enrolled_at: UtcInstant
    home_sources: list[Identifier] = Field(default_factory=list)
    allowed_zones: list[Identifier] = Field(default_factory=list)
    allowed_hours: Identifier | None = None


class _EventLine(_Line):
    captured_at: UtcInstant
    source: Identifier


class MatchedLine(_EventLine):
    """A face that matched the person's entry."""

    person_id: Identifier
    similarity: float | None = Field(default=None, ge=-1.0, le=1.0)
    track_id: str | None = Field(default=None, min_length=1, max_length=64)


class StrangerLine(_EventLine):
    """A face that matched no registry; the label stands in for recognition's in-memory look-alike cluster."""

    stranger: str = Field(min_length=1, max_length=64)
    gate_event_id: str | None = Field(default=None, min_length=1, max_length=128)


class DeniedLine(_EventLine):
    """A gate's own failed verification, without a face gridwatch could search."""

    gate_verdict: Literal["denied"]
    gate_event_id: str | None = Field(default=None, min_length=1, max_length=128)


# The key that tells which kind of event a line is.
EVENT_KINDS: Mapping[str, type[_EventLine]] = {
    "person_id": MatchedLine,
    "stranger": StrangerLine,
    "gate_verdict": DeniedLine,
}


class AckLine(_Line):
    """Staff member ``by`` acknowledges the open alert of ``rule`` for ``person_id`` at ``at``."""

    at: UtcInstant
    rule: Identifier
    person_id: Identifier
    by: Identifier


@dataclass(frozen=True, slots=True)
class AckInput:
    at: dt.datetime
    rule: str
    person_id: str
    by: str
    where: str
    line: int


@dataclass(frozen=True, slots=True)
class InputProblem:
    where: str  # a file name, or a command-line option
    line: int | None
    field: str  # "" for the line as a whole
    reason: str

    def __str__(self) -> str:
        place = self.where if self.line is None else f"{self.where}:{self.line}"
        return ": ".join([place, self.field, self.reason] if self.field else [place, self.reason])


class SimulationInputError(Exception):
    """Input the simulation cannot run on; ``str()`` lists every problem, one a line."""

    def __init__(self, problems: Sequence[InputProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class SimulationInput:
    entries: list[PersonConditions]
    events: list[Event]  # in time order; each carries its line as its id ("line-7")


def read_inputs(
    config: GridwatchConfig, entries_path: Path, events_path: Path, *, thresholds: ThresholdOf | None = None
) -> SimulationInput:
    """Both files, parsed and checked against ``config`` and each other; ``SimulationInputError`` otherwise.

    ``thresholds``: what a matched line's similarity must reach per registry, given its entries here
    (``gridwatch.simulate.thresholds``: a `threshold: auto` one solved); the configured threshold without it.
    """
    problems: list[InputProblem] = []
    entries = _read_entries(config, entries_path, problems)
    by_person = {entry.person_id: (entry, line) for line, entry in entries}
    events: list[tuple[int, Event]] = []
    sizes = Counter(entry.registry for _, entry in entries)
    threshold_of = thresholds or (lambda registry, _size: registry.threshold)
    checker = _EventChecker(
        config, by_person, entries_path.name, {r.name: threshold_of(r, sizes[r.name]) for r in config.registries}
    )
    where = str(events_path)
    for line, data in _json_lines(events_path, problems):
        kinds = [key for key in EVENT_KINDS if key in data]
        if len(kinds) != 1:
            reason = (
                "needs one of person_id (a sighting), stranger (an unknown face) or gate_verdict (a gate's denial)"
                if not kinds
                else f"has {' and '.join(kinds)}: a line is one event, give only one of them"
            )
            problems.append(InputProblem(where, line, "", reason))
            continue
        parsed = _validate(EVENT_KINDS[kinds[0]], data, where, line, problems)
        if parsed is None:
            continue
        event = checker.event(parsed, where, line, problems)
        if event is not None:
            events.append((line, event))
    _check_order(events, where, problems)
    if problems:
        order = {str(entries_path): 0, str(events_path): 1}  # reading order: file, then line (stable)
        raise SimulationInputError(sorted(problems, key=lambda p: (order.get(p.where, 2), p.line or 0)))
    return SimulationInput(entries=[entry for _, entry in entries], events=[event for _, event in events])


def _read_entries(
    config: GridwatchConfig, path: Path, problems: list[InputProblem]
) -> list[tuple[int, PersonConditions]]:
    where = str(path)
    registries = {r.name for r in config.registries}
    checks = [
        ("home_sources", "source", config.source_ids()),
        ("allowed_zones", "zone", config.zone_ids()),
        ("allowed_hours", "schedule", config.schedule_ids()),
    ]
    first_line: dict[str, int] = {}
    entries: list[tuple[int, PersonConditions]] = []
    for line, data in _json_lines(path, problems):
        parsed = _validate(EntryLine, data, where, line, problems)
        if parsed is None:
            continue
        found: list[InputProblem] = []
        if parsed.person_id in first_line:
            found.append(
                InputProblem(
                    where,
                    line,
                    "person_id",
                    f"duplicate person {parsed.person_id!r} (first at line {first_line[parsed.person_id]})",
                )
            )
        if parsed.registry not in registries:
            found.append(InputProblem(where, line, "registry", _unknown("registry", parsed.registry, registries)))
        for key, what, known in checks:
            value = getattr(parsed, key)
            names = [value] if isinstance(value, str) else list(value or [])
            for index, name in enumerate(names):
                if name not in known:
                    field = key if isinstance(value, str) else format_key_path((key, index))
                    found.append(InputProblem(where, line, field, _unknown(what, name, known)))
        problems += found
        first_line.setdefault(parsed.person_id, line)
        if not found:
            entries.append(
                (
                    line,
                    PersonConditions(
                        person_id=parsed.person_id,
                        registry=parsed.registry,
                        enrolled_at=parsed.enrolled_at,
                        home_sources=tuple(dict.fromkeys(parsed.home_sources)),
                        allowed_zones=tuple(dict.fromkeys(parsed.allowed_zones)),
                        allowed_hours=parsed.allowed_hours,
                    ),
                )
            )
    return entries


class _EventChecker:
    """Turns a parsed line into the event recognition (or a gate) would have sent, or records why it could not."""

    def __init__(
        self,
        config: GridwatchConfig,
        persons: Mapping[str, tuple[PersonConditions, int]],
        entries_name: str,
        thresholds: Mapping[str, float],
    ) -> None:
        self._sources: Mapping[str, tuple[SourceKind, str | None]] = rule_surroundings(config)["sources"]
        self._registries = {r.name: r for r in config.registries}
        self._thresholds = thresholds
        self._persons = persons
        self._entries_name = entries_name

    def event(self, parsed: _EventLine, where: str, line: int, problems: list[InputProblem]) -> Event | None:
        if parsed.source not in self._sources:
            problems.append(InputProblem(where, line, "source", _unknown("source", parsed.source, self._sources)))
            return None
        kind, grid = self._sources[parsed.source]
        if isinstance(parsed, MatchedLine):
            return self._sighting(parsed, kind, grid, where, line, problems)
        if isinstance(parsed, DeniedLine) and kind is not SourceKind.GATE:
            problems.append(
                InputProblem(where, line, "gate_verdict", f"{parsed.source!r} is a camera: only a gate denies")
            )
            return None
        assert isinstance(parsed, StrangerLine | DeniedLine)
        return StrangerAttempt(
            attempt_id=f"line-{line}",
            source=parsed.source,
            source_kind=kind,
            captured_at=parsed.captured_at,
            received_at=parsed.captured_at,  # a simulation replays on the lines' clock
            cluster=parsed.stranger if isinstance(parsed, StrangerLine) else None,
            verdict="unmatched" if isinstance(parsed, StrangerLine) else "denied",
            gate_event_id=parsed.gate_event_id,
            grid=grid,
        )

    def _sighting(
        self,
        parsed: MatchedLine,
        kind: SourceKind,
        grid: str | None,
        where: str,
        line: int,
        problems: list[InputProblem],
    ) -> Sighting | None:
        known = self._persons.get(parsed.person_id)
        if known is None:
            problems.append(
                InputProblem(
                    where, line, "person_id", f"unknown person {parsed.person_id!r} (not in {self._entries_name})"
                )
            )
            return None
        entry, entry_line = known
        registry = self._registries[entry.registry]
        similarity = DEFAULT_SIMILARITY if parsed.similarity is None else parsed.similarity
        # Recognition makes no sighting of these; a rule set checked on them would be checked on fiction.
        if "*" not in registry.sources and parsed.source not in registry.sources:
            searched = ", ".join(registry.sources)
            reason = f"registry {registry.name!r} is not searched at {parsed.source!r} (its sources: {searched})"
            problems.append(InputProblem(where, line, "source", reason))
            return None
        threshold = self._thresholds[registry.name]
        if similarity < threshold:
            shown = f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:.4f}"
            reason = f"below the threshold {shown} of registry {registry.name!r}: no match"
            problems.append(InputProblem(where, line, "similarity", reason))
            return None
        if parsed.captured_at < entry.enrolled_at:
            reason = f"before the person's enrolment ({self._entries_name}:{entry_line})"
            problems.append(InputProblem(where, line, "captured_at", reason))
            return None
        return Sighting(
            sighting_id=f"line-{line}",
            source=parsed.source,
            source_kind=kind,
            captured_at=parsed.captured_at,
            received_at=parsed.captured_at,
            person_id=entry.person_id,
            registry=entry.registry,
            similarity=similarity,
            threshold=threshold,
            model=MODEL,
            quality=PASSED_QUALITY,
            track_id=parsed.track_id,
            grid=grid,
        )


def _check_order(events: list[tuple[int, Event]], where: str, problems: list[InputProblem]) -> None:
    previous: tuple[int, dt.datetime] | None = None
    for line, event in events:
        if previous is not None and event.captured_at < previous[1]:
            reason = (
                f"out of time order: {iso_utc(event.captured_at)} is before {iso_utc(previous[1])} (line {previous[0]})"
            )
            problems.append(InputProblem(where, line, "captured_at", reason))
        else:
            previous = (line, event.captured_at)


def _json_lines(path: Path, problems: list[InputProblem]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-blank line; problems for unreadable files and lines."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        problems.append(InputProblem(where, None, "", "cannot read: not UTF-8 text"))
        return
    except OSError as exc:
        problems.append(InputProblem(where, None, "", f"cannot read: {exc.strerror or type(exc).__name__}"))
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(InputProblem(where, number, "", f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(data, dict):
            problems.append(InputProblem(where, number, "", "expected a JSON object"))
            continue
        yield number, data


def _validate(model: type[M], data: dict[str, Any], where: str, line: int, problems: list[InputProblem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            reason = error["msg"].removeprefix("Value error, ")
            problems.append(InputProblem(where, line, format_key_path(tuple(error["loc"])), reason))
        return None


def _unknown(what: str, name: str, known: Collection[str]) -> str:
    return f"unknown {what} {name!r} (known: {', '.join(sorted(known)) or 'none'})"


def iso_utc(at: dt.datetime) -> str:
    """``2026-11-22T08:00:00Z``: ISO 8601 in UTC with Z."""
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def read_acks(config: GridwatchConfig, path: Path) -> list[AckInput]:
    """The acknowledgements file, checked against the config (rules, staff) and in time order."""
    problems: list[InputProblem] = []
    where = str(path)
    rules = {rule.id for rule in config.rules}
    staff = {person.id for person in config.staff}
    acks: list[AckInput] = []
    for line, data in _json_lines(path, problems):
        parsed = _validate(AckLine, data, where, line, problems)
        if parsed is None:
            continue
        if parsed.rule not in rules:
            problems.append(InputProblem(where, line, "rule", _unknown("rule", parsed.rule, rules)))
        elif parsed.by not in staff:
            problems.append(InputProblem(where, line, "by", _unknown("staff", parsed.by, staff)))
        elif acks and parsed.at < acks[-1].at:
            reason = f"out of time order: {iso_utc(parsed.at)} is before {iso_utc(acks[-1].at)} (line {acks[-1].line})"
            problems.append(InputProblem(where, line, "at", reason))
        else:
            acks.append(AckInput(parsed.at, parsed.rule, parsed.person_id, parsed.by, where, line))
    if problems:
        raise SimulationInputError(problems)
    return acks
