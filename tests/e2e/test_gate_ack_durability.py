"""A gate event answered 2xx is durable; one that is not is resent by the terminal; gates share fairly.

Real parts only: `gridwatch run` in a child process killed with SIGKILL while an emulated Hikvision
terminal pushes real photos of an enrolled person at 8 events/s over a few connections and, like
real terminals, sends every event again until it is answered 2xx. The seen rule (cooldown 0) makes
an alert per event: the alert id buckets the device time by the second, and each serial has its own
second, so a serial maps to one alert id in the outbox. A cooldown runs from delivery, so a sighting
that comes while the previous alert waits undelivered (the JSONL sink takes them within
milliseconds: rare) is suppressed instead, and counted in the database; the test allows an event
without its own alert only against such a count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sqlite3
import time
from collections import Counter, deque
from pathlib import Path

import httpx
import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Alert, alert_id_of, event_id_for
from gridwatch.gate_intake import GATE_QUEUE_SIZE
from gridwatch.service import Service
from recognition.recognizer import gate_event_key
from tests.e2e.test_warning_models import ENV, SAME_PERSON, free_port, gridwatch_run, status
from tests.ingest.polling import eventually
from tests.support.e2e import enrol
from tests.support.gate_payloads import isapi_event, isapi_push_body
from tests.support.paths import TESTDATA

pytestmark = pytest.mark.e2e

ENROLLED_PHOTO = TESTDATA / "faces" / "biden" / "biden.jpg"
RULE = "seen-any"
RATE_PER_S = 8
CYCLES = 3
CYCLE_S = 4.0
CONNECTIONS = 4
DEADLINE_S = 180.0


def write_config(root: Path, *, port: int, gates: list[str]) -> Path:
    config = root / "config"
    config.mkdir()
    gate_lines = "".join(
        f"""  - id: {gate}
    kind: isapi_push
    username: ${{GATE_USER}}
    password: ${{GATE_PASSWORD}}
    doors: [{{door: "1", direction: in}}]
"""
        for gate in gates
    )
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: e2e-gate-ack
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: {port}}}
gates:
{gate_lines}registries:
  - name: residents
    purpose: welfare visits for residents living alone
    legal_basis: consent of the resident
    retention_days: 1
    threshold: 0.45
rules:
  - {{id: {RULE}, kind: seen, registries: [residents], cooldown_s: 0}}
notifier:
  console: {{enabled: false}}
  jsonl: {{enabled: true}}
"""
    )
    return config


class Terminal:
    """An emulated push terminal: new events at a fixed rate, each sent until it is answered 2xx."""

    def __init__(self, port: int, gate: str, base: dt.datetime) -> None:
        self.url = f"http://127.0.0.1:{port}/gates/{gate}/isapi"
        self.base = base
        self.photo = SAME_PERSON.read_bytes()
        self.next_serial = 1
        self.backlog: deque[int] = deque()
        self.acked: set[int] = set()
        self.answers: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.retry_after: set[str] = set()
        self.in_flight = 0
        self.user, self.password = ENV["GATE_USER"], ENV["GATE_PASSWORD"]

    def device_time(self, serial: int) -> dt.datetime:
        return self.base + dt.timedelta(seconds=serial)

    def new_event(self) -> None:
        self.backlog.append(self.next_serial)
        self.next_serial += 1

    async def produce(self, seconds: float) -> None:
        for _ in range(round(seconds * RATE_PER_S)):
            self.new_event()
            await asyncio.sleep(1 / RATE_PER_S)

    async def send(self, http: httpx.AsyncClient, serial: int) -> int | None:
        """POST one event; the status code, or None when the connection failed."""
        event = isapi_event(serial, door=1, date_time=self.device_time(serial).isoformat(timespec="seconds"))
        body, content_type = isapi_push_body(event, [self.photo])
        started = time.monotonic()
        self.in_flight += 1
        try:
            response = await http.post(
                self.url, content=body, headers={"Content-Type": content_type}, auth=(self.user, self.password)
            )
        except httpx.HTTPError:
            self.answers["no answer"] += 1
            return None
        finally:
            self.in_flight -= 1
        self.answers[str(response.status_code)] += 1
        if response.status_code == 503:
            self.retry_after.add(response.headers.get("Retry-After", ""))
        if 200 <= response.status_code < 300:
            self.acked.add(serial)
            self.latencies.append(time.monotonic() - started)
        return response.status_code

    async def connection(self, done: asyncio.Event) -> None:
        """One of the terminal's connections: the oldest unanswered event first; a refused one goes back."""
        async with httpx.AsyncClient(timeout=30) as http:
            while not done.is_set():
                if not self.backlog:
                    await asyncio.sleep(0.02)
                    continue
                serial = self.backlog.popleft()
                code = await self.send(http, serial)
                if code is None or not 200 <= code < 300:
                    self.backlog.appendleft(serial)  # kept, sent again
                    await asyncio.sleep(0.2)


