"""The `registry` subcommands: enrol, update, list, remove, import, purge, shred, and the approvals of
corrections registries (`extend`, `approvals`). Nothing heavy is imported until one runs.

An entry of a ``kind: corrections`` registry is enrolled with its approval record (``--approval-doc``,
``--approver``, ``--situation-code``, ``--start``, ``--end``): without it, or with an approval longer than
92 days, nothing is enrolled (exit 2). ``registry extend`` records a new approval (never an edit of the
old one's end); ``registry approvals`` shows them. Both are audited.

Per-person conditions (``--home``, ``--zone``, ``--hours``, ``--case-ref``) must name sources, zones and
schedules of the loaded config: anything else is refused (exit 2) before the store is touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridwatch.core.config.loader import LoadedConfig
    from gridwatch.core.config.root import GridwatchConfig
    from gridwatch.wiring import RecognitionParts
    from recognition.bulk_import import ImportRow
    from recognition.store import Person

EXIT_REFUSED = 1
EXIT_CONFIG = 2


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `registry ACTION` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    registry = commands.add_parser("registry", help="enrol, update, list and remove registry entries")
    actions = registry.add_subparsers(metavar="ACTION")

    enroll = actions.add_parser("enroll", help="enrol one person from one or more photos")
    config_arg(enroll)
    enroll.add_argument("--registry", required=True)
    enroll.add_argument("--name", required=True, help="display name shown to staff")
    _actor_arg(enroll)
    _condition_args(enroll)
    _approval_args(enroll, required=False)
    enroll.add_argument("photos", nargs="+", type=Path)
    enroll.set_defaults(handler=cmd_enroll)

    update = actions.add_parser(
        "update",
        help="change a person's conditions",
        description="Change the conditions of an entry. A given --home or --zone list replaces the current one; "
        "options not given leave their field as it is.",
    )
    config_arg(update)
    update.add_argument("person_id")
    _actor_arg(update)
    _condition_args(update, clearable=True)
    update.set_defaults(handler=cmd_update)

    listing = actions.add_parser("list", help="list enrolled persons")
    config_arg(listing)
    listing.add_argument("--registry", default=None)
    _actor_arg(listing)
    listing.set_defaults(handler=cmd_list)

    remove = actions.add_parser("remove", help="erase a person and their embeddings")
    config_arg(remove)
    remove.add_argument("person_id")
    _actor_arg(remove)
    remove.set_defaults(handler=cmd_remove)

    bulk = actions.add_parser(
        "import",
        help="enrol many persons from a folder, a CSV or a ZIP of photos; progress, per-photo report, resumable",
        description="Enrol the persons of SOURCE: a folder of <person>/<photo> (one person per sub-folder, named "
        "after it), a CSV of person,photo[,home_sources,allowed_zones,allowed_hours,case_ref] (photo paths relative "
        "to the CSV; rows of one person give them several photos; several sources or zones separated by ';'), or a "
        "ZIP archive (one person per photo named after the file, or a persons.csv with photo,name[,home,zone,hours,"
        "case_ref]). Each person is enrolled as `registry enroll` would; a face the registry already knows is "
        "refused as a duplicate. Prints a JSON line per refused photo (reason and kind: no_face, several_faces, "
        "too_small, poor_quality, unreadable, duplicate, not_a_photo, conditions), a progress bar on stderr and the "
        "throughput at the end; exit 1 when any photo was refused. Interrupted, the same command resumes: persons "
        "done before are skipped (a journal in the data directory), nobody is enrolled twice.",
    )
    config_arg(bulk)
    bulk.add_argument("--registry", required=True)
    _actor_arg(bulk)
    bulk.add_argument(
        "--restart", action="store_true", help="forget what earlier runs of this import did and start over"
    )
    bulk.add_argument("source", type=Path, metavar="SOURCE", help="a folder, a .csv or a .zip")
    bulk.set_defaults(handler=cmd_import)

    extend = actions.add_parser(
        "extend",
        help="record a new approval of a corrections entry (an extension; the earlier one is kept as it was)",
        description="Record a new approval record for an entry of a corrections registry (Community Corrections "
        "Law art. 29). The entry is matched while any of its approvals runs; the new one is checked like the "
        "first (situation code 1-5, end at most 92 days after start). Audited.",
    )
    config_arg(extend)
    extend.add_argument("person_id")
    _actor_arg(extend)
    _approval_args(extend, required=True)
    extend.set_defaults(handler=cmd_extend)

    approvals = actions.add_parser("approvals", help="show the approval records of a corrections entry (audited)")
    config_arg(approvals)
    approvals.add_argument("person_id")
    _actor_arg(approvals)
    approvals.set_defaults(handler=cmd_approvals)

    purge = actions.add_parser("purge", help="erase every entry past its expiry")
    config_arg(purge)
    purge.set_defaults(handler=cmd_purge)

    shred = actions.add_parser(
        "shred",
        help="crypto-shred a registry: destroy its data key, then erase its entries and evidence",
        description="Destroy the registry's wrapped data key, then delete its persons, templates, evidence and "
        "reference photos. Every copy of the database made before (backups included) can no longer open the "
        "registry's templates or images, even with the master key. Irreversible; audited. Needs no data key.",
    )
    config_arg(shred)
    shred.add_argument("name", metavar="NAME", help="the registry")
    _actor_arg(shred)
    shred.set_defaults(handler=cmd_shred)


def _actor_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who is doing this (audit log)")


def _approval_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The approval record of a corrections entry (Community Corrections Law art. 29)."""
    group = parser.add_argument_group(
        "approval record" + ("" if required else " (required by a corrections registry, refused by others)")
    )
    group.add_argument("--approval-doc", dest="approval_doc", required=required, help="the approval's document number")
    group.add_argument("--approver", required=required, help="who approved (an official or an office)")
    group.add_argument(
        "--situation-code", dest="situation_code", required=required, help="the art. 29 situation, 1 to 5"
    )
    group.add_argument(
        "--start", required=required, help="start: an ISO 8601 time with its offset, or a date (00:00 UTC)"
    )
    group.add_argument(
        "--end",
        required=required,
        help="end, at most 92 days after start; the entry is ignored from then on (a date: 00:00 UTC)",
    )


