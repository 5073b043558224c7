"""Per-person conditions in the registry store, and the store as the rules' ``PersonDirectory``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import event

from gridwatch.core.interfaces import PersonDirectory
from gridwatch.core.persons import PersonConditions
from recognition.store import Person, RegistryStore
from tests.support.db import Databases

NOW = dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
MODEL = "test@0"


def vector(seed: int) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(databases: Databases) -> Iterator[RegistryStore]:
    store = RegistryStore(databases(), keys=databases.keys())
    yield store
    store.close()


def enrol(store: RegistryStore, registry: str = "watch", minutes: int = 0, **conditions: Any) -> Person:
    person, _ = store.add_person(
        registry=registry,
        display_name="Someone",
        model_id=MODEL,
        embeddings=[(f"{minutes:064x}", vector(minutes))],
        now=NOW + dt.timedelta(minutes=minutes),
        expires_at=NOW + dt.timedelta(days=30),
        **conditions,
    )
    return person


def test_conditions_are_stored_with_the_entry(store: RegistryStore) -> None:
    person = enrol(
        store,
        home_sources=["gate-north", "lobby-b3", "gate-north"],  # a repeat is dropped, the order kept
        allowed_zones=["estate-north"],
        allowed_hours="night",
        case_ref="2026-WS-0173",
    )
    expected = PersonConditions(
        person.person_id, "watch", NOW, ("gate-north", "lobby-b3"), ("estate-north",), "night", "2026-WS-0173"
    )
    assert person.conditions == expected
    assert store.conditions(person.person_id) == expected
    stored = store.get(person.person_id)
    assert stored is not None
    assert stored.conditions == expected
    assert stored.embeddings == 1
    (listed,) = store.list_persons("watch")
    assert listed == person


def test_an_entry_without_conditions(store: RegistryStore) -> None:
    person = enrol(store)
    assert store.conditions(person.person_id) == PersonConditions(person.person_id, "watch", NOW)
    assert (person.home_sources, person.allowed_zones, person.allowed_hours, person.case_ref) == ((), (), None, None)


@pytest.mark.parametrize(
    ("conditions", "reason"),
    [
        pytest.param({"case_ref": "Zhang San, restraining order"}, "case reference", id="case-ref-free-text"),
        pytest.param({"case_ref": "张三"}, "case reference", id="case-ref-not-ascii"),
        pytest.param({"case_ref": "C" * 65}, "case reference", id="case-ref-too-long"),
        pytest.param({"case_ref": ""}, "case reference", id="case-ref-empty"),
        pytest.param({"home_sources": ["*"]}, "home source", id="home-wildcard"),
        pytest.param({"allowed_zones": ["north side"]}, "zone", id="zone-with-space"),
        pytest.param({"allowed_hours": "night shift"}, "schedule", id="hours-with-space"),
    ],
)
def test_conditions_of_the_wrong_form_are_refused(
    databases: Databases, store: RegistryStore, conditions: dict[str, Any], reason: str
) -> None:
    other = RegistryStore(databases(), keys=databases.keys())
    version = other.data_version()
    with pytest.raises(ValueError, match=reason) as refused:
        enrol(store, **conditions)
    for value in conditions.values():
        assert not value or str(value) not in str(refused.value)  # never echoed: it may be a note about a person
    assert store.list_persons() == []
    assert other.data_version() == version


def test_update_sets_clears_and_keeps(databases: Databases, store: RegistryStore) -> None:
    person = enrol(store, home_sources=["gate-north"], allowed_hours="night", case_ref="C-1")
    pid = person.person_id

    change = store.update_conditions(pid, allowed_zones=["estate-north", "lobbies"], case_ref="C-2")
    assert change is not None
    assert change.changed == ("allowed_zones", "case_ref")
    assert change.before == person.conditions
    assert change.after == PersonConditions(
        pid, "watch", NOW, ("gate-north",), ("estate-north", "lobbies"), "night", "C-2"
    )
    assert store.conditions(pid) == change.after

    change = store.update_conditions(pid, home_sources=[], clear_allowed_hours=True, clear_case_ref=True)
    assert change is not None
    assert change.changed == ("home_sources", "allowed_hours", "case_ref")
    assert store.conditions(pid) == PersonConditions(pid, "watch", NOW, (), ("estate-north", "lobbies"))
    assert store.get(pid) == Person(
        pid, "watch", "Someone", NOW, NOW + dt.timedelta(days=30), 1, allowed_zones=("estate-north", "lobbies")
    )


def test_a_change_moves_the_generation_and_a_no_op_does_not(databases: Databases, store: RegistryStore) -> None:
    person = enrol(store, allowed_zones=["estate-north"])
    service = RegistryStore(databases(), keys=databases.keys())  # another process
    version = service.data_version()

    change = store.update_conditions(person.person_id, allowed_zones=["estate-north"])
    assert change is not None
    assert change.changed == ()
    assert service.data_version() == version

    store.update_conditions(person.person_id, allowed_hours="night")
    assert service.data_version() != version
    assert store.data_version() == store.data_version()  # our own change is not "another process's"


def test_update_of_an_unknown_person_is_none(store: RegistryStore) -> None:
    assert store.update_conditions("p_0000000000000000", case_ref="C-1") is None


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"allowed_hours": "night", "clear_allowed_hours": True}, id="hours"),
        pytest.param({"case_ref": "C-1", "clear_case_ref": True}, id="case-ref"),
    ],
)
def test_set_and_clear_together_is_refused(store: RegistryStore, arguments: dict[str, Any]) -> None:
    person = enrol(store)
    with pytest.raises(ValueError, match="set or clear, not both"):
        store.update_conditions(person.person_id, **arguments)


def test_erasure_takes_the_conditions(store: RegistryStore) -> None:
    person = enrol(store, case_ref="C-1", allowed_zones=["estate-north"])
    store.remove_person(person.person_id)
    assert store.conditions(person.person_id) is None
    assert store.persons(["watch"]) == []


def test_persons_of_registries_in_enrolment_order(store: RegistryStore) -> None:
    second = enrol(store, "watch", minutes=2, allowed_hours="night")
    first = enrol(store, "watch", minutes=1)
    other = enrol(store, "missing", minutes=3, home_sources=["lobby-b3"])
    assert store.persons(["watch"]) == [first.conditions, second.conditions]
    assert store.persons({"missing", "watch"}) == [other.conditions, first.conditions, second.conditions]
    assert store.persons(["nobody"]) == []
    assert store.persons([]) == []


def test_the_directory_reads_one_statement_and_no_embeddings(databases: Databases) -> None:
    database = databases()
    directory: PersonDirectory = RegistryStore(database)  # the port rules are given
    person = enrol(RegistryStore(database, keys=databases.keys()), case_ref="C-1")
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        assert directory.conditions(person.person_id) == person.conditions
        assert directory.persons(["watch"]) == [person.conditions]
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]  # not SQLite's BEGIN IMMEDIATE
    assert len(queries) == 2
    assert not any("embeddings" in query for query in queries)
