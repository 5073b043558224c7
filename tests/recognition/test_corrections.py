"""Corrections registries (Community Corrections Law art. 29): an approval per entry, matched only within it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.registries import RegistryConfig
from recognition.analyzer import normalize
from recognition.approvals import Approval, ApprovalError, approval_from, parse_instant
from recognition.registries import Registries
from recognition.store import RegistryStore
from tests.support.db import Databases

CORRECTIONS = RegistryConfig(
    name="corr",
    kind="corrections",
    purpose="community corrections supervision",
    legal_basis="Community Corrections Law art. 29",
    retention_days=365,
    threshold=0.5,
)
WATCH = RegistryConfig(name="watch", purpose="test registry", legal_basis="test fixture", retention_days=30)
START = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


class Clock:
    """The injected clock: tests move it, nothing sleeps."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def approval(start: dt.datetime = START, days: float = 92, doc: str = "JZ-2027-001") -> Approval:
    return Approval(doc, "county bureau of justice", 3, start, start + dt.timedelta(days=days))


def unit(seed: int) -> npt.NDArray[np.float32]:
    return normalize(np.random.default_rng(seed).standard_normal((1, 512)).astype(np.float32))


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    with AuditLog(tmp_path / "audit.jsonl") as log:
        yield log


@pytest.fixture
def clock() -> Clock:
    return Clock(START + dt.timedelta(days=1))


@pytest.fixture
def registries(databases: Databases, audit: AuditLog, clock: Clock) -> Iterator[Registries]:
    store = RegistryStore(databases(), keys=databases.keys())
    registries = Registries([CORRECTIONS, WATCH], store, model_id="test@0", dim=512, audit=audit, clock=clock)
    registries.load()
    try:
        yield registries
    finally:
        store.close()


def audited(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_enrolment_without_an_approval_is_refused_and_leaves_nothing(registries: Registries) -> None:
    with pytest.raises(ApprovalError, match="corrections registry: enrolment needs an approval record"):
        registries.enroll("corr", "A", [("sha-a", unit(1)[0])], actor="t", now=START)
    assert registries.list_persons("corr", actor="t") == []
    assert registries.size("corr") == 0


def test_an_approval_on_another_kind_of_registry_is_refused(registries: Registries) -> None:
    with pytest.raises(ApprovalError, match="not a corrections registry"):
        registries.enroll("watch", "A", [("sha-a", unit(1)[0])], actor="t", approval=approval())


def test_an_entry_is_matched_within_its_approval_and_ignored_before_and_after(
    registries: Registries, clock: Clock
) -> None:
    vector = unit(2)
    person = registries.enroll("corr", "A", [("sha-a", vector[0])], actor="t", now=START, approval=approval())

    clock.at = START + dt.timedelta(days=91, hours=23)
    assert [m.person_id for m in registries.match(vector, "cam-1")[0]] == [person.person_id]
    clock.at = START + dt.timedelta(days=92)  # `end` itself: the approval has run out
    assert registries.match(vector, "cam-1") == [[]]
    clock.at = START - dt.timedelta(seconds=1)  # before `start`
    assert registries.match(vector, "cam-1") == [[]]
    # A restart (windows read from the store) keeps it so.
    clock.at = START + dt.timedelta(days=100)
    registries.load()
    assert registries.match(vector, "cam-1") == [[]]
    clock.at = START + dt.timedelta(days=10)
    assert [m.person_id for m in registries.match(vector, "cam-1")[0]] == [person.person_id]


@pytest.mark.parametrize(
    ("days", "accepted"),
    [(92, True), (92.0001, False), (93, False), (0, False), (-1, False)],
)
def test_an_approval_longer_than_92_days_is_refused(registries: Registries, days: float, accepted: bool) -> None:
    if accepted:
        registries.enroll("corr", "A", [("sha-a", unit(3)[0])], actor="t", approval=approval(days=days))
        assert registries.size("corr") == 1
        return
    with pytest.raises(ApprovalError, match="end: "):
        registries.enroll("corr", "A", [("sha-a", unit(3)[0])], actor="t", approval=approval(days=days))
    assert registries.size("corr") == 0


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"situation_code": 0}, "situation_code"),
        ({"situation_code": 6}, "situation_code"),
        ({"situation_code": "x"}, "situation_code"),
        ({"approval_doc": " "}, "approval_doc"),
        ({"approver": "x" * 201}, "approver"),
        ({"start": "2027-01-01T08:00"}, "start: a time needs its offset"),
        ({"end": "soon"}, "end: not an ISO 8601"),
        ({"end": None}, "missing end"),
    ],
)
def test_approval_fields_are_checked(fields: dict[str, object], problem: str) -> None:
    values: dict[str, object] = {
        "approval_doc": "JZ-1",
        "approver": "bureau",
        "situation_code": "2",
        "start": "2027-01-01",
        "end": "2027-04-03",
    }
    values.update(fields)
    with pytest.raises(ApprovalError, match=problem):
        approval_from(values)


