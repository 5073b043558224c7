"""`gridwatch kafka init`: create gridwatch's topics as declared, or check them (``--check``).

The topics a config uses (DESIGN §1) are declared in ``service.transport.kafka.topics``: partitions,
replication, ``retention.ms`` and ``segment.ms`` (the retention policy; README "Retention"). The
transport's topics (sightings, stranger attempts, alerts) live on ``service.transport.kafka``'s cluster
when the transport driver is Kafka; the notifier's (its alert sink's topic, acknowledgements, case
transitions, notification channels) on ``notifier.kafka``'s cluster when they are enabled. Two
connections to the same bootstrap servers are one cluster.

``init`` creates what is missing, sets the managed topic configs where they drift, and reports what it
cannot change: Kafka never removes partitions, adding some moves keys (persons) to other partitions
(their rule state and timers with them), and a replication change is a reassignment. Run twice, the
second run changes nothing. ``--check`` changes nothing and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # nothing heavy is imported until the command runs
    from gridwatch.core.config.kafka import KafkaConnectionConfig, TopicDeclaration, TopicRole
    from gridwatch.core.config.root import GridwatchConfig

EXIT_DRIFT = 1
EXIT_UNREACHABLE = 4
# DescribeConfigs v1+: where a value comes from; 1 is an override set on the topic itself.
DYNAMIC_TOPIC_CONFIG = 1


@dataclass(frozen=True, slots=True)
class PlannedTopic:
    name: str
    role: TopicRole
    declared: TopicDeclaration


@dataclass(slots=True)
class ClusterPlan:
    """The topics to keep on one cluster, and how to reach it."""

    connection: KafkaConnectionConfig
    topics: dict[str, PlannedTopic] = field(default_factory=dict)


@dataclass(slots=True)
class TopicReport:
    """What ``init`` found and did for one topic; ``drift`` is what is still not as declared."""

    name: str
    created: str = ""  # how it was created, when it was
    altered: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.created:
            return f"{self.name}: created ({self.created})"
        parts = [f"altered {change}" for change in self.altered] + self.drift
        return f"{self.name}: {'; '.join(parts) if parts else 'ok'}"


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `kafka init` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    kafka = commands.add_parser("kafka", help="gridwatch's Kafka topics").add_subparsers(metavar="ACTION")
    init = kafka.add_parser(
        "init",
        help="create the config's Kafka topics as declared (service.transport.kafka.topics), or --check them",
        description="Create the Kafka topics the config uses with their declared partitions, replication, "
        "retention.ms and segment.ms; set the topic configs that drifted; report what Kafka cannot change "
        "(fewer partitions, another replication factor). Idempotent. Exit 1 when something is still not as "
        f"declared, {EXIT_UNREACHABLE} when a cluster cannot be reached.",
    )
    config_arg(init)
    init.add_argument(
        "--check", action="store_true", help="change nothing; exit 0 if every topic is as declared, else 1"
    )
    init.set_defaults(handler=cmd_kafka_init)


def cmd_kafka_init(args: argparse.Namespace) -> int:
    from gridwatch.cli import _load

    plans = plan_topics(_load(args.config).config)
    if not plans:
        print("this config uses no Kafka topic (service.transport.driver is inprocess, notifier uses no Kafka)")
        return 0
    return asyncio.run(_init_all(plans, check=args.check))


def plan_topics(config: GridwatchConfig) -> list[ClusterPlan]:
    """The topics ``config`` uses, grouped by cluster, each with its declaration."""
    transport = config.service.transport.kafka
    plans: dict[str, ClusterPlan] = {}

    def add(connection: KafkaConnectionConfig, name: str, role: TopicRole) -> None:
        cluster = plans.setdefault(connection.bootstrap_servers, ClusterPlan(connection))
        cluster.topics.setdefault(name, PlannedTopic(name, role, transport.declaration(role)))

    if config.service.transport.driver == "kafka":
        from gridwatch.core.transport import Topic

        add(transport, Topic.SIGHTINGS, "sightings")
        add(transport, Topic.STRANGER_ATTEMPTS, "stranger_attempts")
        add(transport, Topic.ALERTS, "alerts")
    notifier = config.notifier
    if notifier.kafka.enabled:
        add(notifier.kafka, notifier.kafka.topic, "alerts")
    if notifier.acks.consume:
        add(notifier.kafka, notifier.acks.topic, "acks")
    if notifier.alert_events.enabled:
        add(notifier.kafka, notifier.alert_events.topic, "alert_events")
    from gridwatch.core.config.channels import KafkaChannelConfig

    for channel in config.channels:
        if isinstance(channel, KafkaChannelConfig):
            add(notifier.kafka, channel.topic, "notifications")
    return list(plans.values())


async def _init_all(plans: list[ClusterPlan], *, check: bool) -> int:
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from gridwatch.core.redact import redact_text

    status = 0
    for plan in plans:
        servers = plan.connection.bootstrap_servers
        try:
            reports = await init_cluster(plan, check=check)
        except (KafkaError, OSError) as exc:
            what = "unreachable" if isinstance(exc, KafkaConnectionError | OSError) else "failed"
            print(f"kafka {servers}: {what}: {redact_text(str(exc) or type(exc).__name__)}", file=sys.stderr)
            status = max(status, EXIT_UNREACHABLE)
            continue
        print(f"kafka {servers}:")
        for report in reports:
            print(f"  {report.line()}")
        created = sum(bool(r.created) for r in reports)
        altered = sum(bool(r.altered) for r in reports)
        drifting = [r for r in reports if r.drift]
        print(
            f"kafka {servers}: {len(reports)} topic(s): {created} created, {altered} altered, "
            f"{len(drifting)} not as declared{' (--check: nothing changed)' if check else ''}"
        )
        if drifting:
            status = max(status, EXIT_DRIFT)
    return status


async def init_cluster(plan: ClusterPlan, *, check: bool) -> list[TopicReport]:
    """Creates, checks and aligns the planned topics of one cluster (only checks with ``check``)."""
    from aiokafka.admin import AIOKafkaAdminClient

    conn = plan.connection
    admin = AIOKafkaAdminClient(
        **conn.security_kwargs(),
        bootstrap_servers=conn.bootstrap_servers,
        client_id=f"{conn.client_id}.kafka-init",
        request_timeout_ms=conn.request_timeout_ms,
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        reports = {name: TopicReport(name) for name in plan.topics}
        missing = [t for name, t in plan.topics.items() if name not in existing]
        present = [t for name, t in plan.topics.items() if name in existing]
        if check:
            for topic in missing:
                reports[topic.name].drift.append("missing")
        else:
            await _create(admin, missing, reports)
        if present:
            await _compare(admin, present, reports, check=check)
        return list(reports.values())
    finally:
        await admin.close()


async def _create(admin: Any, topics: list[PlannedTopic], reports: dict[str, TopicReport]) -> None:
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    if not topics:
        return
    response = await admin.create_topics(
        [
            NewTopic(
                t.name,
                num_partitions=t.declared.partitions,
                replication_factor=t.declared.replication_factor,
                topic_configs=t.declared.configs,
            )
            for t in topics
        ]
    )
    declared = {t.name: t.declared for t in topics}
    for error in response.to_object()["topic_errors"]:
        name, code = error["topic"], error["error_code"]
        if code == 0:
            d = declared[name]
            settings = ", ".join(f"{key}={value}" for key, value in d.configs.items())
            # Say what was made: an operator reads the counts and the retention off this line.
            reports[name].created = f"{d.partitions} partitions, replication {d.replication_factor}, {settings}"
        elif code != TopicAlreadyExistsError.errno:  # that one: created meanwhile by a starting service
            reports[name].drift.append(f"missing: create failed: {error.get('error_message') or f'Kafka error {code}'}")


async def _compare(admin: Any, topics: list[PlannedTopic], reports: dict[str, TopicReport], *, check: bool) -> None:
    described = await _partitions(admin, [t.name for t in topics])
    for topic in topics:
        reports[topic.name].drift += _shape_drift(topic, described.get(topic.name, []))

    current, overrides, refused = await _topic_configs(admin, [t.name for t in topics])
    for name, reason in refused.items():
        reports[name].drift.append(f"configs not readable: {reason}")
    to_alter: dict[str, dict[str, str]] = {}
    for topic in topics:
        report = reports[topic.name]
        if topic.name in refused:
            continue
        values = current.get(topic.name, {})
        changes = [
            f"{key} {values.get(key)} -> {value}"
            for key, value in topic.declared.configs.items()
            if values.get(key) != value
        ]
        if not changes:
            continue
        if check:
            report.drift += [f"{change} (not changed)" for change in changes]
        else:
            # AlterConfigs replaces every override of the topic: keep the others it has.
            to_alter[topic.name] = overrides.get(topic.name, {}) | topic.declared.configs
            report.altered += changes
    if to_alter:
        await _alter(admin, to_alter, reports)
        altered = {t.name: t.declared.configs for t in topics if t.name in to_alter and reports[t.name].altered}
        await _until_visible(admin, altered)


async def _partitions(admin: Any, names: list[str], timeout_s: float = 30.0) -> dict[str, list[dict[str, Any]]]:
    """Per topic, its partitions as the cluster describes them; a topic created a moment ago may be
    described without them for a while, so ask again (up to ``timeout_s``) rather than report 0."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        described = {t["topic"]: t.get("partitions", []) for t in await admin.describe_topics(names)}
        if all(described.get(name) for name in names) or asyncio.get_running_loop().time() > deadline:
            return described
        await asyncio.sleep(0.2)


