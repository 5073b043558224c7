"""Make sure the Mosquitto MQTT broker listens on 127.0.0.1:1883.

``python tests/support/mosquitto.py ensure`` (called by ``make system-test-deps``) starts the
Debian-packaged broker when nothing listens; tests call ``require_mosquitto()`` and fail with a
clear message when it is unreachable.

The broker runs on a config of its own under ``.venv/mosquitto/``, never the system one: Debian's
``/etc/mosquitto/mosquitto.conf`` writes its pid file to ``/run/mosquitto``, which only systemd creates,
so on a machine without systemd (CI containers) the daemon exits at once.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time

HOST = "127.0.0.1"
PORT = 1883
STATE_DIR = os.path.join(os.path.dirname(__file__), "..", "..", ".venv", "mosquitto")


def is_listening(host: str = HOST, port: int = PORT, timeout_s: float = 0.5) -> bool:
    """Whether ``host:port`` accepts a TCP connection."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_listening(deadline_s: float, host: str = HOST, port: int = PORT) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if is_listening(host, port):
            return True
        time.sleep(0.1)  # poll interval, bounded by the deadline
    return is_listening(host, port)


def ensure(wait_s: float = 5.0) -> str | None:
    """Start Mosquitto as a daemon if nothing listens on 1883; an error message, or None when up."""
    if is_listening():
        return None
    # Debian installs the broker in /usr/sbin, which is not on every user's PATH.
    binary = shutil.which("mosquitto", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if binary is None:
        return "mosquitto is not installed: run `sudo apt-get install mosquitto` (Debian/Ubuntu)"
    config = write_config(os.path.abspath(STATE_DIR))
    command = [binary, "-d", "-c", config]
    result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        return f"`{' '.join(command)}` failed with exit code {result.returncode}: {result.stderr.strip()}"
    if not wait_listening(wait_s):
        return (
            f"mosquitto started but {HOST}:{PORT} does not accept connections after {wait_s:.0f} s; "
            f"its log ends with:\n{log_tail(os.path.abspath(STATE_DIR))}"
        )
    return None


def write_config(state_dir: str) -> str:
    """A broker config for tests only: loopback, anonymous, no persistence, files in ``state_dir``."""
    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, "mosquitto.conf")
    # As root, mosquitto switches to the user named here; naming the current user keeps the files writable.
    user = pwd.getpwuid(os.getuid()).pw_name
    lines = [
        f"listener {PORT} {HOST}",
        "allow_anonymous true",
        "persistence false",
        f"pid_file {os.path.join(state_dir, 'mosquitto.pid')}",
        f"log_dest file {os.path.join(state_dir, 'mosquitto.log')}",
        f"user {user}",
    ]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def log_tail(state_dir: str, lines: int = 10) -> str:
    try:
        with open(os.path.join(state_dir, "mosquitto.log"), encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip() or "(empty)"
    except OSError as exc:
        return f"(no log: {exc})"


def require_mosquitto() -> None:
    """Fail the calling test with a clear message when the broker is unreachable."""
    if is_listening():
        return
    import pytest

    pytest.fail(
        f"Mosquitto is not reachable on {HOST}:{PORT}; run `python tests/support/mosquitto.py ensure` "
        "(it runs the broker on a config of its own under .venv/mosquitto/)",
        pytrace=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=("ensure", "check"), help="ensure: start if down; check: only test")
    args = parser.parse_args(argv)
    if args.command == "check":
        up = is_listening()
        sys.stdout.write(f"mosquitto on {HOST}:{PORT}: {'up' if up else 'down'}\n")
        return 0 if up else 1
    error = ensure()
    if error is not None:
        sys.stderr.write(f"{error}\n")
        return 1
    sys.stdout.write(f"mosquitto listens on {HOST}:{PORT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
