"""gridwatch processes by role (``python -m gridwatch run --role ROLE``) for the scale-out tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def residents_registry(group_prefix: str) -> str:
    """The registry of the `not_seen` rule. The session broker's topics are shared by every test, and a new
    group reads them from the start: registries of this test alone keep other tests' sightings out."""
    return f"residents-{group_prefix}"


def watch_registry(group_prefix: str) -> str:
    """The registry of the `seen` rule (one alert per sighting), of this test alone."""
    return f"watch-{group_prefix}"


def write_rules_config(
    root: Path,
    *,
    bootstrap: str,
    database_url: str,
    group_prefix: str,
    port: int,
    notifier: str = "{console: {enabled: false}}",
) -> Path:
    """One process's config: the site's rules, Kafka and PostgreSQL, and its own data dir and HTTP port."""
    residents, watch = residents_registry(group_prefix), watch_registry(group_prefix)
    config = root / "config"
    config.mkdir(parents=True)
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: scale-{uuid.uuid4().hex[:6]}
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: {port}}}
  database: {{url: "{database_url}"}}
  transport:
    driver: kafka
    kafka:
      bootstrap_servers: {bootstrap}
      group_prefix: {group_prefix}
      partitions: 6
registries:
  - {{name: {residents}, purpose: welfare checks, legal_basis: test fixture, retention_days: 1, threshold: 0.45}}
  - {{name: {watch}, purpose: scale-out test, legal_basis: test fixture, retention_days: 1, threshold: 0.45}}
rules:
  - {{id: absent, kind: not_seen, registries: [{residents}], after_s: 3600}}
  - {{id: seen-watch, kind: seen, registries: [{watch}], cooldown_s: 0}}
notifier: {notifier}
"""
    )
    return config


@dataclass
class RuleWorker:
    """``gridwatch run --role ROLE`` (rules by default) as a subprocess; its output goes to a log file in its root."""

    root: Path
    config: Path
    port: int
    role: str = "rules"
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "worker.log"

    def start(self, env: Mapping[str, str]) -> None:
        environment = {**os.environ, **env, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gridwatch", "run", "-c", str(self.config), "--role", self.role],
                cwd=REPO,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """kill -9: no goodbye to the group, no commit, nothing flushed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=2.0)

    def status(self) -> dict[str, Any] | None:
        """``/status``, or None while the worker is not serving (starting, dead)."""
        try:
            response = self.get("/status")
        except httpx.HTTPError:
            return None
        result: dict[str, Any] = response.json()
        return result

    def metric(self, name: str) -> float:
        """Sum of a metric's samples on ``/metrics``."""
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def partitions(self) -> list[int] | None:
        status = self.status()
        if status is None or status.get("rules") is None:
            return None
        partitions: list[int] | None = status["rules"]["partitions"]
        return partitions

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def share_registry_keys(source: Path, *targets: Path) -> None:
    """The site's registry key file (``keys/`` of a data dir) in every worker's data dir."""
    for target in targets:
        shutil.copytree(source / "keys", target / "keys", dirs_exist_ok=True)


def wait_until(
    condition: Any, deadline_s: float, what: str, poll_s: float = 0.2, workers: Sequence[RuleWorker] = ()
) -> Any:
    """``condition()``'s first true value; on time-out, fails with the workers' last log lines."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    logs = "\n".join(f"--- {w.root.name}:\n{w.tail()}" for w in workers)
    raise AssertionError(f"timed out after {deadline_s:.0f} s waiting for {what}\n{logs}")
