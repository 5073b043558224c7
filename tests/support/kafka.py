"""Apache Kafka for the tests: the real broker (the version ``docker-compose.yml`` deploys) in KRaft mode.

The broker and its runtime dependencies come from Maven Central (``tests/support/kafka/pom.xml``,
pinned) into a cache outside the tracked files (``.venv/kafka-<version>/lib`` unless
``GRIDWATCH_KAFKA_HOME`` names another folder); every jar is checked against
``tests/support/kafka/jars.sha256``. ``python tests/support/kafka.py fetch`` does this (``make
test`` calls it); the fixtures call ``kafka_lib()``, which fetches when the cache is missing.

``KafkaBroker`` is one combined broker+controller node on 127.0.0.1 (free ports, temp log dir);
``KafkaCluster`` is three brokers with one dedicated KRaft controller, so that stopping two
brokers leaves the metadata quorum alive and the last broker refuses ``acks=all`` writes with
``NotEnoughReplicas`` (``min.insync.replicas=2``). Every process is stopped by its own PID.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

KAFKA_VERSION = "3.9.1"
HERE = Path(__file__).resolve().parent / "kafka"
POM = HERE / "pom.xml"
CHECKSUMS = HERE / "jars.sha256"
LOG4J = HERE / "log4j.properties"
REPO = Path(__file__).resolve().parents[2]
HOME_ENV = "GRIDWATCH_KAFKA_HOME"

READY_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
FETCH_DEADLINE_S = 600.0
STARTED_LINE = "Kafka Server started"
HEAP = "-Xmx512m"
# The client (C1) compiler only: a broker of the tests handles little traffic, and starts faster on 2 cores.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss1m")


class KafkaHarnessError(RuntimeError):
    """The test broker could not be fetched, verified, started or stopped."""


# --- fetching and verifying the jars -------------------------------------------------------------


def kafka_home() -> Path:
    """The cache folder of the fetched broker (``lib/`` inside)."""
    override = os.environ.get(HOME_ENV)
    return Path(override) if override else REPO / ".venv" / f"kafka-{KAFKA_VERSION}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_checksums() -> dict[str, str]:
    """``jar name -> sha256`` from ``jars.sha256`` (``sha256sum`` format)."""
    expected: dict[str, str] = {}
    for number, line in enumerate(CHECKSUMS.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise KafkaHarnessError(f"{CHECKSUMS}:{number}: expected '<sha256>  <jar>', got {line!r}")
        expected[parts[1].lstrip("*")] = parts[0]
    return expected


def verify_jars(lib: Path) -> list[str]:
    """The problems of ``lib`` against ``jars.sha256`` (missing, unexpected or altered jars); [] when fine."""
    expected = expected_checksums()
    present = {p.name: p for p in lib.glob("*.jar")} if lib.is_dir() else {}
    problems = [f"missing {name}" for name in sorted(expected.keys() - present.keys())]
    problems += [f"unexpected {name}" for name in sorted(present.keys() - expected.keys())]
    for name in sorted(expected.keys() & present.keys()):
        actual = _sha256(present[name])
        if actual != expected[name]:
            problems.append(f"checksum mismatch of {name}: {actual}, expected {expected[name]}")
    return problems


def _maven_copy(destination: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaHarnessError(
            "Maven is not installed: `sudo apt-get install openjdk-17-jre-headless maven` (or run `make test`)"
        )
    command = [
        mvn, "-q", "-B", "--strict-checksums", "-f", str(POM), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={destination}",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=FETCH_DEADLINE_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise KafkaHarnessError(f"`{' '.join(command)}` did not finish within {FETCH_DEADLINE_S:.0f} s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise KafkaHarnessError(f"`{' '.join(command)}` failed with exit code {result.returncode}:\n{output}")


def fetch(home: Path | None = None) -> Path:
    """Fetch the broker's jars with Maven into ``<home>/lib`` unless they are there; verify; the lib path.

    A cache that fails the check is fetched again; a fresh fetch that fails it is an error (the
    cache is left as it was).
    """
    home = home or kafka_home()
    lib = home / "lib"
    if lib.is_dir() and not verify_jars(lib):
        return lib
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-fetch-", dir=home))
    try:
        _maven_copy(staging)
        problems = verify_jars(staging)
        if problems:
            raise KafkaHarnessError(
                f"the jars fetched from Maven Central do not match {CHECKSUMS}:\n  " + "\n  ".join(problems)
            )
        if lib.exists():
            shutil.rmtree(lib)
        staging.rename(lib)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lib


def kafka_lib() -> Path:
    """The verified ``lib`` folder, fetched first if needed (what the fixtures call)."""
    if shutil.which("java") is None:
        raise KafkaHarnessError(
            "Java is not installed: `sudo apt-get install openjdk-17-jre-headless` (or `make test`)"
        )
    return fetch()


# --- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def new_cluster_id() -> str:
    """A KRaft cluster id: a base64url UUID without padding, as ``kafka-storage.sh random-uuid`` prints.

    Like Kafka's own ``Uuid.randomUuid()``, never one that starts with "-": the storage tool's argument
    parser would take ``-t -xyz...`` for a flag (1 id in 64 did, and the cluster fixture failed).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class _KafkaNode:
    """One KRaft process (broker, controller, or both) with its own temp directory and log file."""

    def __init__(
        self,
        node_id: int,
        *,
        roles: str,
        cluster_id: str,
        voters: str,
        controller_port: int | None,
        port: int | None,
        properties: Mapping[str, str | int],
        heap: str = HEAP,
    ) -> None:
        self.node_id = node_id
        self.roles = roles
        self.cluster_id = cluster_id
        self.port = port
        self.controller_port = controller_port
        self._voters = voters
        self._extra = dict(properties)
        self._heap = heap
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._formatted = False

    # ----- state

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def directory(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=f"kafka-helper-node{self.node_id}-"))
        return self._dir

    def _properties(self) -> dict[str, str | int]:
        listeners = []
        if self.port is not None:
            listeners.append(f"PLAINTEXT://127.0.0.1:{self.port}")
        if "controller" in self.roles and self.controller_port is not None:
            listeners.append(f"CONTROLLER://127.0.0.1:{self.controller_port}")
        props: dict[str, str | int] = {
            "process.roles": self.roles,
            "node.id": self.node_id,
            "controller.quorum.voters": self._voters,
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join(listeners),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.directory / "data"),
            "num.partitions": 1,
            "group.initial.rebalance.delay.ms": 0,
            "auto.create.topics.enable": "false",
            # Faster fencing of a killed broker (defaults 2 s / 9 s) so that leaders move in seconds.
            "broker.heartbeat.interval.ms": 500,
            "broker.session.timeout.ms": 3000,
        }
        if self.port is not None:
            props["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{self.port}"
            props["inter.broker.listener.name"] = "PLAINTEXT"
        props.update(self._extra)
        return props

    def _write_properties(self) -> Path:
        path = self.directory / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in self._properties().items()))
        return path

    def _java(self, lib: Path, *args: str, heap: str | None = None) -> list[str]:
        java = shutil.which("java") or "java"
        command = [java, *JVM_OPTIONS]
        if heap:
            command.append(heap)
        command += [
            f"-Dlog4j.configuration=file:{LOG4J}",
            f"-Dkafka.logs.dir={self.directory / 'logs'}",
            "-cp",
            f"{lib}/*",
            *args,
        ]
        return command

    # ----- lifecycle

    def format_storage(self, lib: Path) -> subprocess.Popen[str] | None:
        """Begin ``StorageTool format`` (first start only; None when formatted already); see ``launch``."""
        properties = self._write_properties()
        if self._formatted:
            return None
        command = self._java(lib, "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(properties))
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def _finish_format(self, formatting: subprocess.Popen[str] | None) -> None:
        if formatting is None:
            return
        try:
            output, _ = formatting.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            formatting.kill()
            output, _ = formatting.communicate()
        if formatting.returncode != 0:
            raise KafkaHarnessError(
                f"kafka node {self.node_id}: storage format failed ({formatting.returncode}):\n{output[-3000:]}"
            )
        self._formatted = True

    def launch(self, lib: Path, formatting: subprocess.Popen[str] | None = None) -> None:
        """Format the storage (first start only; or finish ``formatting``) and start the process; no wait."""
        if self.running:
            return
        self._finish_format(formatting if formatting is not None else self.format_storage(lib))
        properties = self.directory / "server.properties"
        if self._log is None:
            # A file, not a pipe nobody reads (a full pipe would block the broker). Kept across restarts.
            self._log = (self.directory / "kafka.out").open("w+b")
        self._log_offset = self._log.seek(0, os.SEEK_END)
        self._process = subprocess.Popen(
            self._java(lib, "kafka.Kafka", str(properties), heap=self._heap),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            start_new_session=True,  # a Ctrl-C of pytest does not hit the broker before the fixture stops it
        )

    def started(self) -> bool:
        """Whether this run logged the started line and (brokers) listens on its port; raises if it died."""
        process = self._process
        if process is None:
            raise KafkaHarnessError(f"kafka node {self.node_id} is not running")
        if process.poll() is not None:
            raise KafkaHarnessError(
                f"kafka node {self.node_id} exited with {process.returncode}:\n{self.output_tail()}"
            )
        if STARTED_LINE not in self._read_log(self._log_offset):
            return False
        return self.port is None or _port_open(self.port)

    def wait_started(self, deadline: float) -> None:
        while not self.started():
            if time.monotonic() > deadline:
                raise KafkaHarnessError(f"kafka node {self.node_id} did not start in time:\n{self.output_tail()}")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (controlled shutdown) or SIGKILL (a crash) by PID; wait for the exit. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_DEADLINE_S)
        for port in (self.port, self.controller_port):
            deadline = time.monotonic() + STOP_DEADLINE_S
            while port is not None and _port_open(port) and time.monotonic() < deadline:
                time.sleep(0.02)

    def close(self) -> None:
        """Stop and remove the temp directory (data and logs)."""
        try:
            self.stop(kill=True)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
                self._formatted = False

    def _read_log(self, offset: int = 0) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        with (self.directory / "kafka.out").open("rb") as file:
            file.seek(offset)
            return file.read().decode("utf-8", "replace")

    def output_tail(self, chars: int = 4000) -> str:
        """The end of the process output (for failure messages)."""
        return self._read_log()[-chars:]


