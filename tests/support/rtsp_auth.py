"""An RTSP server that refuses every login and echoes the credentials it was sent in its refusal.

The GStreamer test server (``rtsp_server.py``) takes any client; this one answers ``OPTIONS`` and then
``401 Unauthorized`` to everything, with a reason phrase that repeats the ``Authorization`` header, the
decoded ``user:password`` and its percent-encoded form. FFmpeg prints that phrase to stderr
(``[rtsp @ 0x..] method DESCRIBE failed: 401 (...)``), so a camera pointed here makes native code
write the password, in every encoding, to file descriptor 2 — what the fd-level redaction must catch.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from types import TracebackType
from urllib.parse import quote


class RtspAuthFailServer:
    """Listens on 127.0.0.1 (a free port) in a daemon thread between ``start()`` and ``stop()``."""

    def __init__(self) -> None:
        self.port = 0
        self.logins = 0  # requests that carried credentials
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="rtsp-401", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> RtspAuthFailServer:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            while data := conn.recv(4096):
                buffer += data
                while b"\r\n\r\n" in buffer:
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    conn.sendall(self._answer(head.decode("latin-1").split("\r\n")))

    def _answer(self, lines: list[str]) -> bytes:
        method = lines[0].split(" ", 1)[0]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        cseq = headers.get("cseq", "0")
        if method == "OPTIONS":
            return f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY\r\n\r\n".encode()
        echo = ""
        authorization = headers.get("authorization", "")
        if authorization.startswith("Basic "):
            self.logins += 1
            user_password = base64.b64decode(authorization[6:]).decode("latin-1")
            user, _, password = user_password.partition(":")
            echo = f" {authorization} {user_password} {user}:{quote(password, safe='')}"
        return (
            f"RTSP/1.0 401 Unauthorized{echo}\r\nCSeq: {cseq}\r\n"
            'WWW-Authenticate: Basic realm="gridwatch-test"\r\nContent-Length: 0\r\n\r\n'
        ).encode("latin-1")