def durable_record(database: Path) -> tuple[set[str], int]:
    """The alert ids in the outbox, and the sightings the cooldown suppressed (on alerts, or still pending)."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT alert_id, alert_json FROM alerts").fetchall()
        (pending,) = connection.execute("SELECT COALESCE(SUM(suppressed), 0) FROM cooldowns").fetchone()
    suppressed = sum(Alert.model_validate_json(alert_json).suppressed for _, alert_json in rows)
    return {alert_id for alert_id, _ in rows}, suppressed + int(pending)


async def test_every_event_answered_2xx_survives_sigkill_and_the_rest_is_resent(tmp_path: Path) -> None:
    port = free_port()
    gate = "home-gate"
    config = write_config(tmp_path, port=port, gates=[gate])
    person_id = enrol(config, ENROLLED_PHOTO, "Resident", registry="residents", env=ENV)
    database = tmp_path / "data" / "gridwatch.sqlite3"
    log = tmp_path / "service.log"
    terminal = Terminal(port, gate, dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1))

    def alert_of(serial: int) -> str:
        # Alert ids come from the gate event's own identity (gate, serial, device time), as recognition makes it.
        event_key = gate_event_key(gate, serial, terminal.device_time(serial))
        assert event_key is not None
        return alert_id_of(RULE, person_id, event_id_for(event_key, "residents", person_id))

    for cycle in range(CYCLES):
        stop_sending = asyncio.Event()
        with gridwatch_run(config, log) as process:
            await status(port)
            senders = [asyncio.create_task(terminal.connection(stop_sending)) for _ in range(CONNECTIONS)]
            await terminal.produce(CYCLE_S)
            # Frozen first, so that the next request is surely in flight (not yet answered) when it dies.
            process.send_signal(signal.SIGSTOP)
            terminal.new_event()
            await eventually(lambda: terminal.in_flight > 0, DEADLINE_S, "a request in flight")
            process.send_signal(signal.SIGKILL)  # requests in flight, events in recognition
            process.wait(timeout=30)
            stop_sending.set()
            await asyncio.gather(*senders)
        stored, suppressed = durable_record(database)
        without_alert = sorted(serial for serial in terminal.acked if alert_of(serial) not in stored)
        assert len(without_alert) <= suppressed, (
            f"cycle {cycle}: answered 2xx, but neither alerted nor suppressed: {without_alert} (see {log})"
        )

    pushed = set(range(1, terminal.next_serial))
    assert len(pushed) >= CYCLES * CYCLE_S * RATE_PER_S
    # The kills cut requests (those events are resent below). Not necessarily one per kill: an answer the
    # service wrote just before SIGSTOP still reaches the terminal from the kernel's buffer.
    assert terminal.answers["no answer"] >= 1

    finished = asyncio.Event()
    with gridwatch_run(config, log):
        await status(port)
        senders = [asyncio.create_task(terminal.connection(finished)) for _ in range(CONNECTIONS)]
        deadline = time.monotonic() + DEADLINE_S
        while terminal.acked != pushed and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        finished.set()
        await asyncio.gather(*senders)
        stored, suppressed = durable_record(database)
    assert terminal.acked == pushed, f"never answered 2xx: {sorted(pushed - terminal.acked)} (see {log})"
    expected = {alert_of(serial): serial for serial in pushed}
    # No alert but for a pushed event: the resends of events taken before a kill made no second one.
    assert stored <= set(expected)
    assert len(pushed) - len(stored) <= suppressed, f"not alerted: {sorted(set(expected) - stored)} (see {log})"
    print(
        f"\n{CYCLES} kill -9 cycles at {RATE_PER_S} pushes/s: {len(pushed)} events, answers {dict(terminal.answers)}, "
        f"{len(stored)} alerts + {suppressed} suppressed sightings, {len(pushed) - len(stored)} events without an alert"
    )


async def test_a_flooding_gate_is_refused_with_503_while_another_gate_is_answered(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port=port, gates=["flood-gate", "quiet-gate"])
    enrol(config, ENROLLED_PHOTO, "Resident", registry="residents", env=ENV)
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    flood = Terminal(port, "flood-gate", base)
    quiet = Terminal(port, "quiet-gate", base)
    service = Service(load_config(config, ENV))
    await service.start()
    try:
        # Three times the gate's queue at once, over as many connections.
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as flood_http:
            for _ in range(3 * GATE_QUEUE_SIZE):
                flood.new_event()
            burst = [asyncio.create_task(flood.send(flood_http, serial)) for serial in list(flood.backlog)]
            await asyncio.sleep(0.5)  # the flooding gate's queue is full now
            async with httpx.AsyncClient(timeout=30) as quiet_http:
                quiet_codes = [await quiet.send(quiet_http, serial) for serial in range(1, 4)]
            flood_codes = await asyncio.gather(*burst)
        gate_queue = service.status()["gate_queue"]
    finally:
        await service.stop()

    assert quiet_codes == [200, 200, 200]
    # A turn of the flooding gate's events at most before each of the quiet gate's.
    assert max(quiet.latencies) < 10.0
    assert flood_codes.count(503) >= GATE_QUEUE_SIZE  # a full gate queue refuses; the terminal keeps the event
    assert flood_codes.count(200) >= GATE_QUEUE_SIZE
    assert set(flood_codes) <= {200, 503}
    assert flood.retry_after == {"2"}
    assert isinstance(gate_queue, dict)
    assert gate_queue["gates"]["flood-gate"]["refused"] == flood_codes.count(503)
    assert gate_queue["gates"]["quiet-gate"]["processed"] == 3
    assert gate_queue["gates"]["quiet-gate"]["dropped"] == 0