def _condition_args(parser: argparse.ArgumentParser, *, clearable: bool = False) -> None:
    options = [
        ("--home", "home_sources", "SRC", "append", "a camera or gate where the person is expected (repeatable)"),
        ("--zone", "allowed_zones", "ZONE", "append", "a zone the person may be in (repeatable)"),
        ("--hours", "allowed_hours", "SCHEDULE", "store", "the schedule of hours the person may be seen in"),
        ("--case-ref", "case_ref", "REF", "store", "the external case number of the entry (no free text)"),
    ]
    clear_flags = [
        ("--clear-home", "no home sources any more"),
        ("--clear-zones", "no zone condition any more"),
        ("--clear-hours", "no hours condition any more"),
        ("--clear-case-ref", "remove the case number"),
    ]
    for (flag, dest, metavar, action, text), (clear, clear_text) in zip(options, clear_flags, strict=True):
        group = parser.add_mutually_exclusive_group() if clearable else parser
        group.add_argument(flag, dest=dest, metavar=metavar, action=action, default=None, help=text)
        if clearable:
            group.add_argument(clear, dest=f"clear_{dest}", action="store_true", help=clear_text)


# --- commands -------------------------------------------------------------------------------------


def cmd_enroll(args: argparse.Namespace) -> int:
    from gridwatch.wiring import ReferencePhotos, require_keyring
    from recognition.approvals import ApprovalError, approval_from, check_fits
    from recognition.enroll import EnrollmentError, enrollment_sample, read_photo
    from recognition.registries import UnknownRegistryError

    loaded = _load(args.config)
    if not _conditions_acceptable(loaded.config, args):
        return EXIT_CONFIG
    registry = next((r for r in loaded.config.registries if r.name == args.registry), None)
    try:
        approval = approval_from(vars(args))
        if registry is not None:  # an unknown registry is reported below, as before
            check_fits(registry, approval)  # before any photo is read
    except ApprovalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing enrolled", file=sys.stderr)
        return EXIT_CONFIG
    require_keyring(loaded.config)  # templates (and reference photos) are sealed: the master key first
    parts = _recognition(loaded)
    try:
        parts.registries.load()
        if args.registry not in parts.registries.configs:
            raise UnknownRegistryError(args.registry)
        samples, refused = [], []
        for photo in args.photos:
            try:
                samples.append(enrollment_sample(parts.analyzer, parts.gate, read_photo(photo), what=str(photo)))
            except EnrollmentError as exc:
                refused.append(str(exc))
        if refused:
            for reason in refused:
                print(f"refused: {reason}", file=sys.stderr)
            print("nothing enrolled", file=sys.stderr)
            return EXIT_REFUSED
        person = parts.registries.enroll(
            args.registry,
            args.name,
            [(s.photo_sha256, s.embedding) for s in samples],
            actor=args.actor,
            home_sources=args.home_sources or (),
            allowed_zones=args.allowed_zones or (),
            allowed_hours=args.allowed_hours,
            case_ref=args.case_ref,
            approval=approval,
        )
        ReferencePhotos(loaded.config, parts.store.database, parts.keys).keep(
            person.registry, person.person_id, samples[0].reference(read_photo(args.photos[0]))
        )
    except UnknownRegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        parts.close()
    for photo, sample in zip(args.photos, samples, strict=True):
        if sample.dominant is not None:
            print(f"note: {photo}: {sample.dominant}")
    print(
        f"enrolled {person.person_id} in {person.registry} ({len(samples)} photo(s)), "
        f"expires {person.expires_at:%Y-%m-%d}"
    )
    if approval is not None:
        print(f"approved from {_instant(approval.start)} until {_instant(approval.end)} (matched only meanwhile)")
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from recognition.approvals import ApprovalError, approval_from
    from recognition.registries import UnknownPersonError

    try:
        approval = approval_from(vars(args))
    except ApprovalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing changed", file=sys.stderr)
        return EXIT_CONFIG
    assert approval is not None  # every field is a required option
    parts = _recognition(_load(args.config))
    try:
        parts.registries.load()
        record = parts.registries.extend_approval(args.person_id, approval, actor=args.actor)
    except UnknownPersonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except ApprovalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing changed", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        parts.close()
    print(
        f"approval {record.approval_id} of {args.person_id} recorded: {_instant(approval.start)} until "
        f"{_instant(approval.end)} (extends {record.supersedes or 'nothing'})"
    )
    return 0


