"""Rule evaluation throughput with 10k persons and 100k pending timers, and the timers' start-up cost.

The service's engine (``RuleEngine`` and ``RuleState``) on the service's database: by default a SQLite
file made as the service makes it (WAL, ``synchronous=FULL``: every commit reaches the disk), in a
temporary directory; ``--database-url`` for another (e.g. a throwaway PostgreSQL). Persons come from an
in-memory directory, as in ``gridwatch rules simulate``, so the figures are the rules' and their state's.

Rule set: ``--absence-rules`` ``not_seen`` rules (home: two gates) over every person, one ``seen`` rule and
one ``frequency`` rule, so ``persons × absence rules`` timers are pending (10k × 10 = 100k by default).

Measured, in order:

- ``arm``: the first ``RuleEngine.arm()``, which creates every timer (what a site's first start costs);
- ``next_due`` and a ``due`` pass with every timer pending and none due (what the timer loop does on
  each wake-up); then a ``due`` pass that makes 1000 alerts, and their commits;
- throughput: ``--sightings`` sightings of random persons at random sources (half of them home gates,
  so those restart every absence timer of the person) through ``RuleEngine.evaluate``, one at a time.

Baseline, same run and database kind (on SQLite a fresh file): the same sightings through an engine with
only a ``seen`` rule and no timer. Printed: both rates and their ratio, the timer costs, and last one JSON
line with the figures. Nothing is asserted.

    .venv/bin/python benchmarks/rules_throughput.py [--persons 10000] [--absence-rules 10] [--sightings 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import URL

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Quality, Sighting, SourceKind
from gridwatch.core.persons import PersonConditions
from gridwatch.simulate.run import EntryDirectory
from rules.engine import RuleEngine
from rules.state import RuleState

T0 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
REGISTRY = "residents"
HOME_GATES = ("gate-north-face", "gate-south-face")
SOURCES: dict[str, tuple[SourceKind, str | None]] = {
    "gate-north-face": (SourceKind.GATE, "grid-north"),
    "gate-south-face": (SourceKind.GATE, "grid-south"),
    "lobby-b3": (SourceKind.CAMERA, "grid-north"),
    "square": (SourceKind.CAMERA, "grid-central"),
}
RULES = TypeAdapter(list[RuleConfig])
DUE_BATCH = 1000  # what one ``RuleEngine.due()`` call returns at most (the stage's batch)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def rule_configs(absence_rules: int) -> list[Any]:
    absence = [
        {
            "id": f"absent-{i}",
            "kind": "not_seen",
            "registries": [REGISTRY],
            "sources": list(HOME_GATES),
            "after_s": 86400 * (2 + i),  # 48 h, 72 h, ...: each rule's timers due at other times
        }
        for i in range(absence_rules)
    ]
    frequency = {
        "id": "frequency",
        "kind": "frequency",
        "registries": [REGISTRY],
        "count": 5,
        "within_s": 3600,
    }
    return RULES.validate_python([*absence, seen_rule("seen"), frequency])


def seen_rule(rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "kind": "seen", "registries": [REGISTRY], "cooldown_s": 600}


def entries(persons: int) -> list[PersonConditions]:
    # Enrolled one minute apart: the timers of one rule come due one by one, not all at once.
    return [PersonConditions(f"p_{i:06d}", REGISTRY, T0 + dt.timedelta(minutes=i)) for i in range(persons)]


def sightings(count: int, persons: int, start: dt.datetime, seed: int) -> list[Sighting]:
    rng = random.Random(seed)
    sources = list(SOURCES)
    out = []
    for i in range(count):
        source = rng.choice(sources)
        at = start + dt.timedelta(seconds=i)
        out.append(
            Sighting(
                source=source,
                source_kind=SOURCES[source][0],
                captured_at=at,
                received_at=at,
                person_id=f"p_{rng.randrange(persons):06d}",
                registry=REGISTRY,
                similarity=0.6,
                threshold=0.45,
                model="benchmark",
                quality=Quality(det_score=0.9, face_px=100.0),
                grid=SOURCES[source][1],
            )
        )
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def open_database(url: str | None, folder: Path, name: str) -> Database:
    """The given database, or a fresh SQLite file named ``name`` in ``folder``."""
    if url is None:
        url = URL.create("sqlite", database=str(folder / f"{name}.sqlite3")).render_as_string()
    database = Database(url)
    database.open()
    return database


def throughput(engine: RuleEngine, clock: Clock, batch: Sequence[Sighting]) -> float:
    """Sightings per second through ``engine.evaluate``, the clock at each sighting's time."""
    started = time.perf_counter()
    for sighting in batch:
        clock.now = sighting.captured_at
        engine.evaluate(sighting)
    return len(batch) / (time.perf_counter() - started)


