"""A small real HTTP server that plays a gate terminal's endless event stream, and its controller.

Run as a subprocess (``python -m tests.support.gate_device ...``) so a test can kill it mid-stream
and start it again on the same port, as a terminal that reboots or drops off the network does.

- ``--dialect isapi``: ``GET /ISAPI/Event/notification/alertStream``, ``multipart/mixed`` with boundary
  ``MIME_boundary``: one JSON ``AccessControllerEvent`` part and one ``Picture`` JPEG part per event.
- ``--dialect dahua``: ``GET /cgi-bin/eventManager.cgi?action=attach&codes=[AccessControl]&heartbeat=N``,
  ``multipart/x-mixed-replace`` text parts; each event's ``SnapURL`` is a device file path served by
  ``GET /cgi-bin/RPC_Loadfile/<path>``.

Both use HTTP digest auth (MD5, qop=auth), as the devices do. The events carry the serials given by
``--serials`` (e.g. ``1-5`` then, after a restart, ``4-5,9-11``: two replayed, three skipped), with real
face JPEGs; then the stream carries only heartbeats, forever. ``--inject-bad`` puts malformed parts
after the first event. Each request is printed as ``REQUEST <path>`` on stdout, after ``READY <port>``.

The ISAPI terminal also keeps an event log, the serials given by ``--history`` (what it recorded,
streamed or not), searched with ``POST /ISAPI/AccessControl/AcsEvent?format=json`` by serial range,
``--page-cap`` events a page at most; each logged event's ``pictureURL`` names the terminal's LAN
address (``192.168.1.64``), its path is served as a JPEG. ``--no-acs-event``: that search is a 404.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, ClassVar, Literal

from tests.support import gate_payloads as payloads
from tests.support.paths import REPO_ROOT

Dialect = Literal["isapi", "dahua"]
REALM = "gate-emulator"
SNAP_DIR = "/mnt/appdata1/userpic/SnapShot"
ACS_EVENT_PATH = "/ISAPI/AccessControl/AcsEvent"
PICTURE_DIR = "/LOCALS/pic/acsLinkCap"


def parse_serials(spec: str) -> list[int]:
    """``"1-3,7,9-10"`` → ``[1, 2, 3, 7, 9, 10]``."""
    serials: list[int] = []
    for item in filter(None, (piece.strip() for piece in spec.split(","))):
        first, _, last = item.partition("-")
        serials.extend(range(int(first), int(last or first) + 1))
    return serials


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class _DeviceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    settings: ClassVar[argparse.Namespace]
    faces: ClassVar[list[bytes]]
    nonces: ClassVar[set[str]] = set()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; requests are reported on stdout instead

    def _say(self, line: str) -> None:
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    # --- digest auth -----------------------------------------------------------------------------

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        params = {key: quoted or bare for key, quoted, bare in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header)}
        needed = {"username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce"}
        if not needed <= params.keys() or params["nonce"] not in self.nonces:
            return False
        ha1 = _md5(f"{self.settings.username}:{REALM}:{self.settings.password}")
        ha2 = _md5(f"{self.command}:{params['uri']}")
        expected = _md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}")
        return params["username"] == self.settings.username and hmac.compare_digest(expected, params["response"])

    def _challenge(self) -> None:
        nonce = secrets.token_hex(16)
        self.nonces.add(nonce)
        body = b"<html><body>401 Unauthorized</body></html>"
        self.send_response(401)
        self.send_header("WWW-Authenticate", f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5')
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # --- routes ----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._say(f"REQUEST {self.path}")
        if not self._authorized():
            self._challenge()
            return
        dialect = self.settings.dialect
        if dialect == "isapi" and self.path.startswith("/ISAPI/Event/notification/alertStream"):
            self._stream(payloads.isapi_stream_content_type())
        elif dialect == "dahua" and self.path.startswith("/cgi-bin/eventManager.cgi?action=attach"):
            self._stream(payloads.dahua_stream_content_type())
        elif dialect == "dahua" and self.path.startswith("/cgi-bin/RPC_Loadfile" + SNAP_DIR + "/"):
            self._snapshot(Path(self.path).stem)
        elif dialect == "isapi" and self.path.startswith(PICTURE_DIR + "/"):
            self._snapshot(Path(self.path).name.partition(".")[0])
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        self._say(f"REQUEST {self.path}")
        # Read the body first, whatever the answer: the connection is kept alive for the next request.
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self._authorized():
            self._challenge()
            return
        if self.settings.dialect != "isapi" or self.settings.no_acs_event or not self.path.startswith(ACS_EVENT_PATH):
            self.send_error(404)
            return
        self._json(self._acs_event(json.loads(body)["AcsEventCond"]))

    def _acs_event(self, cond: dict[str, Any]) -> dict[str, Any]:
        """One page of the event log, as a terminal answers it (serial bounds, paging, newest first on request)."""
        first, last = cond.get("beginSerialNo", 0), cond.get("endSerialNo", 2**32)
        matches = [serial for serial in parse_serials(self.settings.history) if first <= serial <= last]
        if cond.get("timeReverseOrder"):
            matches.reverse()
        position = int(cond["searchResultPosition"])
        page = matches[position : position + min(int(cond["maxResults"]), self.settings.page_cap)]
        status = "NO MATCH" if not page else "MORE" if position + len(page) < len(matches) else "OK"
        return {
            "AcsEvent": {
                "searchID": cond["searchID"],
                "responseStatusStrg": status,
                "numOfMatches": len(page),
                "totalMatches": len(matches),
                "InfoList": [self._logged(serial) for serial in page],
            }
        }

    def _logged(self, serial: int) -> dict[str, Any]:
        return {
            "major": 5,
            "minor": 75,
            "time": payloads.DEFAULT_DEVICE_TIME,
            "serialNo": serial,
            "doorNo": 1,
            "cardReaderNo": 1,
            "employeeNoString": "1001",
            "currentVerifyMode": "face",
            "type": 0,
            "pictureURL": f"http://192.168.1.64{PICTURE_DIR}/{serial}.jpeg@WEB000000000{serial:03d}",
        }

    def _json(self, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _snapshot(self, stem: str) -> None:
        if not stem.isdigit():
            self.send_error(404)
            return
        picture = self.faces[int(stem) % len(self.faces)]
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(picture)))
        self.end_headers()
        self.wfile.write(picture)

    def _stream(self, content_type: str) -> None:
        # Close-delimited body: the stream ends only when one side goes away.
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for index, serial in enumerate(parse_serials(self.settings.serials)):
                self.wfile.write(self._event(serial))
                if index == 0 and self.settings.inject_bad:
                    self.wfile.write(self._bad_parts())
                self.wfile.flush()
                time.sleep(self.settings.interval)
            while True:
                self.wfile.write(self._heartbeat())
                self.wfile.flush()
                time.sleep(self.settings.heartbeat)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _event(self, serial: int) -> bytes:
        face = self.faces[serial % len(self.faces)]
        if self.settings.dialect == "isapi":
            return payloads.isapi_stream_parts(payloads.isapi_event(serial, door=1), [face])
        text = payloads.dahua_access_text(serial, reader_id="1", snap_url=f"{SNAP_DIR}/{serial}.jpg")
        return payloads.dahua_stream_part(text)

    def _heartbeat(self) -> bytes:
        if self.settings.dialect == "isapi":
            return payloads.isapi_stream_parts(payloads.isapi_heartbeat())
        return payloads.dahua_heartbeat_part()

    def _bad_parts(self) -> bytes:
        if self.settings.dialect == "isapi":
            not_json = b"{this is not json"
            event = payloads.isapi_event(10_000, door=1)
            return (
                f"--{payloads.ISAPI_BOUNDARY}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(not_json)}\r\n\r\n".encode()
                + not_json
                + b"\r\n"
                # An event whose "picture" is not a JPEG: rejected, and serial 10000 is not recorded.
                + payloads.isapi_stream_parts(event, [b"GIF89a not a jpeg at all"])
            )
        return payloads.dahua_stream_part(b"Code=AccessControl;action=Pulse;index=0;data={broken")


def serve(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dialect", choices=["isapi", "dahua"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="device-secret")
    parser.add_argument("--serials", default="1-5", help="serials of the events to send, e.g. 1-5 or 4-5,9-11")
    parser.add_argument("--faces", default="obama,biden,kit", help="gate_payloads.FACE_FILES keys")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between events")
    parser.add_argument("--heartbeat", type=float, default=0.3, help="seconds between heartbeats")
    parser.add_argument("--inject-bad", action="store_true", help="malformed parts after the first event")
    parser.add_argument("--history", default="", help="serials in the ISAPI event log (AcsEvent), e.g. 1-15")
    parser.add_argument("--page-cap", type=int, default=30, help="most events per AcsEvent page")
    parser.add_argument("--no-acs-event", action="store_true", help="AcsEvent search answers 404")
    settings = parser.parse_args(argv)
    _DeviceHandler.settings = settings
    _DeviceHandler.faces = [payloads.face_jpeg(name) for name in settings.faces.split(",")]
    server = ThreadingHTTPServer(("127.0.0.1", settings.port), _DeviceHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdout.write(f"READY {settings.port}\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


class GateDevice:
    """Controls one emulator process: ``start()``, ``kill()`` (SIGKILL, mid-stream), ``stop()``.

    The process is stopped by its own PID, never by name. ``requests`` collects the request paths.
    """

    def __init__(
        self,
        dialect: Dialect,
        *,
        port: int,
        username: str = "admin",
        password: str = "device-secret",
        serials: str = "1-5",
        interval_s: float = 0.02,
        heartbeat_s: float = 0.3,
        inject_bad: bool = False,
        history: str = "",
        page_cap: int = 30,
        acs_event: bool = True,
        ready_timeout_s: float = 15.0,
    ) -> None:
        self.dialect = dialect
        self.port = port
        self.username = username
        self.password = password
        self.serials = serials
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self.inject_bad = inject_bad
        self.history = history
        self.page_cap = page_cap
        self.acs_event = acs_event
        self.ready_timeout_s = ready_timeout_s
        self.requests: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, serials: str | None = None, inject_bad: bool | None = None, history: str | None = None) -> None:
        if self.running:
            raise RuntimeError("the gate device is already running")
        if history is not None:
            self.history = history
        if serials is not None:
            self.serials = serials
        if inject_bad is not None:
            self.inject_bad = inject_bad
        command = [
            sys.executable,
            "-m",
            "tests.support.gate_device",
            "--dialect",
            self.dialect,
            "--port",
            str(self.port),
            "--username",
            self.username,
            "--password",
            self.password,
            "--serials",
            self.serials,
            "--interval",
            str(self.interval_s),
            "--heartbeat",
            str(self.heartbeat_s),
            "--history",
            self.history,
            "--page-cap",
            str(self.page_cap),
        ]
        if not self.acs_event:
            command.append("--no-acs-event")
        if self.inject_bad:
            command.append("--inject-bad")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process, closed in stop()
        self._proc = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1
        )
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, args=(self._proc, ready), daemon=True)
        self._reader.start()
        if not ready.wait(self.ready_timeout_s):
            message = self._stderr_text()
            self.stop()
            raise RuntimeError(f"gate device did not start on port {self.port}: {message}")

    def _read_stdout(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                ready.set()
            elif line.startswith("REQUEST "):
                self.requests.append(line[len("REQUEST ") :].strip())

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def kill(self) -> None:
        """SIGKILL: the device vanishes mid-stream, no goodbye."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._cleanup()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._cleanup()

    def _cleanup(self) -> None:
        # The process is gone: its stdout reaches EOF and the reader thread ends by itself.
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> GateDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        serve()
