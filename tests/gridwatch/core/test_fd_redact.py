"""What native code writes to file descriptors 1 and 2 is redacted before it reaches the real ones.

Each case runs a child Python whose descriptors 1 and 2 are pipes read here: the child registers a
secret, installs the redaction and writes with libc's ``dprintf`` (as FFmpeg or libjpeg do), with
``print``, and past line and pipe sizes.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from urllib.parse import quote

from gridwatch.core.fd_redact import FdRedactor, redact_bytes
from tests.support.paths import REPO_ROOT

PASSWORD = "Gw@ta%5!x:q7"
FORMS = (
    PASSWORD.encode(),
    quote(PASSWORD, safe="").encode(),
    base64.b64encode(PASSWORD.encode()),
    base64.b64encode(f"viewer:{PASSWORD}".encode()),
)


def run_child(body: str) -> subprocess.CompletedProcess[bytes]:
    script = textwrap.dedent(
        f"""
        import ctypes, sys, time
        from gridwatch.core.fd_redact import redacted_stdio
        from gridwatch.core.redact import register_secrets

        register_secrets([("viewer", {PASSWORD!r})])
        libc = ctypes.CDLL(None)
        libc.dprintf.argtypes = [ctypes.c_int, ctypes.c_char_p]

        def native(fd, text):
            libc.dprintf(fd, text.replace("%", "%%").encode())
        """
    ) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=env, cwd=REPO_ROOT, timeout=120, check=False
    )


def assert_clean(result: subprocess.CompletedProcess[bytes]) -> None:
    assert result.returncode == 0, result.stderr[-2000:]
    for form in FORMS:
        assert form not in result.stdout, form
        assert form not in result.stderr, form


def test_native_and_python_writes_are_masked_on_both_descriptors() -> None:
    result = run_child(
        f"""
        with redacted_stdio():
            native(2, "[rtsp @ 0x55] method DESCRIBE failed: 401 (viewer:{PASSWORD})\\n")
            native(1, "Authorization: Basic {base64.b64encode(f"viewer:{PASSWORD}".encode()).decode()}\\n")
            native(2, "url rtsp://viewer:{quote(PASSWORD, safe="")}@10.0.0.7/live\\n")
            print("python sees {PASSWORD}", flush=True)
            sys.stderr.write("and {quote(PASSWORD, safe="")} on stderr\\n")
        print("after the restore", flush=True)
        """
    )
    assert_clean(result)
    assert b"[rtsp @ 0x55] method DESCRIBE failed: 401 (viewer:***)\n" in result.stderr
    assert b"url rtsp://***@10.0.0.7/live\n" in result.stderr
    assert b"and *** on stderr\n" in result.stderr
    assert result.stdout == b"Authorization: Basic ***\npython sees ***\nafter the restore\n"


def test_a_partial_line_is_forwarded_when_the_writer_pauses_and_kept_whole() -> None:
    result = run_child(
        f"""
        with redacted_stdio():
            native(2, "password prompt: ")
            time.sleep(1.0)  # past the idle flush: the partial line goes out on its own
            native(2, "{PASSWORD} typed\\n")
        """
    )
    assert_clean(result)
    assert result.stderr == b"password prompt: *** typed\n"


def test_more_than_the_pipe_holds_arrives_complete_and_masked() -> None:
    # 8 MiB (eight times the pipe) with a secret in every line, and one 300 KiB line without a newline
    # whose secret straddles the cut of an over-long line.
    result = run_child(
        f"""
        with redacted_stdio():
            line = "x" * 1000 + " {PASSWORD}\\n"
            for _ in range(8 * 1024):
                sys.stdout.write(line)
            sys.stdout.flush()
            native(2, "y" * (64 * 1024 - 5) + "{PASSWORD}" + "z" * 300_000)
        """
    )
    assert_clean(result)
    assert result.stdout == (b"x" * 1000 + b" ***\n") * (8 * 1024)
    assert result.stderr == b"y" * (64 * 1024 - 5) + b"***" + b"z" * 300_000


def test_child_processes_write_through_the_redaction() -> None:
    result = run_child(
        f"""
        import subprocess
        with redacted_stdio():
            subprocess.run(["sh", "-c", "echo 'child says {PASSWORD}' >&2"], check=True)
        """
    )
    assert_clean(result)
    assert result.stderr == b"child says ***\n"


def test_under_pytest_it_does_nothing_unless_forced() -> None:
    redactor = FdRedactor()
    assert redactor.install() is False
    assert not redactor.active
    redactor.restore()  # safe when nothing was installed


def test_bytes_that_are_not_utf8_pass_through() -> None:
    assert redact_bytes(b"\xff\xfe binary \x00") == b"\xff\xfe binary \x00"