def test_dates_are_midnight_utc_and_times_keep_their_offset() -> None:
    assert parse_instant("2027-01-01", what="start") == START
    assert parse_instant("2027-01-01T08:00+08:00", what="start") == START
    parsed = approval_from(
        {"approval_doc": "d", "approver": "a", "situation_code": "5", "start": "2027-01-01", "end": "2027-04-03"}
    )
    assert parsed is not None
    assert parsed.end - parsed.start == dt.timedelta(days=92)
    assert approval_from({}) is None


def test_an_extension_is_a_new_audited_approval_and_the_first_stays_as_it_was(
    registries: Registries, clock: Clock, audit: AuditLog, tmp_path: Path
) -> None:
    vector = unit(4)
    person = registries.enroll("corr", "A", [("sha-a", vector[0])], actor="registrar", approval=approval())
    [first] = registries.approvals(person.person_id, actor="auditor")

    extension = approval(start=START + dt.timedelta(days=92), doc="JZ-2027-001-EXT")
    record = registries.extend_approval(person.person_id, extension, actor="registrar")

    records = registries.approvals(person.person_id, actor="auditor")
    assert [r.approval_id for r in records] == [first.approval_id, record.approval_id]
    assert records[0] == first  # never an edit of `end`
    assert record.supersedes == first.approval_id
    clock.at = START + dt.timedelta(days=150)  # past the first, within the extension
    assert [m.person_id for m in registries.match(vector, "cam-1")[0]] == [person.person_id]
    clock.at = START + dt.timedelta(days=184)
    assert registries.match(vector, "cam-1") == [[]]
    with pytest.raises(ApprovalError, match="end: at most 92 days"):
        registries.extend_approval(person.person_id, approval(days=120), actor="registrar")

    events = [(e["action"], e["actor"]) for e in audited(tmp_path / "audit.jsonl")]
    assert events == [
        ("registry.enroll", "registrar"),
        ("registry.approval.add", "registrar"),
        ("registry.approval.read", "auditor"),
        ("registry.approval.extend", "registrar"),
        ("registry.approval.read", "auditor"),
    ]
    extend = next(e for e in audited(tmp_path / "audit.jsonl") if e["action"] == "registry.approval.extend")
    assert extend["details"]["supersedes"] == first.approval_id  # type: ignore[index]
    assert "A" not in json.dumps(extend["details"])  # never the name


def test_an_extension_made_by_another_process_is_seen_by_the_service(
    databases: Databases, audit: AuditLog, clock: Clock, registries: Registries
) -> None:
    vector = unit(5)
    person = registries.enroll("corr", "A", [("sha-a", vector[0])], actor="t", approval=approval())
    cli_store = RegistryStore(databases(), keys=databases.keys())
    try:
        cli = Registries([CORRECTIONS, WATCH], cli_store, model_id="test@0", dim=512, audit=audit, clock=clock)
        cli.load()
        cli.extend_approval(person.person_id, approval(start=START + dt.timedelta(days=92)), actor="cli")
    finally:
        cli_store.close()
    clock.at = START + dt.timedelta(days=100)
    assert [m.person_id for m in registries.match(vector, "cam-1")[0]] == [person.person_id]


def test_erasing_an_entry_erases_its_approvals(registries: Registries, databases: Databases) -> None:
    person = registries.enroll("corr", "A", [("sha-a", unit(6)[0])], actor="t", approval=approval())
    registries.remove(person.person_id, actor="t")
    store = RegistryStore(databases(), keys=databases.keys())
    try:
        assert store.approvals(person.person_id) == []
    finally:
        store.close()


def test_rules_read_the_approval_windows_with_the_conditions(registries: Registries, databases: Databases) -> None:
    corr = registries.enroll("corr", "A", [("sha-a", unit(7)[0])], actor="t", approval=approval())
    watch = registries.enroll("watch", "B", [("sha-b", unit(8)[0])], actor="t")
    registries.extend_approval(corr.person_id, approval(start=START + dt.timedelta(days=92)), actor="t")
    store = RegistryStore(databases(), keys=databases.keys())
    try:
        entry = store.conditions(corr.person_id)
        assert entry is not None
        assert entry.approvals == (
            (START, START + dt.timedelta(days=92)),
            (START + dt.timedelta(days=92), START + dt.timedelta(days=184)),
        )
        assert not entry.ignored_at(START + dt.timedelta(days=100))
        assert entry.ignored_at(START + dt.timedelta(days=184))
        [listed] = store.persons(["corr"])
        assert listed == entry
        other = store.conditions(watch.person_id)
        assert other is not None
        assert other.approvals is None
        assert not other.ignored_at(START + dt.timedelta(days=1000))
    finally:
        store.close()
