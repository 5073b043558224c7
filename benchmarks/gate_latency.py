"""Gate event → Kafka alert latency, through the whole service, on real parts.

The service runs in-process with an ``isapi_push`` gate, real models, FAISS, rules (cooldown 0, so
every event makes an alert), the outbox and the Kafka sink publishing to Apache Kafka (a single node
of the test harness; idempotent producer). A real HTTP client posts ISAPI multipart events of an
enrolled person (``biden2.jpg``; enrolled from ``biden.jpg``), one at a time, each with its own
serial and a device time one minute after the previous one (so each event has its own alert id). A
real aiokafka consumer notes when each alert arrives; alerts are matched to posts by their
deterministic alert id.

Latency = time the POST started → time the consumer received the alert. Baseline (same run, same
JPEG, same model pack and registry): JPEG decode + recognition alone. Printed: p50/p99 of the
latency, the HTTP answer time the terminal sees, the baseline p50 and the ratio. Nothing is asserted.

The measuring consumer polls with ``fetch_max_wait_ms=10`` by default, so that the consumer's own
long-poll wait cannot add to the figure (``--fetch-max-wait-ms 500`` is aiokafka's default).

    .venv/bin/python benchmarks/gate_latency.py [--events 200] [--warmup 5] [--fetch-max-wait-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gridwatch.core.crypto import DATA_KEY_ENV, new_data_key

REPO = Path(__file__).resolve().parents[1]
GATE = "gate-bench"
RULE = "seen-bench"
TOPIC = "gridwatch.alerts"
USER, PASSWORD = "terminal", "bench-secret"
BASE_DEVICE_TIME = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
ALERT_DEADLINE_S = 30.0


def write_config(root: Path, bootstrap: str) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: gate-latency
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
gates:
  - {{id: {GATE}, kind: isapi_push, username: "${{GATE_USER}}", password: "${{GATE_PASSWORD}}",
     doors: [{{door: "1", direction: in}}]}}
registries:
  - {{name: watch, purpose: benchmark, legal_basis: benchmark fixture, retention_days: 1, threshold: 0.45}}
rules:
  - {{id: {RULE}, kind: seen, registries: [watch], cooldown_s: 0}}
notifier:
  console: {{enabled: false}}
  kafka: {{enabled: true, bootstrap_servers: "{bootstrap}", topic: {TOPIC}}}
"""
    )
    return config


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run(events: int, warmup: int, baseline_runs: int, fetch_max_wait_ms: int) -> dict[str, Any]:
    import httpx
    from aiokafka import AIOKafkaConsumer

    from gridwatch.core.config.loader import load_config
    from gridwatch.core.events import SourceKind
    from gridwatch.service import Service
    from recognition.recognizer import Recognizer, SourceInfo
    from recognition.stage import decode_jpeg
    from tests.support.e2e import enrol
    from tests.support.gate_payloads import isapi_event, isapi_push_body
    from tests.support.kafka import KafkaBroker, create_topic
    from tests.support.paths import TESTDATA

    env = {"GATE_USER": USER, "GATE_PASSWORD": PASSWORD}
    enrolled_photo = TESTDATA / "faces" / "biden" / "biden.jpg"
    probe = (TESTDATA / "faces" / "biden" / "biden2.jpg").read_bytes()

    with tempfile.TemporaryDirectory(prefix="gate-latency-") as tmp, KafkaBroker() as kafka:
        config = write_config(Path(tmp), kafka.bootstrap)
        enrol(config, enrolled_photo, "Enrolled", env=env)
        await create_topic(kafka.bootstrap, TOPIC, partitions=1)
        consumer = AIOKafkaConsumer(
            TOPIC, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=fetch_max_wait_ms
        )
        await consumer.start()
        service = Service(load_config(config, env))
        await service.start()
        arrivals: asyncio.Queue[float] = asyncio.Queue()

        async def receive() -> None:
            async for _record in consumer:
                arrivals.put_nowait(time.perf_counter())

        def delivered() -> bool:
            notifier = service.status()["notifier"]
            assert isinstance(notifier, dict)
            return bool(notifier["outbox"]["pending"] == 0)

        receiver = asyncio.create_task(receive(), name="bench-consumer")
        latencies: list[float] = []
        answers: list[float] = []
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{service.http_port}", auth=(USER, PASSWORD)
            ) as http:
                for serial in range(1, warmup + events + 1):
                    device_time = BASE_DEVICE_TIME + dt.timedelta(minutes=serial)
                    body, content_type = isapi_push_body(
                        isapi_event(serial, door=1, date_time=device_time.isoformat()), [probe]
                    )
                    posted = time.perf_counter()
                    response = await http.post(
                        f"/gates/{GATE}/isapi", content=body, headers={"Content-Type": content_type}
                    )
                    answered = time.perf_counter()
                    response.raise_for_status()
                    # One event, one alert (its id comes from the event's own id: matched by order here).
                    received = await asyncio.wait_for(arrivals.get(), ALERT_DEADLINE_S)
                    if serial > warmup:
                        latencies.append(received - posted)
                        answers.append(answered - posted)
                    # The cooldown runs from delivery: the person's next alert waits until this one was
                    # recorded as delivered, so the next event is posted only then (not measured).
                    while not delivered():  # noqa: ASYNC110 (polls the status, as an operator would)
                        await asyncio.sleep(0.002)

            # Baseline: the same JPEG through decode + recognition alone, same parts, same thread model.
            parts = service.registries
            recognizer = Recognizer(parts.analyzer, parts.gate, parts.registries)
            source = SourceInfo(GATE, SourceKind.GATE, None)
            baseline: list[float] = []
            for _ in range(warmup + baseline_runs):
                started = time.perf_counter()
                image = decode_jpeg(probe)
                assert image is not None
                sightings = recognizer.recognize(image, source, captured_at=BASE_DEVICE_TIME, direction="in").sightings
                baseline.append(time.perf_counter() - started)
                assert sightings, "the probe no longer matches the enrolled photo"
            baseline = baseline[warmup:]
            status = service.status()
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
            await service.stop()
            await consumer.stop()
    return {
        "latencies": latencies,
        "answers": answers,
        "baseline": baseline,
        "status": status,
    }


