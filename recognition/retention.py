"""The retention job: erase what is past its time, then write what was erased and what is kept to the audit log.

One pass (``run_retention``, hourly from the recognition stage) erases expired registry entries (their
templates and reference photo go with them) and expired evidence, and appends one ``retention.report``
record: per data class of the retention policy (README "Retention"), how many were erased and how many
are kept, each with its reason. Counts only: never an id, a name or an image. Classes gridwatch does not
erase by itself (alerts, cases, the audit log, the processing records) are reported as kept, with why;
topics are erased by the Kafka broker (``retention.ms``, set by `gridwatch kafka init`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from gridwatch.core.db import Database
from gridwatch.core.db.schema import alerts, cases, evidence, persons
from recognition.evidence import EvidenceStore
from recognition.registries import Registries

log = logging.getLogger(__name__)

RETENTION_REPORT = "retention.report"
RETENTION_ACTOR = "system:retention"
# The classes of the retention policy, in the README's order.
DATA_CLASSES = (
    "template",
    "evidence",
    "reference_photo",
    "alert",
    "case",
    "audit",
    "processing_record",
    "topic",
)


@dataclass(frozen=True, slots=True)
class ClassReport:
    """One data class in a report; a count is None where this process cannot count it (and ``reason`` says why)."""

    erased: int | None
    retained: int | None
    reason: str
    by_registry: dict[str, dict[str, int]] = field(default_factory=dict)


def run_retention(
    registries: Registries, evidence_store: EvidenceStore | None, *, now: dt.datetime | None = None
) -> dict[str, ClassReport]:
    """Erases what expired at ``now`` and writes the report to the registries' audit log; returns it."""
    now = now or dt.datetime.now(dt.UTC)
    database = evidence_store.database if evidence_store is not None else None
    purged = registries.purge_expired(now=now)
    if purged:
        log.info("retention: erased %d expired registry entries", len(purged))
    evidence_erased: Counter[str] = Counter()
    if evidence_store is not None and database is not None:
        evidence_erased = _evidence_counts(database, now, expired=True)
        erased = evidence_store.purge_expired(now)
        if erased:
            log.info("retention: erased %d expired evidence objects", erased)
    report = build_report(registries, database, now, purged_registries=[p.registry for p in purged])
    report["evidence"] = _evidence_report(database, now, evidence_erased, reference=False)
    report["reference_photo"] = _evidence_report(database, now, evidence_erased, reference=True)
    details: dict[str, Any] = {"at": now, "classes": {name: _record(report[name]) for name in DATA_CLASSES}}
    registries.audit.append(RETENTION_REPORT, actor=RETENTION_ACTOR, target="retention", details=details)
    return report


def build_report(
    registries: Registries, database: Database | None, now: dt.datetime, *, purged_registries: list[str]
) -> dict[str, ClassReport]:
    """The report's classes other than evidence: registry entries, alerts, cases, audit, records, topics."""
    configs = registries.configs
    erased_by_registry = Counter(purged_registries)
    kept_by_registry = _count_by(database, persons.c.registry, persons.c.expires_at > now)
    by_registry = {
        name: {
            "erased": erased_by_registry.get(name, 0),
            "retained": kept_by_registry.get(name, 0),
            "retention_days": config.retention_days,
        }
        for name, config in configs.items()
    }
    no_db = "not counted: this process has no database"
    return {
        "template": ClassReport(
            erased=len(purged_registries),
            retained=None if database is None else sum(kept_by_registry.values()),
            reason="registry entries (their templates and reference photo with them): erased retention_days after "
            "enrolment or renewal; kept while within it",
            by_registry=by_registry,
        ),
        "alert": ClassReport(
            erased=0,
            retained=_count(database, alerts),
            reason="kept: gridwatch erases no alert by itself; the site's records schedule applies "
            "(README Retention)" + ("" if database is not None else f"; {no_db}"),
        ),
        "case": ClassReport(
            erased=0,
            retained=_count(database, cases),
            reason="kept: gridwatch erases no case by itself; the site's records schedule applies "
            "(README Retention)" + ("" if database is not None else f"; {no_db}"),
        ),
        "audit": ClassReport(
            erased=None,
            retained=None,
            reason="kept: append-only and hash-chained, never erased by gridwatch; this record's seq is the "
            "number of records",
        ),
        "processing_record": ClassReport(
            erased=0,
            retained=len(configs),
            reason="kept: each registry's purpose, legal basis and retention (config), while the registry exists "
            "and 3 years after (PIPL art. 56)",
        ),
        "topic": ClassReport(
            erased=None,
            retained=None,
            reason="erased by the Kafka broker after retention.ms (set by gridwatch kafka init); not counted here",
        ),
    }


def _record(report: ClassReport) -> dict[str, Any]:
    """A class as the audit record holds it (``by_registry`` only where there is one)."""
    record = asdict(report)
    if not report.by_registry:
        del record["by_registry"]
    return record


def _evidence_report(
    database: Database | None, now: dt.datetime, erased: Counter[str], *, reference: bool
) -> ClassReport:
    kept = _evidence_counts(database, now, expired=False) if database is not None else Counter()
    kinds = ("reference",) if reference else ("face", "frame")
    reason = (
        "enrolment photos: erased with their entry (same expiry); kept while it is"
        if reference
        else "matched face crops and frames: erased evidence.retention_days after capture; kept while within it"
    )
    return ClassReport(
        erased=None if database is None else sum(erased.get(k, 0) for k in kinds),
        retained=None if database is None else sum(kept.get(k, 0) for k in kinds),
        reason=reason if database is not None else f"{reason}; not counted: no evidence store",
    )


def _evidence_counts(database: Database, now: dt.datetime, *, expired: bool) -> Counter[str]:
    """Evidence objects per kind, expired at ``now`` or not."""
    return _count_by(
        database, evidence.c.kind, evidence.c.expires_at <= now if expired else evidence.c.expires_at > now
    )


def _count_by(database: Database | None, column: Any, where: Any) -> Counter[str]:
    if database is None:
        return Counter()
    query = select(column, func.count()).where(where).group_by(column)

    def count(conn: Connection) -> Counter[str]:
        return Counter({str(key): int(n) for key, n in conn.execute(query).all()})

    return database.transaction(count, what="retention count", read_only=True)


def _count(database: Database | None, table: Any) -> int | None:
    if database is None:
        return None
    query = select(func.count()).select_from(table)
    return database.transaction(
        lambda conn: int(conn.execute(query).scalar_one()), what="retention count", read_only=True
    )
