"""`gridwatch demo` shows its alerts in the operator console: it prints the console's address and a demo
operator's sign-in, and that operator sees the demo camera's alerts through the console API, live."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gridwatch.demo import DEMO_CONFIG

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def demo_config(tmp_path: Path) -> tuple[Path, int]:
    """The bundled demo config with its assets, on free ports and a data directory of this test."""
    config = tmp_path / "demo"
    shutil.copytree(DEMO_CONFIG, config)
    console = free_port()
    text = (config / "gridwatch.yaml").read_text()
    text = text.replace("data_dir: ../../var/demo", f"data_dir: {tmp_path / 'data'}")
    text = text.replace("port: 8080", f"port: {free_port()}").replace("port: 8081", f"port: {console}")
    (config / "gridwatch.yaml").write_text(text)
    return config, console


def test_the_demo_prints_a_console_sign_in_and_its_alerts_reach_the_console(tmp_path: Path) -> None:
    config, port = demo_config(tmp_path)
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gridwatch", "demo", "-c", str(config), "--for", "90"],
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 60
        sign_in = None
        while sign_in is None and time.monotonic() < deadline:
            sign_in = re.search(r"operator console at (\S+)\s+sign in as (\S+) / (\S+)", log.read_text())
            time.sleep(0.2)
        assert sign_in is not None, log.read_text()
        url, user, password = sign_in.groups()
        assert url == f"http://127.0.0.1:{port}/"
        with httpx.Client(base_url=url, timeout=10) as console:
            while True:  # the listener starts after the model pack loaded
                try:
                    answer = console.post("/api/session", json={"username": user, "password": password})
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline + 30, log.read_text()
                    time.sleep(0.3)
            assert answer.status_code == 200, answer.text
            alerts: list[dict[str, object]] = []
            while not alerts and time.monotonic() < deadline + 60:
                alerts = console.get("/api/alerts").json()["alerts"]
                time.sleep(0.5)
            assert alerts, log.read_text()
            assert alerts[0]["rule"] == "demo-seen"
            assert alerts[0]["grid"] == "demo-grid"
            assert console.get("/api/users").status_code == 403  # an operator, nothing more
    finally:
        process.terminate()
        process.wait(30)
    assert json.loads((tmp_path / "data" / "alerts.jsonl").read_text().splitlines()[0])["rule"] == "demo-seen"
