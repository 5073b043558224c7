"""MQTT face terminals against a real Mosquitto broker, with a real publisher playing the terminal.

The shared broker on 127.0.0.1:1883 carries every test on a topic of its own; the reconnect test
starts a private Mosquitto on a free port so that it can kill and restart it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gridwatch.core.config.gates import MqttGateConfig
from gridwatch.core.interfaces import GateBusy, GateEvent, SourceState
from ingest.gates.mqtt import CaptureRejected, MqttGateSource, capture_picture, parse_capture
from tests.ingest.polling import eventually
from tests.support.gate_payloads import face_jpeg, mqtt_capture
from tests.support.kafka import free_port
from tests.support.mosquitto import HOST, PORT, is_listening, require_mosquitto
from tests.support.paths import TESTDATA

DEADLINE_S = 10.0
PNG_FACE = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"


def gate_config(topic: str, **overrides: Any) -> MqttGateConfig:
    fields: dict[str, Any] = {
        "id": "door-east",
        "kind": "mqtt",
        "host": HOST,
        "port": PORT,
        "topic": topic,
        "doors": [{"door": "2", "direction": "out"}],
        "default_direction": "in",
        "timezone": "Asia/Shanghai",
        "backoff": {"initial_s": 0.05, "max_s": 0.5},
    }
    fields.update(overrides)
    return MqttGateConfig.model_validate(fields)


class Terminal:
    """The test's face terminal: publishes captures and collects the acknowledgements it gets."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.acks: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def publish(self, topic: str, payload: bytes) -> None:
        await self.client.publish(topic, payload, qos=1)

    async def next_ack(self, timeout_s: float = DEADLINE_S) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.acks.get(), timeout_s)