def cmd_approvals(args: argparse.Namespace) -> int:
    from recognition.registries import UnknownPersonError

    parts = _recognition(_load(args.config))
    try:
        records = parts.registries.approvals(args.person_id, actor=args.actor)
    except UnknownPersonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        parts.close()
    print(f"{'approval_id':<20} {'situation':>9}  {'start':<20}  {'end':<20}  {'extends':<20}  document / approver")
    for r in records:
        a = r.approval
        print(
            f"{r.approval_id:<20} {a.situation_code:>9}  {_instant(a.start):<20}  {_instant(a.end):<20}  "
            f"{r.supersedes or '-':<20}  {a.approval_doc} / {a.approver}"
        )
    return 0


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def cmd_import(args: argparse.Namespace) -> int:
    import hashlib
    import json
    import time

    from gridwatch.wiring import ReferencePhotos, data_paths, require_keyring
    from recognition.bulk_import import (
        ArchiveReader,
        BulkImport,
        CsvSource,
        FolderSource,
        ImportArchiveError,
        ImportJournal,
        ImportSource,
    )

    loaded = _load(args.config)
    source_path: Path = args.source
    try:
        source: ImportSource
        if source_path.is_dir():
            source = FolderSource(source_path)
        elif source_path.suffix.lower() == ".csv":
            source = CsvSource(source_path)
        else:
            source = ArchiveReader(source_path.read_bytes())
    except OSError as exc:
        print(f"error: cannot read {source_path}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return EXIT_CONFIG
    except ImportArchiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    require_keyring(loaded.config)
    # One journal per registry and source: the same command, run again, resumes where it stopped.
    where = hashlib.sha256(str(source_path.resolve()).encode()).hexdigest()[:16]
    journal_path = data_paths(loaded).root / "imports" / f"{args.registry}-{where}.jsonl"
    if args.restart:
        journal_path.unlink(missing_ok=True)
    journal = ImportJournal(journal_path)
    parts = _recognition(loaded)
    progress: ProgressBar | None = None
    started = time.perf_counter()
    try:
        parts.registries.load()
        if args.registry not in parts.registries.configs:
            print(f"error: unknown registry {args.registry!r}", file=sys.stderr)
            return EXIT_CONFIG
        earlier = journal.load()
        if earlier:
            print(f"resuming: {earlier} person(s) done by an earlier run are skipped", file=sys.stderr)
        references = ReferencePhotos(loaded.config, parts.store.database, parts.keys)
        progress = ProgressBar(sys.stderr)
        job = BulkImport(
            parts.registries,
            parts.analyzer,
            parts.gate,
            args.registry,
            source,
            actor=args.actor,
            known=lambda row: row_problem(loaded.config, row),
            on_enrolled=lambda person_id, photo: references.keep(args.registry, person_id, photo),
            journal=journal,
            on_progress=lambda report: progress.show(report.done, report.total, report.photos),
        )
        report = job.run()
    except ImportArchiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        parts.close()
        if progress is not None:
            progress.end()
    elapsed = time.perf_counter() - started
    for refusal in report.refused:
        print(json.dumps({"photo": refusal.photo, "refused": refusal.reason, "kind": refusal.kind}, ensure_ascii=False))
    kinds: dict[str, int] = {}
    for refusal in report.refused:
        kinds[refusal.kind] = kinds.get(refusal.kind, 0) + 1
    by_kind = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    resumed = f"; {report.resumed} done by an earlier run" if report.resumed else ""
    print(
        f"enrolled {len(report.enrolled)} of {report.total} in {args.registry}; refused {len(report.refused)} photo(s)"
        + (f" ({by_kind})" if by_kind else "")
        + resumed,
        file=sys.stderr,
    )
    print(
        f"throughput: {report.photos} photo(s) analysed in {elapsed:.1f} s, "
        f"{report.photos / elapsed if elapsed > 0 else 0.0:.2f} photos/s (model loading included)",
        file=sys.stderr,
    )
    return EXIT_REFUSED if report.refused else 0


class ProgressBar:
    """Persons done out of all, on one line of a terminal (redrawn); on a pipe, a line every 10 %."""

    WIDTH = 30

    def __init__(self, stream: Any) -> None:
        import time

        self._stream = stream
        self._tty = bool(stream.isatty())
        self._started = time.perf_counter()  # the rate counts from here (made just before the import starts)
        self._last_tenth = -1
        self._drawn = False

    def show(self, done: int, total: int, photos: int) -> None:
        import time

        now = time.perf_counter()
        share = done / total if total else 1.0
        rate = photos / (now - self._started) if now > self._started else 0.0
        filled = int(share * self.WIDTH)
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} persons, {rate:.1f} photos/s"
        if self._tty:
            self._stream.write("\r" + line)
            self._drawn = True
        elif int(share * 10) != self._last_tenth:
            self._last_tenth = int(share * 10)
            self._stream.write(line + "\n")
        self._stream.flush()

    def end(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def row_problem(config: GridwatchConfig, row: ImportRow) -> str | None:
    """Why a bulk-import row's conditions are refused (unknown ids, a malformed case number), or None."""
    from gridwatch.core.persons import check_case_ref

    problems = unknown_references(
        config, home_sources=row.home_sources, allowed_zones=row.allowed_zones, allowed_hours=row.allowed_hours
    )
    if problems:
        return problems[0].removeprefix("--home: ").removeprefix("--zone: ").removeprefix("--hours: ")
    if row.case_ref is not None:
        try:
            check_case_ref(row.case_ref)
        except ValueError as exc:
            return str(exc)
    return None


def cmd_update(args: argparse.Namespace) -> int:
    from recognition.registries import UnknownPersonError

    given = [args.home_sources, args.allowed_zones, args.allowed_hours, args.case_ref]
    clears = [args.clear_home_sources, args.clear_allowed_zones, args.clear_allowed_hours, args.clear_case_ref]
    if all(value is None for value in given) and not any(clears):
        print(
            "error: nothing to update: give --home, --zone, --hours or --case-ref, or a --clear-... option",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    loaded = _load(args.config)
    if not _conditions_acceptable(loaded.config, args):
        return EXIT_CONFIG
    parts = _recognition(loaded)
    try:
        change = parts.registries.update_conditions(
            args.person_id,
            actor=args.actor,
            home_sources=[] if args.clear_home_sources else args.home_sources,
            allowed_zones=[] if args.clear_allowed_zones else args.allowed_zones,
            allowed_hours=args.allowed_hours,
            case_ref=args.case_ref,
            clear_allowed_hours=args.clear_allowed_hours,
            clear_case_ref=args.clear_case_ref,
        )
    except UnknownPersonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        parts.close()
    if not change.changed:
        print(f"{args.person_id}: nothing changed")
    else:
        print(f"updated {args.person_id} in {change.after.registry}: {', '.join(change.changed)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from recognition.registries import UnknownRegistryError

    parts = _recognition(_load(args.config))
    try:
        persons = parts.registries.list_persons(args.registry, actor=args.actor)
    except UnknownRegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        parts.close()
    # The columns of gridwatch ≤ 0.1 first, unchanged; the conditions are appended after the name.
    width = max([len("name"), *(len(p.display_name) for p in persons)])
    print(f"{'person_id':<20} {'registry':<20} {'photos':>6}  {'expires':<10}  {'name':<{width}}  conditions")
    for p in persons:
        print(
            f"{p.person_id:<20} {p.registry:<20} {p.embeddings:>6}  {p.expires_at:%Y-%m-%d}  "
            f"{p.display_name:<{width}}  {_conditions_text(p)}"
        )
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from recognition.registries import UnknownPersonError

    parts = _recognition(_load(args.config))
    try:
        parts.registries.load()
        person = parts.registries.remove(args.person_id, actor=args.actor)
    except UnknownPersonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        parts.close()
    print(f"removed {person.person_id} from {person.registry}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    parts = _recognition(_load(args.config))
    try:
        parts.registries.load()
        purged = parts.registries.purge_expired()
    finally:
        parts.close()
    print(f"erased {len(purged)} expired entr{'y' if len(purged) == 1 else 'ies'}")
    return 0


def cmd_shred(args: argparse.Namespace) -> int:
    from gridwatch.core.audit import AuditLog
    from gridwatch.wiring import Erasures, build_database, data_paths, registry_keys
    from recognition.evidence import EvidenceStore
    from recognition.store import RegistryStore
    from rules.state import RuleState

    loaded = _load(args.config)
    database = build_database(loaded)
    evidence = EvidenceStore(database)  # deleting needs no key
    store = RegistryStore(
        database,
        keys=registry_keys(loaded),
        owns_database=True,
        erasure=Erasures((RuleState(database), evidence)),
    )
    try:
        store.open()
        shred = store.shred_registry(args.name, reclaim=False)
        images = evidence.forget_registry(args.name)  # also objects of persons erased earlier, if any was left
        store.reclaim()
    finally:
        store.close()
    if shred.key is None and not shred.persons and not images:
        print(f"error: registry {args.name!r} has no data key, entries or evidence: nothing to shred", file=sys.stderr)
        return EXIT_REFUSED
    with AuditLog(data_paths(loaded).audit_log) as audit:
        audit.append(
            "registry.shred",
            actor=args.actor,
            target=args.name,
            details={
                "key_id": shred.key.key_id if shred.key is not None else None,
                "persons": len(shred.persons),
                "templates": shred.embeddings,
                "evidence": images,
            },
        )
    key = f"data key {shred.key.key_id} destroyed" if shred.key is not None else "no data key"
    print(
        f"shredded {args.name}: {key}; erased {len(shred.persons)} person(s), {shred.embeddings} template(s), "
        f"{images} evidence object(s)"
    )
    if any(registry.name == args.name for registry in loaded.config.registries):
        print(
            f"note: {args.name} is still in the config: it is empty now, and a new enrolment gets a new data key",
            file=sys.stderr,
        )
    return 0


# --- helpers --------------------------------------------------------------------------------------


def _load(path: Path | None) -> LoadedConfig:
    from gridwatch.core.config.loader import load_config

    if path is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    return load_config(path)


def _recognition(loaded: LoadedConfig) -> RecognitionParts:
    from gridwatch.core.audit import AuditLog
    from gridwatch.wiring import build_recognition, data_paths

    return build_recognition(loaded, AuditLog(data_paths(loaded).audit_log))


def _conditions_acceptable(config: GridwatchConfig, args: argparse.Namespace) -> bool:
    """Print why the conditions given are refused (unknown ids, a malformed case number); True if none is."""
    from gridwatch.core.persons import check_case_ref

    problems = unknown_references(
        config,
        home_sources=args.home_sources or (),
        allowed_zones=args.allowed_zones or (),
        allowed_hours=args.allowed_hours,
    )
    if args.case_ref is not None:
        try:
            check_case_ref(args.case_ref)
        except ValueError as exc:
            problems.append(f"--case-ref: {exc}")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if problems:
        print("nothing changed", file=sys.stderr)
    return not problems


def unknown_references(
    config: GridwatchConfig, *, home_sources: Sequence[str], allowed_zones: Sequence[str], allowed_hours: str | None
) -> list[str]:
    """One message per condition that names no source, zone or schedule of ``config``."""
    checks = [
        ("--home", "source", home_sources, config.source_ids(), "cameras: or gates:"),
        ("--zone", "zone", allowed_zones, config.zone_ids(), "zones:"),
        ("--hours", "schedule", [] if allowed_hours is None else [allowed_hours], config.schedule_ids(), "schedules:"),
    ]
    return [
        f"{flag}: unknown {what} {name!r} (known: {', '.join(sorted(known)) or f'none; see the {section} section'})"
        for flag, what, names, known, section in checks
        for name in names
        if name not in known
    ]


def _conditions_text(person: Person) -> str:
    parts = [
        ("home", ",".join(person.home_sources)),
        ("zones", ",".join(person.allowed_zones)),
        ("hours", person.allowed_hours or ""),
        ("case", person.case_ref or ""),
    ]
    return " ".join(f"{key}={value}" for key, value in parts if value) or "-"
