"""Rule state that survives a restart: last alert per (rule, person), suppressed counts.

The rows live in the one database (``gridwatch.core.db``) and carry the Kafka partition of the
person they belong to (0 while stages run in one process), so a new owner of a partition can load them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, select

from gridwatch.core.db import Database
from gridwatch.core.db.schema import cooldowns
from gridwatch.core.db.sql import insert

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cooldown:
    last_alert_at: dt.datetime
    severity_rank: int
    suppressed: int


class RuleState:
    """Thread-safe. ``open()`` opens (and migrates) the shared database; ``close()`` only ends this user."""

    def __init__(self, database: Database, *, partition: int = 0) -> None:
        self._db = database
        self._partition = partition
        self._open = False

    @property
    def database(self) -> Database:
        return self._db

    def open(self) -> None:
        self._db.open()
        self._open = True

    def close(self) -> None:
        """Idempotent; the database itself is closed by its owner."""
        self._open = False

    def cooldown(self, rule: str, person_id: str) -> Cooldown | None:
        query = select(cooldowns.c.last_alert_at, cooldowns.c.severity_rank, cooldowns.c.suppressed).where(
            cooldowns.c.rule == rule, cooldowns.c.person_id == person_id
        )
        row = self._run(lambda conn: conn.execute(query).first(), "rule state read")
        return None if row is None else Cooldown(row[0], int(row[1]), int(row[2]))

    def record_alert(self, rule: str, person_id: str, at: dt.datetime, severity_rank: int) -> None:
        def upsert(conn: Connection) -> None:
            stmt = insert(conn, cooldowns).values(
                rule=rule,
                person_id=person_id,
                partition=self._partition,
                last_alert_at=at,
                severity_rank=severity_rank,
                suppressed=0,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[cooldowns.c.rule, cooldowns.c.person_id],
                    set_={
                        "partition": stmt.excluded.partition,
                        "last_alert_at": stmt.excluded.last_alert_at,
                        "severity_rank": stmt.excluded.severity_rank,
                        "suppressed": 0,
                    },
                )
            )

        self._run(upsert, "rule state write")

    def clear(self, rule: str, person_id: str) -> None:
        stmt = cooldowns.delete().where(cooldowns.c.rule == rule, cooldowns.c.person_id == person_id)
        self._run(lambda conn: conn.execute(stmt), "rule state write")

    def record_suppressed(self, rule: str, person_id: str) -> None:
        stmt = (
            cooldowns.update()
            .where(cooldowns.c.rule == rule, cooldowns.c.person_id == person_id)
            .values(suppressed=cooldowns.c.suppressed + 1)
        )
        self._run(lambda conn: conn.execute(stmt), "rule state write")

    def _run(self, fn: Callable[[Connection], T], what: str) -> T:
        if not self._open:
            self.open()
        return self._db.transaction(fn, what=what)
