"""Start and stop the GStreamer RTSP test server (``rtsp_server.py``) from the tests."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
# python3-gi (GStreamer bindings) is a Debian package: it lives in the system Python, not the venv.
SYSTEM_PYTHON = os.environ.get("GRIDWATCH_GI_PYTHON", "/usr/bin/python3")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RtspServerError(RuntimeError):
    """The RTSP test server did not start; the message carries its stderr."""


class RtspServer:
    """One ``rtsp_server.py`` process serving ``clip`` at ``rtsp://127.0.0.1:port/mount``.

    ``restart()`` starts it again on the same port (for reconnect tests). The process is stopped
    by its own PID, never by name.
    """

    def __init__(
        self,
        clip: Path,
        *,
        port: int | None = None,
        mount: str = "/cam1",
        mode: Literal["loop", "once"] = "loop",
        ready_timeout_s: float = 15.0,
    ) -> None:
        self.clip = clip
        self.port = port if port is not None else free_port()
        self.mount = mount
        self.mode = mode
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        # stderr goes to a temporary file so a chatty server can never block on a full pipe.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server, closed in stop()
        self._proc = subprocess.Popen(
            [
                SYSTEM_PYTHON,
                str(SERVER_SCRIPT),
                "--port",
                str(self.port),
                "--clip",
                str(self.clip),
                "--mount",
                self.mount,
                "--mode",
                self.mode,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self.ready_timeout_s
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    line = self._proc.stdout.readline()
                    if line.startswith(b"READY "):
                        return
                    if not line:  # stdout closed: the process is exiting
                        break
        self._proc.poll()
        rc = self._proc.returncode
        raise RtspServerError(
            f"RTSP test server on port {self.port} not ready (exit code {rc}, last line {line!r}); "
            f"stderr:\n{self.stderr()}"
        )

    def stderr(self) -> str:
        """What the server wrote to stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate the server (by its PID) and wait for it; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            with contextlib.suppress(OSError):
                self._stderr.close()
            self._stderr = None

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crashed camera would vanish."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self.stop()

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
