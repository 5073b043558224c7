"""`gridwatch run` as an operator meets it: clear errors, no tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def test_a_busy_http_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "gridwatch.yaml"
        config.write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n  http: {{host: 127.0.0.1, port: {port}}}\n")
        result = subprocess.run(
            [sys.executable, "-m", "gridwatch", "run", "-c", str(config), "--for", "5"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 1
    assert f"could not listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