def ensure_data_key() -> None:
    """Templates are sealed at rest: without ``GRIDWATCH_DATA_KEY``, a throwaway key of this run (said so)."""
    if not os.environ.get(DATA_KEY_ENV, "").strip():
        os.environ[DATA_KEY_ENV] = base64.b64encode(new_data_key()).decode("ascii")
        print(f"{DATA_KEY_ENV} is not set: templates are sealed with a throwaway key of this run", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, default=200, help="measured events (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=5, help="events posted first and not measured")
    parser.add_argument("--baseline-runs", type=int, default=100, help="recognition-alone runs for the baseline")
    parser.add_argument(
        "--fetch-max-wait-ms",
        type=int,
        default=10,
        help="the measuring consumer's long-poll wait (fetch.max.wait.ms; aiokafka's default is 500)",
    )
    args = parser.parse_args(argv)
    ensure_data_key()
    sys.path.insert(0, str(REPO))  # the test helpers (Kafka broker, payload builders) live in tests/support
    logging.basicConfig(level=logging.WARNING)

    result = asyncio.run(run(args.events, args.warmup, args.baseline_runs, args.fetch_max_wait_ms))
    latencies = [s * 1000 for s in result["latencies"]]
    answers = [s * 1000 for s in result["answers"]]
    baseline = [s * 1000 for s in result["baseline"]]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    base_p50 = statistics.median(baseline)
    queue = result["status"]["gate_queue"]
    print(f"gate event → Kafka alert, {len(latencies)} events (isapi_push, one in flight, cooldown 0):")
    print(
        f"  latency    p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   mean {statistics.mean(latencies):7.1f} ms   "
        f"max {max(latencies):7.1f} ms"
    )
    print(
        f"  HTTP answer to the terminal   p50 {percentile(answers, 50):7.1f} ms   p99 {percentile(answers, 99):7.1f} ms"
    )
    print(f"  baseline: decode + recognition alone, same JPEG, {len(baseline)} runs   p50 {base_p50:7.1f} ms")
    print(f"  ratio latency p50 / baseline p50: {p50 / base_p50:.2f}")
    print(f"  gate queue: processed {queue['processed']}, dropped {queue['dropped']}, failed {queue['failed']}")
    figures = {
        "events": len(latencies),
        "latency_p50_ms": round(p50, 1),
        "latency_p99_ms": round(p99, 1),
        "answer_p50_ms": round(percentile(answers, 50), 1),
        "baseline_p50_ms": round(base_p50, 1),
        "ratio_p50": round(p50 / base_p50, 2),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
