"""`gridwatch run` with RTSP cameras whose password holds ``@ % ! :``: the password never leaves the process.

One camera points at a closed port, one at a server that refuses the login and echoes the credentials
it received in its refusal, which FFmpeg prints to file descriptor 2 itself. The service runs in a
subprocess whose real stdout and stderr are files; neither they nor the log file nor anything else in
the data directory may hold the password raw, percent-encoded or base64-encoded — while the native
line itself (``method DESCRIBE failed: 401``) does reach stderr, masked.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.core.redact import redact_text
from gridwatch.service import Service
from tests.support.models import shared_analyzer
from tests.support.paths import REPO_ROOT
from tests.support.rtsp import free_port
from tests.support.rtsp_auth import RtspAuthFailServer

USER = "viewer"
PASSWORD = "Gw@ta%5!x:q7"  # `@ % ! :`, and "%5!" is no valid percent escape
ENCODED = quote(PASSWORD, safe="")


def leaked_forms() -> dict[str, bytes]:
    return {
        "raw": PASSWORD.encode(),
        "percent-encoded": ENCODED.encode(),
        "percent-encoded, lower hex": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), ENCODED).encode(),
        "base64": base64.b64encode(PASSWORD.encode()),
        "basic auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()),
    }


def write_config(root: Path, auth_port: int, http_port: int) -> Path:
    config = root / "gridwatch.yaml"
    url = "rtsp://" + USER + ":${CAM_PASSWORD}@127.0.0.1:%d/live"
    fast = "backoff: {initial_s: 0.2, max_s: 1.0}, open_timeout_s: 2, read_timeout_s: 2"
    config.write_text(
        f"""
service:
  name: masked
  data_dir: {root / "data"}
  log_level: DEBUG
  http: {{host: 127.0.0.1, port: {http_port}}}
cameras:
  - {{id: closed-port, kind: rtsp, url: "{url % free_port()}", {fast},
      location_class: compound_entrance, signage_verified_at: 2026-01-15}}
  - {{id: auth-fails, kind: rtsp, url: "{url % auth_port}", {fast},
      location_class: lobby, signage_verified_at: 2026-02-01}}
"""
    )
    return config


def wait_for_status(port: int, server: RtspAuthFailServer, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service ended early"
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/status", timeout=5).json()
        except httpx.HTTPError:
            status = None
        cameras = [] if status is None else status["cameras"]
        offline = [c for c in cameras if c["last_error"]]
        if server.logins >= 2 and len(offline) == 2:
            return dict(status)
        time.sleep(0.3)
    raise AssertionError(f"no two failed logins and two offline cameras in time (logins={server.logins})")


# The service's own native log levels, and the loudest the libraries can be: the redaction must not rely
# on their quiet. Each makes native code print a credential: FFmpeg the server's refusal (which echoes
# them), or OpenCV's debug log the capture URL.
LOUD = {"OPENCV_LOG_LEVEL": "DEBUG", "OPENCV_VIDEOIO_DEBUG": "1", "OPENCV_FFMPEG_DEBUG": "1"}
NATIVE_LINE_MASKED = {
    "default": b"method DESCRIBE failed: 401 (Unauthorized Basic *** viewer:*** viewer:***)",
    "debug": b"open VIDEOIO(FFMPEG): trying capture filename='rtsp://***@127.0.0.1:",
}


@pytest.mark.parametrize(("levels", "native_env"), [("default", {}), ("debug", LOUD)])
def test_rtsp_password_never_reaches_stdout_stderr_or_files(
    tmp_path: Path, levels: str, native_env: dict[str, str]
) -> None:
    http_port = free_port()
    stdout_file, stderr_file = tmp_path / "stdout", tmp_path / "stderr"
    with RtspAuthFailServer() as server:
        config = write_config(tmp_path, server.port, http_port)
        inherited = {k: v for k, v in os.environ.items() if k not in LOUD}
        env = {**inherited, **native_env, "CAM_PASSWORD": ENCODED}  # encoded, as it goes into a URL
        with stdout_file.open("wb") as out, stderr_file.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gridwatch", "run", "-c", str(config), "--for", "120"],
                stdout=out,
                stderr=err,
                env=env,
                cwd=REPO_ROOT,
            )
            try:
                status = wait_for_status(http_port, server, proc)
            finally:
                proc.send_signal(signal.SIGTERM)
                returncode = proc.wait(timeout=60)
    assert returncode == 0

    # /status shows each camera's declarations.
    declarations = {c["id"]: c["declaration"] for c in status["cameras"]}  # type: ignore[attr-defined]
    assert declarations == {
        "closed-port": {"location_class": "compound_entrance", "signage_verified_at": "2026-01-15"},
        "auth-fails": {"location_class": "lobby", "signage_verified_at": "2026-02-01"},
    }

    stderr = stderr_file.read_bytes()
    # The native line that carried the credentials did reach the real stderr, masked.
    assert NATIVE_LINE_MASKED[levels] in stderr
    log_file = tmp_path / "data" / "logs" / "gridwatch.log"
    assert log_file.is_file()
    captured = {"stdout": stdout_file.read_bytes(), "stderr": stderr}
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            captured[str(path.relative_to(tmp_path))] = path.read_bytes()
    for where, data in captured.items():
        for form, secret in leaked_forms().items():
            assert secret not in data, f"the {form} password is in {where}"


async def test_a_reload_registers_the_new_secrets_before_the_camera_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    before = tmp_path / "before.yaml"
    before.write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n  http: {{enabled: false}}\n")
    after = tmp_path / "after.yaml"
    url = "rtsp://viewer:${RELOADED_PASSWORD}@127.0.0.1:" + str(free_port()) + "/live"
    after.write_text(
        before.read_text() + "cameras:\n"
        f"  - {{id: new-cam, kind: rtsp, url: '{url}',\n"
        "     location_class: lobby, signage_verified_at: 2026-01-15}\n"
    )
    reloaded = "Rl@9%d!x:" + uuid.uuid4().hex[:6]  # unique: the process-wide set only grows
    service = Service(load_config(before))
    await service.start()
    try:
        assert redact_text(f"401 ({reloaded})") == f"401 ({reloaded})"  # not configured yet
        await service.apply_config(load_config(after, {"RELOADED_PASSWORD": quote(reloaded, safe="")}))
        assert redact_text(f"401 ({reloaded}) {quote(reloaded, safe='')}") == "401 (***) ***"
    finally:
        await service.stop()
