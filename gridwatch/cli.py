"""The `gridwatch` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from gridwatch import __version__

EXIT_CONFIG = 2
EXIT_MODELS = 3

log = logging.getLogger("gridwatch")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return EXIT_CONFIG
    from gridwatch.core.config.loader import ConfigError
    from gridwatch.core.crypto import DataKeyError
    from gridwatch.core.db import DatabaseError
    from gridwatch.http import HttpStartError
    from recognition.modelpack import ModelPackError

    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except DataKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ModelPackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_MODELS
    except HttpStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except DatabaseError as exc:
        # Unreachable at start, a failed migration, or unreachable for a whole retry window: one line.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridwatch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gridwatch {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND")

    def config_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c",
            "--config",
            type=Path,
            default=os.environ.get("GRIDWATCH_CONFIG"),
            help="config file or directory (default: $GRIDWATCH_CONFIG)",
        )

    run = commands.add_parser("run", help="run the service")
    config_arg(run)
    run.add_argument("--for", dest="for_s", type=float, default=None, metavar="SECONDS", help="stop after this time")
    run.add_argument(
        "--role",
        choices=["recognition", "rules", "notifier", "console", "all"],
        default="all",
        help="the part of the site this process runs (default all: one process); other roles need the kafka "
        "transport and PostgreSQL",
    )
    run.set_defaults(handler=_cmd_run)

    demo = commands.add_parser("demo", help="run the embedded default: a demo camera and registry, no Kafka")
    demo.add_argument("-c", "--config", type=Path, default=None, help="demo config (default: configs/demo)")
    demo.add_argument("--for", dest="for_s", type=float, default=None, metavar="SECONDS", help="stop after this time")
    demo.add_argument("--keep-state", action="store_true", help="keep the demo's data directory from the last run")
    demo.set_defaults(handler=_cmd_demo)

    config = commands.add_parser("config", help="check or describe configuration").add_subparsers(metavar="ACTION")
    check = config.add_parser("check", help="validate a config file or directory")
    check.add_argument("path", type=Path)
    check.add_argument(
        "--require-env",
        action="store_true",
        help="treat ${VAR} placeholders whose variable is unset here as errors (default: notes)",
    )
    check.set_defaults(handler=_cmd_config_check)
    schema = config.add_parser("schema", help="print the JSON Schema of the configuration")
    schema.set_defaults(handler=_cmd_config_schema)

    from gridwatch.registry_cli import add_commands as add_registry_commands

    add_registry_commands(commands, config_arg)  # `registry enroll|update|list|remove|import|purge|shred`

    from gridwatch.keys_cli import add_commands as add_keys_commands

    add_keys_commands(commands, config_arg)  # `keys rotate|list`

    rules = commands.add_parser("rules", help="check warning rules").add_subparsers(metavar="ACTION")
    simulate = rules.add_parser(
        "simulate",
        help="run the config's rules over entries and events on a virtual clock; print the alerts as JSON lines",
        description="Run the rules of a config over registry entries and events (JSON lines) on a virtual clock, "
        "with the service's rule engine on a throwaway in-memory database: nothing of the site is read or "
        "written. Prints one JSON object per alert, in virtual-time order.",
    )
    config_arg(simulate)
    simulate.add_argument(
        "--entries", type=Path, required=True, metavar="ENTRIES.jsonl", help="registry entries, one JSON object a line"
    )
    simulate.add_argument("sightings", type=Path, metavar="SIGHTINGS.jsonl", help="events in time order, one a line")
    simulate.add_argument(
        "--until",
        type=_instant_arg,
        default=None,
        metavar="ISO8601",
        help="run the clock on to this time, so that timers due meanwhile fire (default: the last event)",
    )
    simulate.add_argument(
        "--acks",
        type=Path,
        default=None,
        metavar="ACKS.jsonl",
        help='acknowledgements, one JSON object a line: {"at", "rule", "person_id", "by"} (routing: the output '
        "then shows notifications, escalations and acknowledgements too)",
    )
    simulate.set_defaults(handler=_cmd_rules_simulate)

    alerts = commands.add_parser("alerts", help="read alerts").add_subparsers(metavar="ACTION")
    tail = alerts.add_parser("tail", help="print alerts from a Kafka topic")
    config_arg(tail)
    tail.add_argument("--bootstrap", default=None, help="host:port (default: from the config)")
    tail.add_argument("--topic", default=None, help="topic (default: from the config)")
    tail.add_argument("--from-beginning", action="store_true")
    tail.add_argument("--max", dest="max_messages", type=int, default=None)
    tail.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    tail.set_defaults(handler=_cmd_alerts_tail)
    parked = alerts.add_parser("parked", help="list alert deliveries parked for a sink, or requeue one")
    config_arg(parked)
    parked.add_argument("--sink", default=None, help="only this sink")
    parked.add_argument("--requeue", metavar="ALERT_ID", default=None, help="deliver this alert again")
    parked.add_argument("--limit", type=int, default=100, help="at most this many rows (default: 100)")
    parked.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who is doing this (audit log)")
    parked.set_defaults(handler=_cmd_alerts_parked)

    notifications = commands.add_parser("notifications", help="notifications of staff").add_subparsers(metavar="ACTION")
    held = notifications.add_parser("parked", help="list notifications parked for a channel, or requeue one")
    config_arg(held)
    held.add_argument("--channel", default=None, help="only this channel")
    held.add_argument("--requeue", metavar="NOTIFICATION_ID", default=None, help="deliver this notification again")
    held.add_argument("--limit", type=int, default=100, help="at most this many rows (default: 100)")
    held.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who is doing this (audit log)")
    held.set_defaults(handler=_cmd_notifications_parked)

    audit = commands.add_parser("audit", help="the append-only audit log").add_subparsers(metavar="ACTION")
    verify = audit.add_parser("verify", help="check the hash chain of an audit log")
    config_arg(verify)
    verify.add_argument("path", nargs="?", type=Path, default=None, help="audit.jsonl (default: from the config)")
    verify.add_argument(
        "--against",
        type=Path,
        default=None,
        metavar="FILE",
        help="also check the log against exported checkpoints (detects a cut-off or re-chained log); "
        "signatures are checked with $GRIDWATCH_AUDIT_KEY",
    )
    verify.set_defaults(handler=_cmd_audit_verify)
    checkpoint = audit.add_parser(
        "checkpoint",
        help="write a signed checkpoint of the audit chain's head now, or export the checkpoints",
        description="Without --export: sign and write a checkpoint of the head now (needs $GRIDWATCH_AUDIT_KEY). "
        "With --export FILE: check the log against the checkpoints it has and those FILE already holds, then "
        "write them all to FILE (keep FILE where the service cannot write).",
    )
    config_arg(checkpoint)
    checkpoint.add_argument("path", nargs="?", type=Path, default=None, help="audit.jsonl (default: from the config)")
    checkpoint.add_argument("--export", type=Path, default=None, metavar="FILE", help="copy the checkpoints here")
    checkpoint.set_defaults(handler=_cmd_audit_checkpoint)

    from gridwatch.evaluate.cli import add_commands as add_evaluate_commands

    add_evaluate_commands(commands, config_arg)  # `eval` and `calibrate`

    from gridwatch.duty_cli import add_commands as add_duty_commands

    add_duty_commands(commands, config_arg)  # `duty who`

    from gridwatch.model_cli import add_commands as add_model_commands

    add_model_commands(commands, config_arg)  # `model pin [--check]`

    from gridwatch.acks.cli import add_commands as add_acks_commands

    add_acks_commands(commands, config_arg)  # `staff token`

    from gridwatch.console.cli import add_commands as add_console_commands

    add_console_commands(commands, config_arg)  # `users add|list|disable|passwd`, `tokens create`

    from gridwatch.kafka_cli import add_commands as add_kafka_commands

    add_kafka_commands(commands, config_arg)  # `kafka init [--check]`
    return parser


def _load(path: Path | None):  # type: ignore[no-untyped-def]
    from gridwatch.core.config.loader import load_config

    if path is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    return load_config(path)


class _StandInEnv(dict[str, str]):
    """os.environ, plus a stand-in value for every variable it lacks (recorded), so that a
    config can be checked on a workstation that does not hold the site's secrets."""

    def __init__(self) -> None:
        super().__init__(os.environ)
        self.stood_in: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        self.stood_in.add(key)
        return f"unset-{key.lower()}"


