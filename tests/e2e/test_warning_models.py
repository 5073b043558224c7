"""Warning models end to end: absence timers and cooldowns survive SIGKILL; cooldowns run from delivery.

Real parts only: the service (real models, FAISS, rules, outbox) runs as `gridwatch run` in a child
process (killed with SIGKILL) or in-process, a real HTTP client plays a Hikvision terminal pushing
ISAPI events with real photos, and Apache Kafka is a broker of this test that is stopped and started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Alert
from gridwatch.service import Service
from tests.ingest.polling import eventually
from tests.support.e2e import alert_consumer, enrol, next_alert
from tests.support.gate_payloads import isapi_event, isapi_push_body
from tests.support.kafka import KafkaBroker, unique_topic
from tests.support.paths import TESTDATA

pytestmark = pytest.mark.e2e

ENROLLED_PHOTO = TESTDATA / "faces" / "biden" / "biden.jpg"
SAME_PERSON = TESTDATA / "faces" / "biden" / "biden2.jpg"
GATE = "home-gate"
ENV = {"GATE_USER": "terminal", "GATE_PASSWORD": "e2e-gate-secret"}
ABSENCE_S = 12
DEADLINE_S = 60.0
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(root: Path, *, port: int, notifier: str, rules: str) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: e2e-warning-models
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: {port}}}
gates:
  - id: {GATE}
    kind: isapi_push
    grid: grid-north
    username: ${{GATE_USER}}
    password: ${{GATE_PASSWORD}}
    doors: [{{door: "1", direction: in}}]
registries:
  - name: living_alone
    purpose: welfare visits for residents living alone
    legal_basis: consent of the resident
    retention_days: 1
    threshold: 0.45
rules:
{rules}
notifier:
{notifier}
"""
    )
    return config


async def push(port: int, serial: int, photo: Path, at: dt.datetime) -> None:
    event = isapi_event(serial, door=1, date_time=at.isoformat(timespec="seconds"))
    body, content_type = isapi_push_body(event, [photo.read_bytes()])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        response = await http.post(
            f"/gates/{GATE}/isapi", content=body, headers={"Content-Type": content_type}, auth=tuple(ENV.values())
        )
    assert response.status_code == 200, response.text


def alerts_in(path: Path) -> list[Alert]:
    if not path.exists():
        return []
    return [Alert.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]


