"""Frame → alert on the operator console: latency through the whole running service, to the console's live feed.

The service runs in-process with an ``isapi_push`` gate, real models, FAISS, the `seen` rule (cooldown 0),
the case desk and the console listener. A real HTTP client posts ISAPI events of an enrolled person
(``biden2.jpg``; enrolled from ``biden.jpg``) one at a time; a real client of the console's live feed
(``GET /api/alerts/stream``, server-sent events, an operator's bearer token made with `gridwatch users add`
and `gridwatch tokens create`) notes when each ``alert`` event arrives. The pages put a row in the queue
from exactly that event, so this is the time to the console page minus the page's own drawing.

- latency = the POST started (the terminal sends its snapshot) → the console feed delivered the alert;
- baseline (same run, same events): the POST started → the terminal's 200 answer, i.e. the alert
  committed in the outbox with its case (the service's own acknowledgement point). Printed with the
  ratio latency / baseline: what the console feed adds on top.

Printed: p50/p99 of both and the ratio, then one JSON line. Nothing is asserted.

    .venv/bin/python benchmarks/console_latency.py [--events 100] [--warmup 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gridwatch.core.crypto import DATA_KEY_ENV, new_data_key

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GATE = "gate-bench"
ENV = {"GATE_USER": "terminal", "GATE_PASSWORD": "bench-secret"}


def write_config(root: Path) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: console-latency
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
  console: {{enabled: true, host: 127.0.0.1, port: 0}}
gates:
  - {{id: {GATE}, kind: isapi_push, grid: g1, username: "${{GATE_USER}}", password: "${{GATE_PASSWORD}}",
     doors: [{{door: "1", direction: in}}]}}
grids:
  - {{id: g1, name: Grid 1}}
registries:
  - {{name: watch, purpose: benchmark, legal_basis: benchmark fixture, retention_days: 1, threshold: 0.45}}
rules:
  - {{id: seen-bench, kind: seen, registries: [watch], cooldown_s: 0}}
notifier:
  console: {{enabled: false}}
  jsonl: {{enabled: true}}
"""
    )
    return config


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
    }


def cli(*args: str, stdin: str = "") -> str:
    from gridwatch.cli import main

    out = io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out):
            code = main(list(args))
    finally:
        sys.stdin = saved
    if code != 0:
        raise RuntimeError(f"gridwatch {' '.join(args[:2])} failed ({code})")
    return out.getvalue()


async def measure(events: int, warmup: int) -> dict[str, Any]:
    import os

    import httpx

    from gridwatch.core.config.loader import load_config
    from gridwatch.service import Service
    from tests.support.e2e import enrol
    from tests.support.gate_payloads import isapi_event, isapi_push_body
    from tests.support.paths import TESTDATA

    os.environ.update(ENV)
    probe = (TESTDATA / "faces" / "biden" / "biden2.jpg").read_bytes()
    with tempfile.TemporaryDirectory(prefix="console-latency-") as tmp:
        config = write_config(Path(tmp))
        enrol(config, TESTDATA / "faces" / "biden" / "biden.jpg", "Enrolled", env=ENV)
        cli("users", "add", "-c", str(config), "bench-op", "--role", "operator", "--grid", "g1", "--password-stdin",
            stdin="benchmark-password\n")  # fmt: skip
        token = cli("tokens", "create", "-c", str(config), "bench-op").strip().splitlines()[-1]
        service = Service(load_config(config, ENV))
        await service.start()
        arrivals: asyncio.Queue[float] = asyncio.Queue()

        async def feed(console: httpx.AsyncClient) -> None:
            async with console.stream("GET", "/api/alerts/stream") as stream:
                kind = ""
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        kind = line.removeprefix("event: ")
                    elif line.startswith("data: ") and kind == "alert":
                        arrivals.put_nowait(time.perf_counter())

        def delivered() -> bool:
            notifier = service.status()["notifier"]
            assert isinstance(notifier, dict)
            return bool(notifier["outbox"]["pending"] == 0)

        latencies: list[float] = []
        answers: list[float] = []
        try:
            async with (
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{service.http_port}",
                    auth=(ENV["GATE_USER"], ENV["GATE_PASSWORD"]),
                    timeout=30,
                ) as gates,  # fmt: skip
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{service.console_port}",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=None,
                ) as console,
            ):
                reader = asyncio.create_task(feed(console))
                await asyncio.sleep(0.5)  # the feed is subscribed
                for serial in range(1, warmup + events + 1):
                    body, content_type = isapi_push_body(isapi_event(serial, door=1), [probe])
                    posted = time.perf_counter()
                    answer = await gates.post(
                        f"/gates/{GATE}/isapi", content=body, headers={"Content-Type": content_type}
                    )
                    answered = time.perf_counter()
                    answer.raise_for_status()
                    arrived = await asyncio.wait_for(arrivals.get(), 30)
                    if serial > warmup:
                        latencies.append(arrived - posted)
                        answers.append(answered - posted)
                    while not delivered():  # noqa: ASYNC110 (polls the status, as an operator would)
                        await asyncio.sleep(0.005)
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        finally:
            await service.stop()
    return {
        "events": len(latencies),
        "frame_to_console_feed": quantiles(latencies),
        "baseline_frame_to_gate_answer": quantiles(answers),
        "ratio_p50": round(statistics.median(latencies) / statistics.median(answers), 3),
    }


def ensure_data_key() -> None:
    """Templates are sealed at rest: without ``GRIDWATCH_DATA_KEY``, a throwaway key of this run (said so)."""
    if not os.environ.get(DATA_KEY_ENV, "").strip():
        os.environ[DATA_KEY_ENV] = base64.b64encode(new_data_key()).decode("ascii")
        print(f"{DATA_KEY_ENV} is not set: templates are sealed with a throwaway key of this run", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    ensure_data_key()
    figures = asyncio.run(measure(args.events, args.warmup))
    feed, base = figures["frame_to_console_feed"], figures["baseline_frame_to_gate_answer"]
    print(f"frame → alert on the console's live feed: p50 {feed['p50_ms']} ms, p99 {feed['p99_ms']} ms")
    print(f"baseline frame → the gate's 200 answer: p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms")
    print(f"ratio (p50): {figures['ratio_p50']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