@asynccontextmanager
async def terminal(ack_filter: str, port: int = PORT) -> AsyncIterator[Terminal]:
    async with aiomqtt.Client(HOST, port, identifier=f"terminal-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(ack_filter, qos=1)
        device = Terminal(client)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                await device.acks.put((message.topic.value, json.loads(message.payload)))

        task = asyncio.create_task(collect(), name="test-terminal-acks")
        try:
            yield device
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


class Events:
    """The handler a source is given; records what it was handed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[GateEvent] = asyncio.Queue()

    async def __call__(self, event: GateEvent) -> None:
        await self.queue.put(event)

    async def next(self, timeout_s: float = DEADLINE_S) -> GateEvent:
        return await asyncio.wait_for(self.queue.get(), timeout_s)


@pytest.fixture
def base_topic() -> str:
    require_mosquitto()
    return f"gridwatch-tests/{uuid.uuid4().hex}"


@asynccontextmanager
async def running(config: MqttGateConfig, events: Events) -> AsyncIterator[MqttGateSource]:
    source = MqttGateSource(config, events)
    await source.start()
    try:
        await eventually(lambda: source.status.state is SourceState.ONLINE, DEADLINE_S, "source subscribed")
        yield source
    finally:
        await source.stop()
    assert source.status.state is SourceState.STOPPED


# --- on the shared broker --------------------------------------------------------------------------


async def test_capture_becomes_gate_event_and_is_acknowledged(base_topic: str) -> None:
    topic = f"{base_topic}/capture"
    events = Events()
    picture = face_jpeg("obama")
    async with running(gate_config(topic), events) as source, terminal(f"{topic}/ack") as device:
        await device.publish(
            topic,
            mqtt_capture(
                device_no="T-01",
                sequence_no=7,
                picture=picture,
                cap_time="2024-05-01 08:30:00",  # no offset: the gate's zone (UTC+8)
                picture_field="face_picture",
                extra={"door_no": 2, "temperature": 36.6, "mask": False, "vendor": {"model": "X1"}},
            ),
        )
        event = await events.next()
        ack_topic, ack = await device.next_ack()
        status = source.status

    assert (event.gate_id, event.serial, event.door, event.direction) == ("door-east", 7, "2", "out")
    assert event.face_image == picture
    assert event.device_time.isoformat() == "2024-05-01T08:30:00+08:00"
    assert event.received_at.tzinfo is not None
    assert (ack_topic, ack) == (f"{topic}/ack", {"device_no": "T-01", "sequence_no": 7, "result": "ok"})
    assert status.extra["events"] == 1
    assert status.extra["rejected"] == 0
    assert status.extra["connected"] is True
    assert status.last_frame_at is not None


async def test_common_field_variants(base_topic: str) -> None:
    topic = f"{base_topic}/capture"
    events = Events()
    picture = face_jpeg("rose")
    payload = json.dumps(
        {
            "device_no": 4711,  # a number, not a string
            "sequence_no": 1,
            "cap_time": 1714552200,  # Unix seconds
            "pic": "data:image/jpeg;base64," + base64.b64encode(picture).decode(),
        }
    ).encode()
    async with running(gate_config(topic), events), terminal(f"{topic}/ack") as device:
        await device.publish(topic, payload)
        event = await events.next()
        _, ack = await device.next_ack()
    assert event.face_image == picture
    assert event.direction == "in"  # no door: the gate's default
    assert event.device_time.isoformat() == "2024-05-01T08:30:00+00:00"
    assert ack == {"device_no": "4711", "sequence_no": 1, "result": "ok"}


async def test_bad_captures_are_rejected_acknowledged_and_counted(base_topic: str) -> None:
    topic = f"{base_topic}/capture"
    events = Events()
    jpeg = face_jpeg("obama")
    bad: list[tuple[bytes, dict[str, Any]]] = [
        (b'{"device_no": "T-01", "sequence_no": 1, "face_picture": "', {"device_no": None, "sequence_no": None}),
        (
            mqtt_capture(device_no="T-01", sequence_no=2, picture=PNG_FACE.read_bytes()),
            {"device_no": "T-01", "sequence_no": 2},
        ),
        (
            mqtt_capture(device_no="T-01", sequence_no=3, picture=jpeg[: len(jpeg) // 2]),
            {"device_no": "T-01", "sequence_no": 3},
        ),
        (json.dumps({"device_no": "T-01", "sequence_no": 4}).encode(), {"device_no": "T-01", "sequence_no": 4}),
        (
            json.dumps({"device_no": "T-01", "sequence_no": 5, "img": "%%% not base64 %%%"}).encode(),
            {"reason": "picture is not valid base64"},
        ),
        (b"[1, 2, 3]", {"device_no": None}),
    ]
    async with running(gate_config(topic), events) as source, terminal(f"{topic}/ack") as device:
        for payload, _ in bad:
            await device.publish(topic, payload)
        acks = [(await device.next_ack())[1] for _ in bad]
        # The subscription goes on: a good capture after the bad ones is handed on.
        await device.publish(topic, mqtt_capture(device_no="T-01", sequence_no=6, picture=jpeg))
        event = await events.next()
        assert (await device.next_ack())[1]["result"] == "ok"
        status = source.status

    for ack, (_, expected) in zip(acks, bad, strict=True):
        assert ack["result"] == "rejected"
        assert ack["reason"]
        assert expected.items() <= ack.items(), ack
    assert "not a JPEG" in acks[1]["reason"]
    assert "truncated" in acks[2]["reason"]
    assert "no face picture" in acks[3]["reason"]
    assert event.serial == 6
    assert events.queue.empty()
    assert status.extra["rejected"] == len(bad)
    assert status.extra["events"] == 1
    assert status.state is SourceState.ONLINE


def deeply_nested(depth: int = 100_000, **fields: Any) -> bytes:
    """A capture whose extra field nests ``depth`` lists: valid JSON that Python's parser cannot hold."""
    head = json.dumps(fields)[:-1].encode()
    return head + b', "vendor": ' + b"[" * depth + b"]" * depth + b"}"


async def test_hostile_captures_get_rejected_acknowledgements_and_valid_ones_still_pass(
    base_topic: str, bomb_jpeg: bytes
) -> None:
    """Issue 13: deep nesting and overflowing dates were never acknowledged (the terminal resends forever)."""
    topic = f"{base_topic}/{{device}}/capture".replace("{device}", "T-07")
    events = Events()
    jpeg = face_jpeg("obama")
    hostile: list[tuple[bytes, dict[str, Any], str]] = [
        (deeply_nested(device_no="T-07", sequence_no=1), {"sequence_no": 1}, "nested too deeply"),
        (
            mqtt_capture(device_no="T-07", sequence_no=2, picture=jpeg, cap_time="0001-01-01T00:00:00+14:00"),
            {"sequence_no": 2},
            "device time",
        ),
        (
            mqtt_capture(device_no="T-07", sequence_no=3, picture=jpeg, cap_time="9999-12-31T23:59:59-12:00"),
            {"sequence_no": 3},
            "device time",
        ),
        (mqtt_capture(device_no="T-07", sequence_no=4, picture=bomb_jpeg), {"sequence_no": 4}, "4096 pixels"),
        (
            b'{"device_no": "T-07", "sequence_no": 5, "temperature": ' + b"9" * 5000 + b"}",
            {"sequence_no": 5},
            "too many digits",
        ),
        (
            json.dumps({"device_no": "T-07", "sequence_no": 10**400, "cap_time": float("nan")}).encode(),
            {"sequence_no": None},
            "sequence_no",
        ),
        (b'{"device_no": "T-07", "sequence_no": 7, "img": "\xff\xfe"}', {"sequence_no": 7}, "not UTF-8"),
    ]
    # Acknowledgements per device: a rejection without the device number could not be addressed at all.
    config = gate_config(f"{base_topic}/+/capture", ack_topic=f"{base_topic}/{{device_no}}/ack")
    async with running(config, events) as source, terminal(f"{base_topic}/T-07/ack") as device:
        for serial, (payload, _, _) in enumerate(hostile, start=100):
            await device.publish(topic, payload)
            # Valid captures interleaved: each still handed on and acknowledged.
            await device.publish(topic, mqtt_capture(device_no="T-07", sequence_no=serial, picture=jpeg))
        acks = [(await device.next_ack())[1] for _ in range(2 * len(hostile))]
        handed_on = [(await events.next()).serial for _ in hostile]
        status = source.status

    rejected = [ack for ack in acks if ack["result"] == "rejected"]
    accepted = [ack["sequence_no"] for ack in acks if ack["result"] == "ok"]
    assert accepted == handed_on == list(range(100, 100 + len(hostile)))
    assert len(rejected) == len(hostile)
    for ack, (_, expected, reason) in zip(rejected, hostile, strict=True):
        assert ack["device_no"] == "T-07"
        assert expected.items() <= ack.items(), ack
        assert reason in ack["reason"], ack
    assert status.extra["rejected"] == len(hostile)


@pytest.fixture(scope="module")
def bomb_jpeg() -> bytes:
    """A real 6000×6600 grey JPEG at quality 1 (~460 KB) whose decode would take ~120 MB."""
    import cv2
    import numpy as np

    ok, encoded = cv2.imencode(".jpg", np.full((6600, 6000), 128, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 1])
    assert ok
    return encoded.tobytes()


async def test_resent_capture_is_acknowledged_but_handed_on_once(base_topic: str) -> None:
    topic = f"{base_topic}/capture"
    events = Events()
    capture = mqtt_capture(device_no="T-01", sequence_no=41, picture=face_jpeg("kit"))
    async with running(gate_config(topic), events) as source, terminal(f"{topic}/ack") as device:
        await device.publish(topic, capture)
        await device.publish(topic, capture)
        first, second = (await device.next_ack())[1], (await device.next_ack())[1]
        # Another device may use the same sequence number.
        await device.publish(topic, mqtt_capture(device_no="T-02", sequence_no=41, picture=face_jpeg("kit")))
        await device.next_ack()
        # A gap of two captures that never came.
        await device.publish(topic, mqtt_capture(device_no="T-01", sequence_no=44, picture=face_jpeg("kit")))
        await device.next_ack()
        received = [await events.next() for _ in range(3)]
        status = source.status
    assert first == second == {"device_no": "T-01", "sequence_no": 41, "result": "ok"}
    assert [e.serial for e in received] == [41, 41, 44]
    assert events.queue.empty()
    assert status.extra["duplicates"] == 1
    assert (status.extra["serial_gaps"], status.extra["missed_events"]) == (1, 2)
    assert status.extra["events"] == 3


class BusyFirst(Events):
    """A handler whose recognition is saturated for the first ``refusals`` events, or that fails."""

    def __init__(self, refusals: int, error: Exception | None = None) -> None:
        super().__init__()
        self.refusals = refusals
        self.error = error

    async def __call__(self, event: GateEvent) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise self.error or GateBusy("the gate's recognition queue is full (8)", 2)
        await super().__call__(event)


@pytest.mark.parametrize("error", [None, RuntimeError("downstream failed")], ids=["busy", "failed"])
async def test_a_capture_not_taken_is_not_acknowledged_and_its_resend_is_taken(
    base_topic: str, error: Exception | None
) -> None:
    topic = f"{base_topic}/capture"
    events = BusyFirst(1, error)
    capture = mqtt_capture(device_no="T-01", sequence_no=7, picture=face_jpeg("kit"))
    async with running(gate_config(topic), events) as source, terminal(f"{topic}/ack") as device:
        await device.publish(topic, capture)
        with pytest.raises(TimeoutError):
            await device.next_ack(timeout_s=1.0)  # no acknowledgement: the terminal keeps the capture
        await device.publish(topic, capture)  # its resend timer ran out
        ack = (await device.next_ack())[1]
        received = await events.next()
        status = source.status
    assert ack == {"device_no": "T-01", "sequence_no": 7, "result": "ok"}
    assert received.serial == 7
    assert events.queue.empty()
    assert status.extra["busy" if error is None else "handler_errors"] == 1
    assert (status.extra["duplicates"], status.extra["events"], status.extra["rejected"]) == (0, 1, 0)


async def test_wildcard_subscription_ignores_its_own_acknowledgements(base_topic: str) -> None:
    events = Events()
    config = gate_config(f"{base_topic}/#")  # acknowledgements go to {topic}/ack: under the same wildcard
    async with running(config, events) as source, terminal(f"{base_topic}/+/capture/ack") as device:
        for number, door in enumerate(("lobby", "garage"), start=1):
            await device.publish(
                f"{base_topic}/{door}/capture",
                mqtt_capture(device_no=door, sequence_no=number, picture=face_jpeg("alex")),
            )
        acks = sorted([await device.next_ack() for _ in range(2)])
        received = [await events.next() for _ in range(2)]
        # Poll a while for a loop: a re-read ack would be rejected (no picture) and acknowledged again.
        await device.publish(
            f"{base_topic}/lobby/capture", mqtt_capture(device_no="lobby", sequence_no=3, picture=face_jpeg("alex"))
        )
        await events.next()
        await device.next_ack()
        # Counted once the broker confirmed our publish, which may come after the device got it.
        await eventually(lambda: source.status.extra["acks"] == 3, DEADLINE_S, "the third acknowledgement counted")
        status = source.status
    assert [topic for topic, _ in acks] == [f"{base_topic}/garage/capture/ack", f"{base_topic}/lobby/capture/ack"]
    assert {e.serial for e in received} == {1, 2}
    assert status.extra["rejected"] == 0
    assert status.extra["acks"] == 3
    assert device.acks.empty()


async def test_ack_topic_per_device(base_topic: str) -> None:
    events = Events()
    config = gate_config(f"{base_topic}/up", ack_topic=f"{base_topic}/down/{{device_no}}")
    async with running(config, events), terminal(f"{base_topic}/down/#") as device:
        await device.publish(f"{base_topic}/up", mqtt_capture(device_no="T9", sequence_no=1, picture=face_jpeg()))
        # Without a readable device number a rejection cannot be addressed: no acknowledgement.
        await device.publish(f"{base_topic}/up", b"not json")
        await device.publish(f"{base_topic}/up", mqtt_capture(device_no="T9", sequence_no=2, picture=b"GIF89a"))
        acks = [await device.next_ack() for _ in range(2)]
        await events.next()
    assert [topic for topic, _ in acks] == [f"{base_topic}/down/T9"] * 2
    assert [ack["result"] for _, ack in acks] == ["ok", "rejected"]


async def test_logs_hold_no_picture_and_no_password(base_topic: str, caplog: pytest.LogCaptureFixture) -> None:
    topic = f"{base_topic}/capture"
    events = Events()
    picture = face_jpeg("biden")
    encoded = base64.b64encode(picture).decode()
    config = gate_config(topic, username="terminal-user", password="Hunter2-mqtt-secret")
    caplog.set_level(logging.DEBUG)
    async with running(config, events), terminal(f"{topic}/ack") as device:
        await device.publish(topic, mqtt_capture(device_no="T-01", sequence_no=1, picture=picture))
        await device.publish(topic, mqtt_capture(device_no="T-01", sequence_no=2, picture=picture[:-2]))
        await events.next()
        await device.next_ack()
        await device.next_ack()
    text = caplog.text
    assert "rejected payload" in text  # the rejection was logged ...
    assert encoded[:40] not in text  # ... without the picture
    assert "Hunter2-mqtt-secret" not in text
    assert "Hunter2-mqtt-secret" not in repr(config)


# --- on a private broker that the test kills and restarts -----------------------------------------


class PrivateMosquitto:
    """A Mosquitto process of this test only, on a free port; stopped by its own PID."""

    def __init__(self) -> None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        if binary is None:
            pytest.fail("mosquitto is not installed: `apt-get install mosquitto`", pytrace=False)
        self.binary = binary
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="mosquitto-")
        self.config = Path(self._dir.name) / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    async def wait_listening(self) -> None:
        await eventually(lambda: is_listening(HOST, self.port), DEADLINE_S, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
        if process is not None:
            process.wait(timeout=10)

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


@pytest.fixture
def private_broker() -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto()
    try:
        yield broker
    finally:
        broker.close()


async def test_reconnects_after_the_broker_restarts(private_broker: PrivateMosquitto) -> None:
    topic = "terminals/capture"
    events = Events()
    source = MqttGateSource(gate_config(topic, port=private_broker.port), events)
    await source.start()  # the broker is not up yet: the source keeps trying
    try:
        await eventually(lambda: source.status.last_error is not None, DEADLINE_S, "a failed connection attempt")
        assert source.status.state is not SourceState.ONLINE
        private_broker.start()
        await private_broker.wait_listening()
        await eventually(lambda: source.status.state is SourceState.ONLINE, DEADLINE_S, "connected")
        async with terminal(f"{topic}/ack", private_broker.port) as device:
            await device.publish(topic, mqtt_capture(device_no="T-01", sequence_no=1, picture=face_jpeg()))
            assert (await events.next()).serial == 1

        private_broker.stop()
        await eventually(lambda: source.status.state is SourceState.OFFLINE, DEADLINE_S, "disconnect noticed")
        private_broker.start()
        await private_broker.wait_listening()
        await eventually(lambda: source.status.state is SourceState.ONLINE, DEADLINE_S, "reconnected")
        async with terminal(f"{topic}/ack", private_broker.port) as device:
            await device.publish(topic, mqtt_capture(device_no="T-01", sequence_no=2, picture=face_jpeg()))
            assert (await events.next()).serial == 2
            assert (await device.next_ack())[1]["result"] == "ok"
        status = source.status
    finally:
        await source.stop()
    assert status.reconnects >= 1
    assert status.extra["connected"] is True


# --- parsing, without a broker --------------------------------------------------------------------

CONFIG = gate_config("t")


def capture(**fields: Any) -> bytes:
    document = {"device_no": "T1", "sequence_no": 1, "face_picture": base64.b64encode(face_jpeg()).decode()}
    document.update(fields)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (capture(), None),
        (capture(cap_time=1714552200123), None),  # milliseconds
        (capture(cap_time="2024-05-01T08:30:00Z"), None),
        (capture(device_no=None), "device_no: Field required"),
        (capture(device_no="a/b"), "device_no"),
        (capture(device_no=True), "device_no"),
        (capture(sequence_no=-1), "sequence_no"),
        (capture(cap_time=True), "cap_time"),
        (capture(cap_time=1e30), "cap_time"),
        (capture(cap_time="x" * 100), "cap_time"),
        (b"\xff\xfe", "invalid JSON"),
        (b"null", "must be a JSON object"),
        (b" " * (CONFIG.max_image_bytes * 2), "exceeds"),
        (deeply_nested(device_no="T1"), "nested too deeply"),
        (b'{"device_no": "T1", "n": ' + b"1" * 5000 + b"}", "too many digits"),
        (capture(sequence_no=10**400), "sequence_no"),
        (capture(cap_time=float("nan")), "cap_time"),
        (capture(cap_time=float("inf")), "cap_time"),
        (b'{"device_no": "T1", "x": "\xff"}', "not UTF-8"),
    ],
)
def test_parse_capture(payload: bytes, error: str | None) -> None:
    if error is None:
        parsed, address = parse_capture(payload, CONFIG)
        assert (address.device_no, address.sequence_no) == ("T1", 1)
        assert capture_picture(parsed, CONFIG.max_image_bytes) == face_jpeg()
        assert "face_picture" not in repr(parsed)
    else:
        with pytest.raises(CaptureRejected, match=error) as caught:
            parse_capture(payload, CONFIG)
        assert "/9j/" not in caught.value.reason  # no base64 JPEG quoted back


def test_the_memory_of_device_numbers_is_bounded() -> None:
    """``device_no`` comes from the payload: ever new numbers must not grow the memory forever."""
    from ingest.gates.mqtt import MAX_DEVICES, MqttCapture

    async def ignore(event: GateEvent) -> None:
        pass

    source = MqttGateSource(gate_config("bounded/+/capture"), ignore)
    remember = source._remember  # the duplicate check behind every accepted capture
    assert not remember(MqttCapture(device_no="T-kept", sequence_no=1))
    for number in range(MAX_DEVICES * 3):
        assert not remember(MqttCapture(device_no=f"T-{number}", sequence_no=1))
        if number % 100 == 0:  # a device that keeps sending stays remembered
            assert not remember(MqttCapture(device_no="T-kept", sequence_no=2 + number))
    assert len(source._seen) <= MAX_DEVICES
    assert len(source._last_sequence) <= MAX_DEVICES
    assert remember(MqttCapture(device_no="T-kept", sequence_no=2))  # its resend is still caught
    assert remember(MqttCapture(device_no=f"T-{MAX_DEVICES * 3 - 1}", sequence_no=1))
