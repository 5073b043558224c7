"""A throwaway PostgreSQL cluster for the test session (Debian's ``postgresql`` binaries).

``PostgresCluster.start()`` runs ``initdb`` into a temporary directory and ``pg_ctl start`` on a free
port of 127.0.0.1 (the socket in that directory too), as the ``postgres`` user when the tests run as
root (PostgreSQL refuses root). ``create_database()`` gives each test its own database;
``stop()``/``start_again()`` simulate a database that drops while the service runs; ``close()``
stops the server by the PID in ``postmaster.pid`` and removes the directory. ``fsync`` is off: the
data is thrown away anyway, and a killed server still finds its WAL in the OS cache.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BIN_ROOT = Path("/usr/lib/postgresql")
HOST = "127.0.0.1"
USER = "postgres"


class PostgresUnavailableError(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The newest installed ``/usr/lib/postgresql/<ver>/bin`` holding initdb and pg_ctl."""
    candidates = sorted(
        (p for p in BIN_ROOT.glob("*/bin") if (p / "initdb").is_file() and (p / "pg_ctl").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise PostgresUnavailableError(
            f"PostgreSQL is not installed (no {BIN_ROOT}/<version>/bin/initdb): run `make system-test-deps` "
            "or `sudo apt-get install postgresql`"
        )
    return candidates[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    def __init__(self) -> None:
        self.bin_dir = find_bin_dir()
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="gridwatch-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self._counter = itertools.count(1)
        self._as_postgres = os.geteuid() == 0

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._as_postgres:
            entry = pwd.getpwnam(USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"
        )
        self.start_again()

    def start_again(self) -> None:
        """Start the server (again, after ``stop()``) on the same port and data directory."""
        # fsync off: the OS keeps what the server wrote when it is killed. synchronous_commit stays on,
        # or an immediate stop would lose the last commits (the drop test checks that nothing is lost).
        options = f"-k {self.directory} -p {self.port} -h {HOST} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        """Stop the server now (``-m immediate``: connections drop as in a crash), keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")

    def close(self) -> None:
        """Stop the server by its PID (if it runs) and remove the cluster."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
        shutil.rmtree(self.directory, ignore_errors=True)

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    # --- databases -------------------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@{HOST}:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{next(self._counter)}"
        with psycopg.connect(host=HOST, port=self.port, user=USER, dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailableError(
                f"`{program}` failed (exit {result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
                + (f"\nserver log:\n{log}" if log else "")
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