def _cmd_config_check(args: argparse.Namespace) -> int:
    from gridwatch.core.config.loader import load_config

    if args.require_env:
        loaded = _load(args.path)
    else:
        env = _StandInEnv()
        loaded = load_config(args.path, env=env)
        for name in sorted(env.stood_in):
            print(f"note: ${{{name}}} is not set here; `gridwatch run` will need it", file=sys.stderr)
    config = loaded.config
    print(
        f"{args.path}: ok ({len(config.cameras)} camera(s), {len(config.registries)} registr(ies), "
        f"{len(config.rules)} rule(s); files: {', '.join(str(f) for f in loaded.files)})"
    )
    _print_roster_warnings(loaded)
    _print_operating_points(loaded)
    return 0


def _print_operating_points(loaded) -> None:  # type: ignore[no-untyped-def]
    """Per registry: size, threshold, expected false alerts a day and miss rate, from the pack's calibration."""
    from gridwatch.evaluate.operating_point import operating_points

    points = operating_points(loaded)
    for line in points.lines:
        print(line)
    for warning in points.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _print_roster_warnings(loaded) -> None:  # type: ignore[no-untyped-def]
    """Warnings, not errors: a duty roster that leaves its grid without anybody on duty (alerts then climb), and
    route targets narrowed to the `corrections` role for a corrections registry's alerts."""
    from notifier.duty import roster_warnings
    from notifier.routing import corrections_route_warnings

    for key_path, reason in roster_warnings(loaded.config, dt.datetime.now(dt.UTC)):
        print(f"warning: {loaded.issue(key_path, reason)}", file=sys.stderr)
    for key_path, reason in corrections_route_warnings(loaded.config):
        print(f"warning: {loaded.issue(key_path, reason)}", file=sys.stderr)