def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    people = entries(args.persons)
    directory = EntryDirectory(people)
    figures: dict[str, Any] = {}

    database = open_database(args.database_url, folder, "rules")
    figures["database"] = database.dialect
    try:
        clock = Clock(T0)
        engine = RuleEngine(
            rule_configs(args.absence_rules),
            RuleState(database),
            clock,
            directory=directory,
            sources=SOURCES,
            delivered_on_create=True,
        )
        figures["arm_s"], _ = timed(engine.arm)
        state = engine.state
        figures["timers"] = sum(len(state.timer_persons(rule)) for rule in engine.rule_ids)  # counted, not assumed
        # The day before the first timer is due: everything pending, nothing due.
        clock.now = T0 + dt.timedelta(days=1)
        figures["next_due_s"], first_due = timed(engine.next_due)
        figures["due_pass_s"], none_due = timed(engine.due)
        assert first_due is not None
        assert not none_due
        # A wake-up with more than a batch due: one due() call, then the commits as the stage makes them.
        clock.now = first_due + dt.timedelta(minutes=2 * DUE_BATCH)
        figures["due_batch_s"], firings = timed(engine.due)
        figures["due_batch"] = len(firings)
        figures["commit_batch_s"], _ = timed(lambda: engine.commit(firings))

        batch = sightings(args.warmup + args.sightings, args.persons, clock.now, args.seed)
        throughput(engine, clock, batch[: args.warmup])
        figures["sightings_per_s"] = throughput(engine, clock, batch[args.warmup :])
    finally:
        database.close()

    # Baseline: the same sightings through the seen rule alone, no timer. On SQLite a fresh file; on a
    # given database the same one, under a rule id of its own (so it finds none of the run's cooldowns).
    baseline_db = open_database(args.database_url, folder, "baseline")
    try:
        clock = Clock(batch[0].captured_at)
        baseline = RuleEngine(
            RULES.validate_python([seen_rule("baseline-seen")]),
            RuleState(baseline_db),
            clock,
            directory=directory,
            sources=SOURCES,
            delivered_on_create=True,
        )
        baseline.arm()
        throughput(baseline, clock, batch[: args.warmup])
        figures["baseline_per_s"] = throughput(baseline, clock, batch[args.warmup :])
    finally:
        baseline_db.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=10_000, help="enrolled persons (default 10000)")
    parser.add_argument("--absence-rules", type=int, default=10, help="not_seen rules, each a timer per person")
    parser.add_argument("--sightings", type=int, default=2000, help="measured sightings (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=50, help="sightings evaluated first and not measured")
    parser.add_argument("--seed", type=int, default=1, help="seed of the persons and sources picked")
    parser.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL of an empty database (default: SQLite files in a temporary directory)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rules-throughput-") as tmp:
        figures = run(args, Path(tmp))
    rules = args.absence_rules + 2
    ratio = figures["sightings_per_s"] / figures["baseline_per_s"]
    database = figures["database"]
    print(f"rules: {args.absence_rules} not_seen + seen + frequency, {args.persons} persons, {database}")
    print(f"  first arm(): {figures['timers']} timers created in {figures['arm_s']:.2f} s")
    print(
        f"  with {figures['timers']} pending: next_due() {figures['next_due_s'] * 1000:.1f} ms, "
        f"due() with none due {figures['due_pass_s'] * 1000:.1f} ms"
    )
    print(
        f"  due() making {figures['due_batch']} alerts {figures['due_batch_s'] * 1000:.0f} ms, "
        f"their commits {figures['commit_batch_s'] * 1000:.0f} ms"
    )
    print(f"  evaluate(), {args.sightings} sightings:    {figures['sightings_per_s']:8.1f} sightings/s ({rules} rules)")
    print(f"  baseline, seen rule alone, no timers: {figures['baseline_per_s']:8.1f} sightings/s")
    print(f"  ratio full rule set / baseline: {ratio:.3f}")
    print(
        json.dumps(
            {
                "benchmark": "rules_throughput",
                "database": database,
                "persons": args.persons,
                "timers": figures["timers"],
                "rules": rules,
                "sightings": args.sightings,
                "sightings_per_s": round(figures["sightings_per_s"], 1),
                "baseline_per_s": round(figures["baseline_per_s"], 1),
                "ratio": round(ratio, 4),
                "arm_s": round(figures["arm_s"], 3),
                "next_due_s": round(figures["next_due_s"], 4),
                "due_pass_s": round(figures["due_pass_s"], 4),
                "due_batch": figures["due_batch"],
                "due_batch_s": round(figures["due_batch_s"], 3),
                "commit_batch_s": round(figures["commit_batch_s"], 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