async def _topic_configs(
    admin: Any, names: list[str]
) -> tuple[dict[str, dict[str, str | None]], dict[str, dict[str, str]], dict[str, str]]:
    """Per topic: every config value (defaults included), the overrides set on the topic itself, and why
    the cluster would not describe a topic (an ACL, say)."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in names])
    current: dict[str, dict[str, str | None]] = {}
    overrides: dict[str, dict[str, str]] = {}
    refused: dict[str, str] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                refused[resource["resource_name"]] = (
                    resource["error_message"] or f"Kafka error {resource['error_code']}"
                )
                continue
            entries = resource["config_entries"]
            current[resource["resource_name"]] = {e["config_names"]: e["config_value"] for e in entries}
            overrides[resource["resource_name"]] = {
                e["config_names"]: e["config_value"]
                for e in entries
                if _set_on_topic(e) and e["config_value"] is not None and not e.get("is_sensitive")
            }
    return current, overrides, refused


async def _until_visible(admin: Any, wanted: dict[str, dict[str, str]], timeout_s: float = 30.0) -> None:
    """Waits until the cluster describes the altered configs (a change reaches the brokers' metadata a moment
    later), so that a `--check` right after `init` sees them; gives up quietly after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while wanted:
        current, _, _ = await _topic_configs(admin, list(wanted))
        late = [
            name
            for name, configs in wanted.items()
            if any(current.get(name, {}).get(k) != v for k, v in configs.items())
        ]
        if not late or asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.2)