@contextmanager
def gridwatch_run(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`gridwatch run -c CONFIG` in a child process; killed at the end if the test did not."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gridwatch", "run", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def status(port: int, deadline_s: float = DEADLINE_S) -> dict[str, object]:
    """``/status`` once the service answers."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                answer: dict[str, object] = (await http.get("/status")).json()
                return answer
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_absence_timer_and_cooldown_survive_sigkill(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        port=port,
        notifier="  console: {enabled: true}\n  jsonl: {enabled: true}",
        rules=(
            "  - {id: seen-home, kind: seen, registries: [living_alone], cooldown_s: 600}\n"
            f"  - {{id: welfare, kind: not_seen, registries: [living_alone], sources: [{GATE}], after_s: {ABSENCE_S}}}"
        ),
    )
    person_id = enrol(config, ENROLLED_PHOTO, "Resident", registry="living_alone", env=ENV)
    jsonl = tmp_path / "data" / "alerts.jsonl"
    log = tmp_path / "service.log"

    with gridwatch_run(config, log) as first:
        await status(port)
        seen_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        await push(port, 1, SAME_PERSON, seen_at)  # the absence restarts now; the seen rule alerts
        await eventually(lambda: len(alerts_in(jsonl)) == 1, DEADLINE_S, "the seen alert (see service.log)")
        first.send_signal(signal.SIGKILL)  # before the absence is due
        first.wait(timeout=30)
    [seen] = alerts_in(jsonl)
    assert (seen.rule, seen.person_id) == ("seen-home", person_id)
    due = seen_at + dt.timedelta(seconds=ABSENCE_S)
    await asyncio.sleep(max((due - dt.datetime.now(dt.UTC)).total_seconds(), 0) + 2)  # down past the deadline

    with gridwatch_run(config, log):
        await status(port)
        await eventually(
            lambda: any(a.rule == "welfare" for a in alerts_in(jsonl)),
            DEADLINE_S,
            "the welfare alert (see service.log)",
        )
        # Within the cooldown of the first process's alert: suppressed and counted, not alerted.
        await push(port, 2, SAME_PERSON, dt.datetime.now(dt.UTC).replace(microsecond=0))
        state = await _wait_suppressed(port, "seen-home", 1)
        await asyncio.sleep(3)  # an overdue timer fires once, not again
        alerts = alerts_in(jsonl)
    assert [a.rule for a in alerts] == ["seen-home", "welfare"]
    welfare = alerts[1]
    assert (welfare.kind, welfare.person_id, welfare.source) == ("not_seen", person_id, GATE)
    # Since the server received the sighting: the push's second, or the next minute if it was sent at :59.
    since = {f"{t:%Y-%m-%d %H:%M}" for t in (seen_at, seen_at + dt.timedelta(seconds=5))}
    assert any(f"not seen at {GATE} since {t} UTC" in welfare.explanation for t in since), welfare.explanation
    assert state["suppressed"] == 1


async def _wait_suppressed(port: int, rule: str, count: int) -> dict[str, int]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        rules = (await status(port))["rules"]
        assert isinstance(rules, dict)
        by_rule = rules["by_rule"][rule]
        if by_rule["suppressed"] >= count or time.monotonic() > deadline:
            return dict(by_rule)
        await asyncio.sleep(0.2)


async def test_cooldown_runs_from_delivery_while_kafka_is_down(tmp_path: Path) -> None:
    topic = unique_topic("cooldown")
    with KafkaBroker() as broker:
        port = free_port()
        config = write_config(
            tmp_path,
            port=port,
            notifier=(
                "  console: {enabled: false}\n"
                "  outbox: {retry_initial_s: 0.2, retry_max_s: 1.0}\n"
                f"  kafka: {{enabled: true, bootstrap_servers: '{broker.bootstrap}', topic: {topic},"
                " request_timeout_ms: 3000}"
            ),
            rules="  - {id: seen-home, kind: seen, registries: [living_alone], cooldown_s: 2}",
        )
        person_id = enrol(config, ENROLLED_PHOTO, "Resident", registry="living_alone", env=ENV)
        async with alert_consumer(broker.bootstrap, topic) as consumer:
            service = Service(load_config(config, ENV))
            await service.start()
            try:
                broker.stop()
                now = dt.datetime.now(dt.UTC).replace(microsecond=0)
                await push(port, 1, SAME_PERSON, now)
                await _wait_status(service, lambda s: s["rules"]["alerts"] == 1, "the first alert made")
                # Far past the 2 s cooldown, but the alert still waits undelivered: suppressed.
                await asyncio.sleep(3)
                await push(port, 2, SAME_PERSON, now + dt.timedelta(seconds=3))
                await push(port, 3, SAME_PERSON, now + dt.timedelta(seconds=4))
                await _wait_status(
                    service, lambda s: s["rules"]["by_rule"]["seen-home"]["suppressed"] == 2, "two sightings suppressed"
                )
                rules: Any = service.status()["rules"]
                assert rules["alerts"] == 1

                broker.start()
                first = await next_alert(consumer, DEADLINE_S)
                assert first is not None
                assert (first.person_id, first.suppressed) == (person_id, 0)
                assert await next_alert(consumer, 3.0) is None  # exactly one alert for the outage

                # Delivered, and the 2 s cooldown from the delivery is over: the next alert carries the count.
                await asyncio.sleep(2.5)
                await push(port, 4, SAME_PERSON, now + dt.timedelta(seconds=60))
                second = await next_alert(consumer, DEADLINE_S)
            finally:
                await service.stop()
    assert second is not None
    assert second.suppressed == 2
    assert second.alert_id != first.alert_id


async def _wait_status(service: Service, condition: Callable[[Any], bool], what: str) -> None:
    def holds() -> bool:
        try:
            return condition(service.status())
        except (KeyError, TypeError):
            return False

    await eventually(holds, DEADLINE_S, what)
