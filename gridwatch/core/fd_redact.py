"""Redact what native code writes to file descriptors 1 and 2.

FFmpeg (through OpenCV), GStreamer, libjpeg and onnxruntime print straight to the process's stdout and
stderr, past Python's logging and its ``RedactingFilter``; peers have leaked RTSP passwords exactly this
way (frigate#1431, #5798, go2rtc#238). ``FdRedactor`` puts a pipe in place of each descriptor: whatever
anyone writes there — a C library, Python's own ``sys.stderr``, a child process that inherited it — is
read by a thread, passed line by line through ``redact_text`` (URL credentials and every configured
secret, raw, percent-encoded or base64) and only then written to the original descriptor.

Robustness:
- line-buffered: a complete line is forwarded as soon as it is read; a partial line after ``FLUSH_IDLE_S``
  without more bytes, or once it exceeds ``MAX_LINE`` (then all but a tail that could hold the start of a
  secret);
- the pipes are enlarged (1 MiB where Linux allows) and drained by their own thread, which takes no lock
  a writer could hold, so a slow terminal slows the writers at worst, as it did before;
- ``restore()`` flushes Python's streams, puts the original descriptors back and drains what is left;
- under pytest (whose capture owns descriptors 1 and 2) it does nothing unless ``force=True``.

``quiet_native_logs()`` lowers the libraries' own log levels, so less is printed in the first place.
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import os
import select
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from gridwatch.core.metrics import LOOP_ERRORS
from gridwatch.core.redact import redact_text

STDOUT, STDERR = 1, 2
PIPE_SIZE = 1 << 20
MAX_LINE = 64 * 1024
FLUSH_IDLE_S = 0.2
# Kept back when a line too long is cut: a secret's start may sit at the cut (longest form of a secret).
_CUT_TAIL = 1024
_F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux); absent from older Pythons' fcntl module


@dataclass
class _Redirect:
    fd: int
    original: int  # a duplicate of what ``fd`` was before
    read_end: int
    thread: threading.Thread | None = None


def running_under_pytest() -> bool:
    return "_pytest" in sys.modules


class FdRedactor:
    """Redacts descriptors ``fds`` (default: stdout and stderr) between ``install()`` and ``restore()``."""

    def __init__(self, fds: tuple[int, ...] = (STDOUT, STDERR), *, force: bool = False) -> None:
        self._fds = fds
        self._force = force
        self._redirects: list[_Redirect] = []
        self._stopping = threading.Event()
        self._fault_file: TextIO | None = None

    @property
    def active(self) -> bool:
        return bool(self._redirects)

    def install(self) -> bool:
        """Put the redacting pipes in place; False when it did nothing (pytest, or already installed)."""
        if self._redirects or (running_under_pytest() and not self._force):
            return False
        self._stopping.clear()
        _flush_python_streams()
        try:
            for fd in self._fds:
                self._redirects.append(self._redirect(fd))
        except OSError:
            self.restore()
            raise
        self._point_faulthandler_at_original_stderr()
        for redirect in self._redirects:
            redirect.thread = threading.Thread(
                target=self._pump, args=(redirect,), name=f"fd-redact-{redirect.fd}", daemon=True
            )
            redirect.thread.start()
        return True

    def restore(self) -> None:
        """Put the original descriptors back and forward what the pipes still hold. Safe to call twice."""
        if not self._redirects:
            return
        _flush_python_streams()
        for redirect in self._redirects:
            os.dup2(redirect.original, redirect.fd)  # closes our pipe's write end at ``fd``
        self._stopping.set()
        if self._fault_file is not None:
            faulthandler.enable(file=sys.stderr)
            self._fault_file = None
        for redirect in self._redirects:
            if redirect.thread is not None:
                redirect.thread.join(timeout=5.0)
                if redirect.thread.is_alive():
                    # Stuck writing to a reader that stopped reading: leave its descriptors open, or
                    # their numbers could be reused by a file it would then write into.
                    continue
            os.close(redirect.read_end)
            os.close(redirect.original)
        self._redirects.clear()

    def __enter__(self) -> FdRedactor:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _point_faulthandler_at_original_stderr(self) -> None:
        # A fatal error kills the pump thread with the process: its traceback (Python frames only, no
        # secrets) must go straight to the real stderr or it is lost in the pipe.
        original = next((r.original for r in self._redirects if r.fd == STDERR), None)
        if original is not None and faulthandler.is_enabled():
            self._fault_file = os.fdopen(original, "w", closefd=False)
            faulthandler.enable(file=self._fault_file)

    @staticmethod
    def _redirect(fd: int) -> _Redirect:
        original = os.dup(fd)
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError):  # a smaller pipe still works, it just fills sooner
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_SIZE)
        os.set_blocking(read_end, False)
        os.set_inheritable(original, False)
        os.dup2(write_end, fd)  # fd stays inheritable: children write through the redaction too
        os.close(write_end)
        return _Redirect(fd, original, read_end)

    def _pump(self, redirect: _Redirect) -> None:
        pending = b""
        while True:
            stopping = self._stopping.is_set()
            try:
                readable, _, _ = select.select([redirect.read_end], [], [], 0.05 if stopping else FLUSH_IDLE_S)
                chunk = _read_available(redirect.read_end) if readable else b""
            except (OSError, ValueError):  # the pipe was closed under us (a restore that timed out)
                return
            if chunk:
                pending = self._forward(redirect.original, pending + chunk)
                continue
            # Nothing more for now: forward the partial line rather than sit on it.
            if pending:
                self._forward(redirect.original, pending, whole=True)
                pending = b""
            if stopping:
                return
            if readable:  # end of file (every writer closed it): do not spin
                self._stopping.wait(FLUSH_IDLE_S)

    @staticmethod
    def _forward(original: int, data: bytes, *, whole: bool = False) -> bytes:
        """Write the complete lines of ``data`` (all of it when ``whole``) redacted; returns the rest.

        Never raises: the pump must keep draining, or writers would block on a full pipe forever.
        """
        lines, rest = (data, b"") if whole else _split_lines(data)
        try:
            _write_all(original, redact_bytes(lines))
        except Exception:  # a redaction bug must cost the text, not the process
            LOOP_ERRORS.labels(loop="fd-redact").inc()
            _write_all(original, b"[fd-redact: %d bytes dropped: redaction failed]\n" % len(lines))
        return rest


def _read_available(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def _split_lines(pending: bytes) -> tuple[bytes, bytes]:
    """(complete lines, the rest); a rest longer than ``MAX_LINE`` is cut, keeping a tail back."""
    cut = pending.rfind(b"\n") + 1
    lines, rest = pending[:cut], pending[cut:]
    if len(rest) > MAX_LINE:
        lines, rest = lines + rest[:-_CUT_TAIL], rest[-_CUT_TAIL:]
    return lines, rest


def redact_bytes(data: bytes) -> bytes:
    """``data`` with ``redact_text`` applied; bytes that are not UTF-8 pass through unchanged."""
    text = data.decode("utf-8", errors="surrogateescape")
    return redact_text(text).encode("utf-8", errors="surrogateescape")


def _write_all(fd: int, data: bytes) -> None:
    if not data:
        return
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return  # the reader of the original stream is gone (a closed terminal): drop, never block
        view = view[written:]


def _flush_python_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.flush()


# Environment read by the native libraries when they load: only errors, and FFmpeg's messages through
# OpenCV's logger. Set only where the operator has not chosen a value.
NATIVE_LOG_ENV = {
    "OPENCV_LOG_LEVEL": "ERROR",
    "OPENCV_VIDEOIO_DEBUG": "0",
    "OPENCV_FFMPEG_DEBUG": "0",
    "GST_DEBUG": "0",
}
# onnxruntime's severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal.
ONNXRUNTIME_ERROR = 3
# cv::utils::logging::LogLevel: 0 silent, 1 fatal, 2 error, 3 warning, 4 info, 5 debug, 6 verbose.
OPENCV_LOG_LEVEL_ERROR = 2


def quiet_native_logs() -> None:
    """Lower the native libraries' log levels where the operator has not chosen one.

    The environment is read when a library loads; a library already loaded is told directly.
    """
    chosen = {name for name in NATIVE_LOG_ENV if name in os.environ}
    for name, value in NATIVE_LOG_ENV.items():
        os.environ.setdefault(name, value)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and "OPENCV_LOG_LEVEL" not in chosen:
        with contextlib.suppress(Exception):
            cv2.setLogLevel(OPENCV_LOG_LEVEL_ERROR)
    # onnxruntime reads no variable: its sessions are made with severity "error" (recognition.modelpack)
    # and its default logger, when it is loaded already, is told here.
    onnxruntime = sys.modules.get("onnxruntime")
    if onnxruntime is not None:
        with contextlib.suppress(Exception):
            onnxruntime.set_default_logger_severity(ONNXRUNTIME_ERROR)


@contextlib.contextmanager
def redacted_stdio(*, force: bool = False) -> Iterator[FdRedactor]:
    """Native log levels lowered and descriptors 1 and 2 redacted for the duration of the block."""
    quiet_native_logs()
    redactor = FdRedactor(force=force)
    redactor.install()
    try:
        yield redactor
    finally:
        redactor.restore()