class KafkaBroker:
    """A single-node Apache Kafka (KRaft, ``process.roles=broker,controller``) on free ports of 127.0.0.1.

    ``stop()``/``start()`` keep the log directory (topics and records survive, like a real restart);
    ``close()`` removes it. ``properties`` are added to (or override) ``server.properties``.
    """

    def __init__(self, properties: Mapping[str, str | int] | None = None, *, heap: str = HEAP) -> None:
        self.port = free_port()
        self.controller_port = free_port()
        defaults: dict[str, str | int] = {
            "offsets.topic.replication.factor": 1,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
        }
        self._node = _KafkaNode(
            1,
            roles="broker,controller",
            cluster_id=new_cluster_id(),
            voters=f"1@127.0.0.1:{self.controller_port}",
            controller_port=self.controller_port,
            port=self.port,
            properties={**defaults, **(properties or {})},
            heap=heap,
        )
        self.start_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._node.running

    @property
    def pid(self) -> int | None:
        return self._node.pid

    def start(self) -> None:
        """Start (formatting the storage the first time) and wait until it serves. Idempotent."""
        if self.running:
            return
        lib = kafka_lib()
        began = time.monotonic()
        self._node.launch(lib)
        try:
            self._node.wait_started(time.monotonic() + READY_DEADLINE_S)
        except BaseException:
            self._node.stop(kill=True)
            raise
        self.start_seconds = time.monotonic() - began

    def stop(self, *, kill: bool = False) -> None:
        """Stop by PID (controlled shutdown, or SIGKILL with ``kill``); data is kept. Idempotent."""
        self._node.stop(kill=kill)

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def close(self) -> None:
        """Kill and remove the data. Idempotent."""
        self._node.close()

    def output_tail(self, chars: int = 4000) -> str:
        return self._node.output_tail(chars)

    def __enter__(self) -> KafkaBroker:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KafkaCluster:
    """Three Kafka brokers (node ids 1..3) and one dedicated KRaft controller (node id 100).

    Defaults: replication factor 3, ``min.insync.replicas=2``, internal topics replicated 3 times.
    The controller is separate so that the metadata quorum outlives any number of stopped brokers:
    with two brokers down, the third leads every partition alone and refuses ``acks=all`` writes
    with ``NotEnoughReplicas`` instead of hanging without a quorum.
    """

    CONTROLLER_ID = 100

    def __init__(self, size: int = 3, properties: Mapping[str, str | int] | None = None, *, heap: str = HEAP) -> None:
        cluster_id = new_cluster_id()
        controller_port = free_port()
        voters = f"{self.CONTROLLER_ID}@127.0.0.1:{controller_port}"
        self.controller = _KafkaNode(
            self.CONTROLLER_ID,
            roles="controller",
            cluster_id=cluster_id,
            voters=voters,
            controller_port=controller_port,
            port=None,
            properties={},
            heap="-Xmx256m",
        )
        defaults: dict[str, str | int] = {
            "default.replication.factor": size,
            "min.insync.replicas": min(2, size),
            "offsets.topic.replication.factor": size,
            "transaction.state.log.replication.factor": size,
            "transaction.state.log.min.isr": min(2, size),
            # A follower that stops fetching leaves the ISR after this long (default 30 s).
            "replica.lag.time.max.ms": 5000,
        }
        self.brokers = [
            _KafkaNode(
                node_id,
                roles="broker",
                cluster_id=cluster_id,
                voters=voters,
                controller_port=None,
                port=free_port(),
                properties={**defaults, **(properties or {})},
                heap=heap,
            )
            for node_id in range(1, size + 1)
        ]
        self.start_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        """Every broker's address (clients find the others through any of them)."""
        return ",".join(f"127.0.0.1:{b.port}" for b in self.brokers)

    def broker_bootstrap(self, node_id: int) -> str:
        return f"127.0.0.1:{self._broker(node_id).port}"

    @property
    def running_ids(self) -> list[int]:
        return [b.node_id for b in self.brokers if b.running]

    def _broker(self, node_id: int) -> _KafkaNode:
        for broker in self.brokers:
            if broker.node_id == node_id:
                return broker
        raise KeyError(f"no broker with node id {node_id} (have {[b.node_id for b in self.brokers]})")

    def start(self) -> None:
        """Start the controller and every stopped broker; wait until all serve."""
        lib = kafka_lib()
        began = time.monotonic()
        nodes = [self.controller, *self.brokers]
        try:
            # The storage formats run in parallel: each is a JVM start of a second or two.
            formats = [node.format_storage(lib) for node in nodes]
            for node, formatting in zip(nodes, formats, strict=True):
                node.launch(lib, formatting)
            deadline = time.monotonic() + READY_DEADLINE_S
            for node in nodes:
                node.wait_started(deadline)
        except BaseException:
            self.close()
            raise
        self.start_seconds = time.monotonic() - began

    def stop_broker(self, node_id: int, *, kill: bool = False) -> None:
        """Stop one broker by its PID (controlled shutdown, or SIGKILL with ``kill``); data is kept."""
        self._broker(node_id).stop(kill=kill)

    def start_broker(self, node_id: int) -> None:
        """Start a stopped broker again (same ports and data) and wait until it serves."""
        self.start_brokers([node_id])

    def start_brokers(self, node_ids: Iterable[int]) -> None:
        """Start several stopped brokers at once and wait until all serve."""
        lib = kafka_lib()
        nodes = [self._broker(node_id) for node_id in node_ids]
        for node in nodes:
            node.launch(lib)
        deadline = time.monotonic() + READY_DEADLINE_S
        for node in nodes:
            node.wait_started(deadline)

    def output_tail(self, chars: int = 2000) -> str:
        return "\n".join(
            f"--- node {node.node_id}:\n{node.output_tail(chars)}" for node in [self.controller, *self.brokers]
        )

    def close(self) -> None:
        """Kill every process (brokers first) by PID and remove the data. Idempotent."""
        errors: list[BaseException] = []
        for node in [*self.brokers, self.controller]:
            try:
                node.close()
            except BaseException as exc:  # close the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> KafkaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- topics ---------------------------------------------------------------------------------------


