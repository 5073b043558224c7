"""The console's listener as the service builds it: HTTPS with a Secure cookie, and the feed it is given."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx

from gridwatch.console.listener import ConsoleListener
from gridwatch.core.config.service import ConsoleConfig
from notifier.desk import Steps
from tests.gridwatch.console.rig import PASSWORD, ConsoleRig
from tests.gridwatch.console.test_scope import events_of


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "console.crt", directory / "console.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_under_tls_the_session_cookie_is_secure_and_the_feed_reaches_the_stream(
    console: ConsoleRig, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    listener = ConsoleListener(
        ConsoleConfig(enabled=True, port=0, tls_cert=Path(cert.name), tls_key=Path(key.name)),
        database=console.database,
        desk=console.desk,
        cases=console.cases,
        config=lambda: console.config,
        audit=console.audit,
        status=dict,
        healthy=lambda: False,
        resolve=lambda path: tmp_path / path,
    )
    await listener.start()
    try:
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{listener.port}", verify=False, timeout=30) as client:
            assert (await client.get("/healthz")).json() == {"status": "degraded"}
            signed = await client.post("/api/session", json={"username": "op_a", "password": PASSWORD})
            assert signed.status_code == 200
            assert "Secure" in signed.headers["set-cookie"]
            async with client.stream("GET", "/api/alerts/stream") as response:
                assert response.status_code == 200
                received = events_of(response)
                while listener.feed.subscribers == 0:
                    await asyncio.sleep(0.01)
                alert = console.raise_alert("g1")
                await listener.on_alert(alert)
                kind, item = await asyncio.wait_for(anext(received), 30)
                assert (kind, item["alert_id"]) == ("alert", alert.alert_id)
                steps = Steps()
                console.desk.comment(alert.alert_id, "wang", "seen", channel="api", into=steps)
                listener.on_steps(steps)
                kind, item = await asyncio.wait_for(anext(received), 30)
                assert (kind, item["alert_id"]) == ("case", alert.alert_id)
    finally:
        await asyncio.wait_for(listener.stop(), 30)  # ends the open stream itself
        await listener.stop()  # idempotent
