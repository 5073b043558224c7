"""Rule state that survives a restart: cooldowns, absence timers, recent passes.

The rows live in the one database (``gridwatch.core.db``) and carry the Kafka partition of the
person they belong to (0 while stages run in one process), so a new owner of a partition can load them.
Every method is one short transaction; the database layer retries a database that drops.

Ownership: by default this state acts for every row (one process). A rule worker of a consumer group
is told by ``own``/``disown`` which partitions it owns and how a key maps to its partition; from then
on it writes each row with its key's partition, and only the owned partitions' timers are armed, due
and counted here. Cooldowns and pass lists are read by key while an owned partition's event is handled,
so they need no filter.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Select, func, select

from gridwatch.core.db import Database
from gridwatch.core.db.schema import cooldowns, rule_passes, rule_timers
from gridwatch.core.db.sql import insert

if TYPE_CHECKING:
    from gridwatch.core.interfaces import PersonErasure

T = TypeVar("T")

# The row of ``rule_timers`` that remembers when a rule first applied (person ids never look like this).
RULE_START_ROW = "*"


@dataclass(frozen=True, slots=True)
class Cooldown:
    last_alert_at: dt.datetime
    severity_rank: int
    suppressed: int
    alert_id: str | None = None
    delivered_at: dt.datetime | None = None

    @property
    def waiting_for_delivery(self) -> bool:
        """The alert behind the cooldown has not reached any sink yet."""
        return self.alert_id is not None and self.delivered_at is None

    @property
    def running_since(self) -> dt.datetime | None:
        """When the cooldown started: the delivery (rows from before delivery tracking: the alert)."""
        if self.delivered_at is not None:
            return self.delivered_at
        return self.last_alert_at if self.alert_id is None else None


@dataclass(frozen=True, slots=True)
class AbsenceTimer:
    rule: str
    person_id: str
    started_at: dt.datetime
    last_seen_at: dt.datetime | None
    last_seen_source: str | None
    due_at: dt.datetime | None
    fired: int


@dataclass(frozen=True, slots=True)
class Pass:
    """One pass of a subject at a source (a track, a gate event, or sightings close in time)."""

    at: dt.datetime
    source: str
    track: str | None = None

    def to_json(self) -> list[object]:
        return [self.at.timestamp(), self.source, self.track]

    @classmethod
    def from_json(cls, item: list[object]) -> Pass:
        at, source, track = item
        assert isinstance(at, (int, float))
        assert isinstance(source, str)
        return cls(dt.datetime.fromtimestamp(at, dt.UTC), source, track if isinstance(track, str) else None)


class RuleState:
    """Thread-safe. ``open()`` opens (and migrates) the shared database; ``close()`` only ends this user."""

    def __init__(self, database: Database, *, partition: int = 0) -> None:
        self._db = database
        self._partition = partition
        # None: this state acts for every partition (one process). Swapped whole, read by worker threads.
        self._owned: frozenset[int] | None = None
        self._partition_of: Callable[[str], int] | None = None
        self._retagged = False
        self._open = False
        self._batch = threading.local()  # the connection of a ``batch`` running in this thread

    @property
    def database(self) -> Database:
        return self._db

    def open(self) -> None:
        self._db.open()
        self._open = True

    def close(self) -> None:
        """Idempotent; the database itself is closed by its owner."""
        self._open = False

    # -- partition ownership -----------------------------------------------------------------------

    @property
    def owned(self) -> frozenset[int] | None:
        """The partitions this state acts for; ``None``: all of them (one process)."""
        return self._owned

    def partition_of(self, key: str) -> int:
        """The partition a row of ``key`` (a person, or a stranger rule's subject) belongs to."""
        return self._partition if self._partition_of is None else self._partition_of(key)

    def owns(self, key: str) -> bool:
        owned = self._owned
        return owned is None or self.partition_of(key) in owned

    def own(self, partitions: frozenset[int], partition_of: Callable[[str], int]) -> None:
        """Act for these partitions too. The first time, timers written by one process (all tagged with
        one partition) are tagged with their person's partition, so that their owner finds them."""
        self._partition_of = partition_of
        if not self._retagged:
            self.retag_timers()
            self._retagged = True
        self._owned = (self._owned or frozenset()) | partitions

    def disown(self, partitions: frozenset[int]) -> None:
        """Stop acting for these partitions (their timers are no longer armed, due or counted here)."""
        self._owned = (self._owned or frozenset()) - partitions

    def retag_timers(self) -> int:
        """Tag every timer with its person's partition (idempotent; every owner computes the same tags)."""
        t = rule_timers.c

        def retag(conn: Connection) -> int:
            rows = conn.execute(select(t.rule, t.person_id, t.partition).where(t.person_id != RULE_START_ROW)).all()
            moved = 0
            for rule, person_id, partition in rows:
                wanted = self.partition_of(person_id)
                if partition != wanted:
                    stmt = rule_timers.update().where(t.rule == rule, t.person_id == person_id).values(partition=wanted)
                    conn.execute(stmt)
                    moved += 1
            return moved

        return self._run(retag, "rule timers retag")

    def _owned_timers(self, query: Select[Any]) -> Select[Any] | None:
        """``query`` limited to the owned partitions' timers; None when nothing is owned."""
        owned = self._owned
        if owned is None:
            return query
        if not owned:
            return None
        return query.where(rule_timers.c.partition.in_(sorted(owned)))

    # -- cooldowns ---------------------------------------------------------------------------------

    def cooldown(self, rule: str, subject: str) -> Cooldown | None:
        c = cooldowns.c
        query = select(c.last_alert_at, c.severity_rank, c.suppressed, c.alert_id, c.delivered_at).where(
            c.rule == rule, c.person_id == subject
        )
        row = self._run(lambda conn: conn.execute(query).first(), "rule state read")
        return None if row is None else Cooldown(row[0], int(row[1]), int(row[2]), row[3], row[4])

    def record_alert(
        self,
        rule: str,
        subject: str,
        at: dt.datetime,
        severity_rank: int,
        *,
        alert_id: str | None = None,
        delivered: bool = False,
    ) -> None:
        """Start a cooldown with this alert; it runs from delivery (``delivered``: from ``at``)."""

        def upsert(conn: Connection) -> None:
            stmt = insert(conn, cooldowns).values(
                rule=rule,
                person_id=subject,
                partition=self.partition_of(subject),
                last_alert_at=at,
                severity_rank=severity_rank,
                suppressed=0,
                alert_id=alert_id,
                delivered_at=at if delivered else None,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[cooldowns.c.rule, cooldowns.c.person_id],
                    set_={
                        "partition": stmt.excluded.partition,
                        "last_alert_at": stmt.excluded.last_alert_at,
                        "severity_rank": stmt.excluded.severity_rank,
                        "suppressed": 0,
                        "alert_id": stmt.excluded.alert_id,
                        "delivered_at": stmt.excluded.delivered_at,
                    },
                )
            )

        self._run(upsert, "rule state write")

    def mark_delivered(self, alert_id: str, at: dt.datetime) -> None:
        """A sink took the alert: its cooldown starts now (only the first delivery counts)."""
        stmt = (
            cooldowns.update()
            .where(cooldowns.c.alert_id == alert_id, cooldowns.c.delivered_at.is_(None))
            .values(delivered_at=at)
        )
        self._run(lambda conn: conn.execute(stmt), "rule state write")

    def clear(self, rule: str, subject: str) -> None:
        stmt = cooldowns.delete().where(cooldowns.c.rule == rule, cooldowns.c.person_id == subject)
        self._run(lambda conn: conn.execute(stmt), "rule state write")

    def record_suppressed(self, rule: str, subject: str) -> None:
        stmt = (
            cooldowns.update()
            .where(cooldowns.c.rule == rule, cooldowns.c.person_id == subject)
            .values(suppressed=cooldowns.c.suppressed + 1)
        )
        self._run(lambda conn: conn.execute(stmt), "rule state write")

    # -- absence timers ----------------------------------------------------------------------------

    def rule_started_at(self, rule: str, now: dt.datetime) -> dt.datetime:
        """When the rule first applied on this site (recorded now if it never did)."""

        def get_or_set(conn: Connection) -> dt.datetime:
            t = rule_timers.c
            query = select(t.started_at).where(t.rule == rule, t.person_id == RULE_START_ROW)
            row = conn.execute(query).first()
            if row is not None:
                started: dt.datetime = row[0]
                return started
            conn.execute(
                insert(conn, rule_timers)
                .values(rule=rule, person_id=RULE_START_ROW, partition=self._partition, started_at=now)
                .on_conflict_do_nothing(index_elements=[t.rule, t.person_id])
            )
            return now

        return self._run(get_or_set, "rule state write")

    def timer_persons(self, rule: str) -> set[str]:
        """Persons with a timer of ``rule``, in the owned partitions."""
        t = rule_timers.c
        query = self._owned_timers(select(t.person_id).where(t.rule == rule, t.person_id != RULE_START_ROW))
        if query is None:
            return set()
        owned_query = query
        return self._run(lambda conn: {row[0] for row in conn.execute(owned_query)}, "rule state read")

    def arm_timers(self, rule: str, timers: Sequence[tuple[str, dt.datetime, dt.datetime]]) -> None:
        """Start absence timers ``(person, started_at, due_at)`` that do not exist yet."""
        if not timers:
            return

        def arm(conn: Connection) -> None:
            rows = [
                {"rule": rule, "person_id": p, "partition": self.partition_of(p), "started_at": s, "due_at": d}
                for p, s, d in timers
            ]
            stmt = insert(conn, rule_timers).on_conflict_do_nothing(
                index_elements=[rule_timers.c.rule, rule_timers.c.person_id]
            )
            conn.execute(stmt, rows)

        self._run(arm, "rule state write")

    def restart_timer(self, rule: str, person_id: str, seen_at: dt.datetime, source: str, due_at: dt.datetime) -> None:
        """A sighting at a home source: the absence restarts (an older sighting than the last changes nothing)."""

        def upsert(conn: Connection) -> None:
            t = rule_timers.c
            stmt = insert(conn, rule_timers).values(
                rule=rule,
                person_id=person_id,
                partition=self.partition_of(person_id),
                started_at=seen_at,
                last_seen_at=seen_at,
                last_seen_source=source,
                due_at=due_at,
                fired=0,
            )
            newer = (t.last_seen_at.is_(None)) | (t.last_seen_at < seen_at)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[t.rule, t.person_id],
                    set_={
                        "started_at": seen_at,
                        "last_seen_at": seen_at,
                        "last_seen_source": source,
                        "due_at": due_at,
                        "fired": 0,
                    },
                    where=newer,
                )
            )

        self._run(upsert, "rule state write")

    def due_timers(self, now: dt.datetime, limit: int = 1000) -> list[AbsenceTimer]:
        """Timers due by ``now``, in the owned partitions."""
        t = rule_timers.c
        query = self._owned_timers(
            select(t.rule, t.person_id, t.started_at, t.last_seen_at, t.last_seen_source, t.due_at, t.fired).where(
                t.due_at.is_not(None), t.due_at <= now, t.person_id != RULE_START_ROW
            )
        )
        if query is None:
            return []
        owned_query = query.order_by(t.due_at).limit(limit)
        rows = self._run(lambda conn: conn.execute(owned_query).all(), "rule state read")
        return [AbsenceTimer(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]

    def next_due(self) -> dt.datetime | None:
        """The next due time of the owned partitions' timers."""
        t = rule_timers.c
        due = select(func.min(t.due_at)).where(t.due_at.is_not(None), t.person_id != RULE_START_ROW)
        query = self._owned_timers(due)
        if query is None:
            return None
        owned_query = query
        value: dt.datetime | None = self._run(lambda conn: conn.execute(owned_query).scalar(), "rule state read")
        return value

    def move_timer(self, timer: AbsenceTimer, *, due_at: dt.datetime | None, fired: int) -> bool:
        """Set the next due time of a timer that is still as ``timer`` saw it; False if a sighting moved it."""
        t = rule_timers.c
        stmt = (
            rule_timers.update()
            .where(t.rule == timer.rule, t.person_id == timer.person_id, t.due_at == timer.due_at)
            .values(due_at=due_at, fired=fired)
        )
        return self._run(lambda conn: conn.execute(stmt).rowcount == 1, "rule state write")

    def drop_timers(self, rule: str, person_ids: Sequence[str]) -> None:
        """Forget timers of persons the rule no longer applies to (removed, expired, other registry)."""
        if not person_ids:
            return
        t = rule_timers.c
        stmt = rule_timers.delete().where(t.rule == rule, t.person_id.in_(list(person_ids)))
        self._run(lambda conn: conn.execute(stmt), "rule state write")

    def forget_persons(self, person_ids: Sequence[str]) -> None:
        """An erased person leaves no state: their cooldowns, timers and pass lists go (``PersonErasure``).

        Cooldowns and pass lists of the person kinds are keyed by the person id; a stranger's are keyed
        by a source and a random label and hold no person.
        """
        if not person_ids:
            return
        ids = list(person_ids)

        def forget(conn: Connection) -> None:
            conn.execute(cooldowns.delete().where(cooldowns.c.person_id.in_(ids)))
            conn.execute(rule_timers.delete().where(rule_timers.c.person_id.in_(ids)))
            conn.execute(rule_passes.delete().where(rule_passes.c.subject.in_(ids)))

        self._run(forget, "rule state erasure")

    # -- recent passes (counting kinds) -----------------------------------------------------------

    def passes(self, rule: str, subject: str) -> list[Pass]:
        p = rule_passes.c
        query = select(p.passes_json).where(p.rule == rule, p.subject == subject)
        raw = self._run(lambda conn: conn.execute(query).scalar(), "rule state read")
        return [] if raw is None else [Pass.from_json(item) for item in json.loads(raw)]

    def save_passes(self, rule: str, subject: str, passes: Sequence[Pass], at: dt.datetime) -> None:
        def upsert(conn: Connection) -> None:
            if not passes:
                conn.execute(rule_passes.delete().where(rule_passes.c.rule == rule, rule_passes.c.subject == subject))
                return
            stmt = insert(conn, rule_passes).values(
                rule=rule,
                subject=subject,
                partition=self.partition_of(subject),
                passes_json=json.dumps([item.to_json() for item in passes]),
                updated_at=at,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[rule_passes.c.rule, rule_passes.c.subject],
                    set_={"passes_json": stmt.excluded.passes_json, "updated_at": stmt.excluded.updated_at},
                )
            )

        self._run(upsert, "rule state write")

    def forget_passes_before(self, before: dt.datetime, *, rule: str | None = None) -> int:
        """Drop pass lists not updated since ``before`` (every kind's window is shorter than the caller's),
        of one rule or of all."""
        stmt = rule_passes.delete().where(rule_passes.c.updated_at < before)
        if rule is not None:
            stmt = stmt.where(rule_passes.c.rule == rule)
        return self._run(lambda conn: int(conn.execute(stmt).rowcount), "rule state write")

    def batch(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` with every state read and write it makes in one transaction (one commit, one sync).

        The engine evaluates one event in a batch: all rules see one consistent state, and the event's
        effects are stored together or not at all (a database that drops retries the whole event).
        """
        connection: Connection | None = getattr(self._batch, "connection", None)
        if connection is not None:
            return fn()  # already inside a batch of this thread

        def run(conn: Connection) -> T:
            self._batch.connection = conn
            try:
                return fn()
            finally:
                self._batch.connection = None

        return self._run(run, what)

    def _run(self, fn: Callable[[Connection], T], what: str) -> T:
        connection: Connection | None = getattr(self._batch, "connection", None)
        if connection is not None:
            return fn(connection)
        if not self._open:
            self.open()
        return self._db.transaction(fn, what=what)


if TYPE_CHECKING:

    def _is_a_person_erasure(state: RuleState) -> PersonErasure:
        return state  # mypy checks that the rule state implements the port the registry store is given