def _set_on_topic(entry: dict[str, Any]) -> bool:
    if "config_source" in entry:
        return bool(entry["config_source"] == DYNAMIC_TOPIC_CONFIG)
    return not entry.get("is_default", True)


def _shape_drift(topic: PlannedTopic, partitions: list[dict[str, Any]]) -> list[str]:
    """What Kafka init cannot align: partition count and replication factor, with what to do instead."""
    declared = topic.declared
    drift = []
    count = len(partitions)
    if count > declared.partitions:
        drift.append(
            f"partitions: {count} exist, {declared.partitions} declared: Kafka cannot remove partitions "
            f"(declare {count}, or recreate the topic, losing its records)"
        )
    elif count < declared.partitions:
        drift.append(
            f"partitions: {count} exist, {declared.partitions} declared: not added, since that moves keys (persons) "
            "to other partitions; add them with kafka-topics.sh --alter while the workers are stopped"
        )
    replicas = {len(p["replicas"]) for p in partitions}
    if replicas and replicas != {declared.replication_factor}:
        drift.append(
            f"replication: {'/'.join(map(str, sorted(replicas)))}, {declared.replication_factor} declared: "
            "not changed (a partition reassignment, kafka-reassign-partitions.sh)"
        )
    return drift


async def _alter(admin: Any, configs: dict[str, dict[str, str]], reports: dict[str, TopicReport]) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    responses = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, values) for name, values in configs.items()]
    )
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                report = reports[resource["resource_name"]]
                failed = resource.get("error_message") or f"Kafka error {resource['error_code']}"
                report.drift += [f"{change}: alter failed: {failed}" for change in report.altered]
                report.altered.clear()