def _instant_arg(value: str) -> dt.datetime:
    from gridwatch.simulate import utc_instant

    try:
        return utc_instant(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_rules_simulate(args: argparse.Namespace) -> int:
    from gridwatch.core.config.loader import load_config
    from gridwatch.simulate import SimulationInputError, read_acks, read_inputs, simulate
    from gridwatch.simulate.thresholds import SimulationThresholds

    if args.config is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        return EXIT_CONFIG
    # The simulation connects to nothing, so the site's secrets are not needed (as for `config check`).
    loaded = load_config(args.config, env=_StandInEnv())
    config = loaded.config
    thresholds = SimulationThresholds.of(loaded, args.entries.name)
    try:
        try:
            inputs = read_inputs(config, args.entries, args.sightings, thresholds=thresholds)
        finally:
            for note in thresholds.notes:
                print(f"note: {note}", file=sys.stderr)
        acks = read_acks(config, args.acks) if args.acks is not None else []
        with contextlib.closing(simulate(config, inputs, args.until, acks)) as records:  # closes its database early
            for record in records:
                print(json.dumps(record, ensure_ascii=False), flush=True)
    except SimulationInputError as exc:
        print(f"invalid simulation input:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        # The reader left (`| head`): stop quietly, and keep the interpreter's final flush from failing too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _cmd_config_schema(args: argparse.Namespace) -> int:
    from gridwatch.core.config.schema import config_json_schema

    print(json.dumps(config_json_schema(), indent=2))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from gridwatch.roles import Role, check_role

    loaded = _load(args.config)
    role = Role(args.role)
    check_role(loaded, role)  # ConfigError: printed with file:line and key path
    return _run_service(loaded, args.for_s, watch=args.config, role=role)


def _cmd_demo(args: argparse.Namespace) -> int:
    from gridwatch.demo import prepare_demo

    loaded = prepare_demo(args.config, keep_state=args.keep_state)
    return _run_service(loaded, args.for_s)


def _run_service(loaded, for_s: float | None, watch: Path | None = None, role=None) -> int:  # type: ignore[no-untyped-def]
    from gridwatch.core.fd_redact import redacted_stdio
    from gridwatch.core.logs import configure_logging
    from gridwatch.core.redact import register_secrets
    from gridwatch.wiring import data_paths

    register_secrets(loaded.secrets)
    # What native code (FFmpeg, GStreamer, libjpeg, onnxruntime) prints to fds 1 and 2 is redacted too,
    # from before the first camera opens until after the service has stopped.
    with redacted_stdio():
        configure_logging(loaded.config.service.log_level, data_paths(loaded).log_file)
        return asyncio.run(_serve(loaded, for_s, watch, role))


async def _serve(loaded, for_s: float | None, watch: Path | None, role=None) -> int:  # type: ignore[no-untyped-def]
    from gridwatch.roles import Role
    from gridwatch.service import Service

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # `gridwatch run` follows its config (file changes and SIGHUP); the demo's config is a fixed bundle.
    service = Service(loaded, watch_config=watch is not None, config_path=watch, role=role or Role.ALL)
    try:
        await service.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=for_s)
    finally:
        await service.stop()
        print(service.summary().line(), flush=True)
    return 0


def _cmd_alerts_tail(args: argparse.Namespace) -> int:
    from notifier.tail import tail_alerts

    bootstrap, topic, security = args.bootstrap, args.topic, None
    if args.config is not None or bootstrap is None or topic is None:
        kafka = _load(args.config).config.notifier.kafka
        bootstrap = bootstrap or kafka.bootstrap_servers
        topic = topic or kafka.topic
        security = kafka.security_kwargs()  # the site's TLS/SASL settings
    return asyncio.run(
        tail_alerts(
            bootstrap,
            topic,
            from_beginning=args.from_beginning,
            max_messages=args.max_messages,
            timeout_s=args.timeout,
            out=sys.stdout,
            security=security,
        )
    )


def _cmd_alerts_parked(args: argparse.Namespace) -> int:
    from gridwatch.core.audit import AuditLog
    from gridwatch.wiring import build_storage, data_paths

    loaded = _load(args.config)
    storage = build_storage(loaded)
    storage.open()
    try:
        outbox = storage.outbox
        if args.requeue is None:
            rows = outbox.parked(args.sink, args.limit)
            print(f"{'parked_at (UTC)':<20} {'sink':<12} {'attempts':>8}  {'alert_id':<34} error")
            for row in rows:
                at = dt.datetime.fromtimestamp(row.parked_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
                print(f"{at:<20} {row.sink:<12} {row.attempts:>8}  {row.alert_id:<34} {row.error}")
            print(f"{outbox.count_parked(args.sink)} parked")
            return 0
        sinks = [row.sink for row in outbox.parked(args.sink, alert_id=args.requeue)]
        if not sinks:
            print(f"error: alert {args.requeue} is not parked", file=sys.stderr)
            return 1
        with AuditLog(data_paths(loaded).audit_log) as audit:
            for sink in sinks:
                if outbox.requeue(args.requeue, sink):
                    details = {"sink": sink}
                    audit.append("alert.delivery_requeued", actor=args.actor, target=args.requeue, details=details)
                    # The running notifier is not told: its next delivery pass takes the row (next alert, restart).
                    print(f"requeued {args.requeue} for {sink}: delivered with the next alert or at the next start")
        return 0
    finally:
        storage.close()


def _cmd_notifications_parked(args: argparse.Namespace) -> int:
    from gridwatch.core.audit import AuditLog
    from gridwatch.wiring import build_database, data_paths
    from notifier.notification_outbox import NotificationOutbox

    loaded = _load(args.config)
    database = build_database(loaded)
    database.open()
    try:
        outbox = NotificationOutbox(database)
        if args.requeue is None:
            rows = outbox.parked(args.channel, args.limit)
            print(
                f"{'parked_at (UTC)':<20} {'channel':<14} {'staff':<14} {'attempts':>8}  {'notification_id':<34} error"
            )
            for row in rows:
                at = dt.datetime.fromtimestamp(row.parked_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
                print(
                    f"{at:<20} {row.channel:<14} {row.staff_id:<14} {row.attempts:>8}  {row.notification_id:<34} "
                    f"{row.error}"
                )
            print(f"{outbox.count_parked(args.channel)} parked")
            return 0
        if not outbox.requeue(args.requeue):
            print(f"error: notification {args.requeue} is not parked", file=sys.stderr)
            return 1
        with AuditLog(data_paths(loaded).audit_log) as audit:
            audit.append("notification.requeued", actor=args.actor, target=args.requeue, details={})
        # The running dispatcher is not told: its next pass of that channel takes the row.
        print(f"requeued {args.requeue}: delivered with the channel's next notification or at the next start")
        return 0
    finally:
        database.close()


def _audit_log_path(args: argparse.Namespace) -> Path:
    from gridwatch.wiring import data_paths

    path: Path = args.path if args.path is not None else data_paths(_load(args.config)).audit_log
    return path


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from gridwatch.core.audit import verify, verify_against
    from gridwatch.core.audit_checkpoints import AUDIT_KEY_ENV, CheckpointFileError, CheckpointKey, read_checkpoints

    path = _audit_log_path(args)
    if args.against is None:
        result = verify(path)
        if result.ok:
            print(f"{path}: ok, {result.records} record(s), chain intact")
            return 0
        print(f"{path}: BROKEN at line {result.first_bad_line}: {result.reason}", file=sys.stderr)
        return 1
    key = CheckpointKey.from_env()
    try:
        checkpoints = read_checkpoints(args.against)
    except (OSError, CheckpointFileError) as exc:
        print(f"error: cannot read checkpoints: {exc}", file=sys.stderr)
        return 1
    if key is None:
        print(
            f"note: {AUDIT_KEY_ENV} is not set: the checkpoints' signatures are NOT checked, "
            "only their sequence numbers and heads",
            file=sys.stderr,
        )
    outcome = verify_against(path, checkpoints, key)
    if outcome.failing is not None:
        failing = outcome.failing
        print(
            f"{path}: FAILS checkpoint seq={failing.seq} (written {failing.at}) of {args.against}: {outcome.reason}",
            file=sys.stderr,
        )
        return 1
    if not outcome.chain.ok:
        print(f"{path}: BROKEN at line {outcome.chain.first_bad_line}: {outcome.chain.reason}", file=sys.stderr)
        return 1
    signatures = f"signatures checked, key id {key.key_id}" if key is not None else "signatures NOT checked"
    print(
        f"{path}: ok, {outcome.chain.records} record(s), chain intact; "
        f"{outcome.checkpoints} checkpoint(s) of {args.against} hold ({signatures})"
    )
    return 0


def _cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    from gridwatch.core.audit import AuditLog, verify_against
    from gridwatch.core.audit_checkpoints import (
        AUDIT_KEY_ENV,
        CheckpointFileError,
        CheckpointKey,
        checkpoints_path,
        merge_checkpoints,
        read_checkpoints,
        write_checkpoints_file,
    )

    path = _audit_log_path(args)
    key = CheckpointKey.from_env()
    if key is None:
        print(f"error: {AUDIT_KEY_ENV} is not set: checkpoints are signed with it", file=sys.stderr)
        return EXIT_CONFIG
    if not path.is_file():
        print(f"error: no audit log at {path}", file=sys.stderr)
        return 1
    if args.export is None:
        with AuditLog(path, checkpoint_key=key) as log:
            written = log.checkpoint()
            head = log.last_hash
        if written is None:
            print(f"{path}: nothing to write (empty log, or the head {head[:16]}… is checkpointed already)")
        else:
            print(f"{path}: checkpoint of record {written.seq} (head {written.head[:16]}…) written")
        return 0
    own_path = checkpoints_path(path)
    try:
        own = read_checkpoints(own_path) if own_path.exists() else []
        held = read_checkpoints(args.export) if args.export.exists() else []
    except (OSError, CheckpointFileError) as exc:
        print(f"error: cannot read checkpoints: {exc}", file=sys.stderr)
        return 1
    merged = merge_checkpoints(held, own)
    # Checked before FILE is replaced: a cut-off or rewritten log must not overwrite the anchors that show it.
    outcome = verify_against(path, merged, key)
    if not outcome.ok:
        failing = outcome.failing
        what = f"checkpoint seq={failing.seq}: {outcome.reason}" if failing else f"chain: {outcome.chain.reason}"
        print(f"error: {path} fails {what}; {args.export} left as it was", file=sys.stderr)
        return 1
    write_checkpoints_file(args.export, merged)
    newest = merged[-1].seq if merged else 0
    print(
        f"exported {len(merged)} checkpoint(s) ({len(merged) - len(held)} new, up to record {newest}) to {args.export}"
    )
    return 0


if __name__ == "__main__":  # `python -m gridwatch.cli` works like `python -m gridwatch`
    sys.exit(main())