def unique_topic(hint: str = "topic", prefix: str = "gridwatch.alerts") -> str:
    """A topic name nobody else uses (tests share the session broker): prefix, sanitised hint, random suffix."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", hint).strip("-.")[:80] or "topic"
    return f"{prefix}.{cleaned}.{uuid.uuid4().hex[:8]}"


# --- admin -----------------------------------------------------------------------------------------


async def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    configs: Mapping[str, str] | None = None,
    exist_ok: bool = False,
) -> None:
    """Create a topic explicitly (the test brokers do not auto-create topics)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gridwatch-tests-admin")
    await admin.start()
    try:
        topic = NewTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            topic_configs=dict(configs or {}),
        )
        response = await admin.create_topics([topic])
    finally:
        await admin.close()
    # aiokafka returns per-topic error codes instead of raising.
    for topic_name, code, message, *_ in response.topic_errors:
        if code == TopicAlreadyExistsError.errno and exist_ok:
            continue
        if code != 0:
            raise for_code(code)(f"create topic {topic_name!r}: {message}")


async def read_topic(
    bootstrap: str, topic: str, timeout_s: float = 30.0, *, request_timeout_ms: int = 40_000
) -> list[Any]:
    """Every record of every partition of ``topic``, up to the end offsets taken when the read starts."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition

    # The producer's metadata lookup waits for the topic (the consumer's is not awaitable).
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="gridwatch-tests-reader",
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=request_timeout_ms,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: end offsets {ends} not reached within {timeout_s} s")
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help=f"fetch Apache Kafka {KAFKA_VERSION} with Maven and verify the jars")
    smoke = commands.add_parser("smoke", help="start and stop a single node (and the cluster with --cluster)")
    smoke.add_argument("--cluster", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            lib = fetch()
            print(f"Apache Kafka {KAFKA_VERSION}: {len(expected_checksums())} verified jars in {lib}")
        elif args.command == "smoke":
            with KafkaBroker() as broker:
                print(f"single node at {broker.bootstrap} started in {broker.start_seconds:.1f} s")
            if args.cluster:
                with KafkaCluster() as cluster:
                    print(f"cluster at {cluster.bootstrap} started in {cluster.start_seconds:.1f} s")
    except KafkaHarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
