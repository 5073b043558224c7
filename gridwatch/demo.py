"""The embedded default: the bundled demo config, a fresh data directory and the demo enrolment."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import LoadedConfig, load_config
from gridwatch.core.crypto import DATA_KEY_ENV, new_data_key
from gridwatch.wiring import build_database, build_recognition, data_paths
from recognition.enroll import enrollment_sample, read_photo

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = PROJECT_ROOT / "configs" / "demo"
DEMO_MARKER = ".gridwatch-demo"
# Templates are sealed at rest with GRIDWATCH_DATA_KEY; the demo, run without one, makes a throwaway key
# kept in its own data directory (which it resets on every run, so nothing sealed outlives the key).
DEMO_KEY_FILE = "demo-data-key"


@dataclass(frozen=True, slots=True)
class DemoPerson:
    registry: str
    display_name: str
    photo: str  # relative to the config directory


DEMO_PERSONS = (DemoPerson("demo_watchlist", "Lin-Manuel Miranda (demo)", "assets/lin1.png"),)
DEMO_OPERATOR = "demo-operator"


def prepare_demo(config: Path | None, *, keep_state: bool) -> LoadedConfig:
    """Loads the demo config, resets its data directory and enrols the demo person."""
    path = config or DEMO_CONFIG
    if not path.exists():
        raise SystemExit(f"demo config not found at {path}: run from a gridwatch checkout or pass -c PATH")
    loaded = load_config(path)
    paths = data_paths(loaded)
    marker = paths.root / DEMO_MARKER
    if not keep_state and paths.root.exists() and any(paths.root.iterdir()):
        # Only ever wipe a directory the demo made: `-c` could name a real site's data.
        if not marker.is_file():
            raise SystemExit(
                f"refusing to reset {paths.root}: it was not made by `gridwatch demo` "
                "(pass --keep-state, or point service.data_dir at an empty directory)"
            )
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by `gridwatch demo`; the demo resets this directory on every run\n")
    _demo_data_key(paths.root / DEMO_KEY_FILE)
    audit = AuditLog(paths.audit_log)
    parts = build_recognition(loaded, audit)
    try:
        parts.registries.load()
        for person in DEMO_PERSONS:
            if parts.registries.size(person.registry):
                continue
            photo = loaded.resolve(Path(person.photo))
            sample = enrollment_sample(parts.analyzer, parts.gate, read_photo(photo), what=str(photo))
            enrolled = parts.registries.enroll(
                person.registry, person.display_name, [(sample.photo_sha256, sample.embedding)], actor="demo"
            )
            print(
                f"demo: enrolled {person.display_name} as {enrolled.person_id} in {person.registry}",
                flush=True,
            )
    finally:
        parts.close()
    if loaded.config.service.console.enabled:
        _demo_operator(loaded)
    return loaded


def _demo_data_key(path: Path) -> None:
    """Without ``GRIDWATCH_DATA_KEY``, the demo's own throwaway key (kept with ``--keep-state``) in the environment."""
    if os.environ.get(DATA_KEY_ENV, "").strip():
        return
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(new_data_key()).decode("ascii") + "\n")
        print(f"demo: {DATA_KEY_ENV} is not set: templates are sealed with a throwaway demo key ({path})", flush=True)
    os.environ[DATA_KEY_ENV] = path.read_text().strip()


def _demo_operator(loaded: LoadedConfig) -> None:
    """An operator of every grid of the demo, with a fresh random password printed once (the demo's data
    directory, and with it this user, is reset on every run)."""
    from gridwatch.console.accounts import AccountError, Accounts

    console = loaded.config.service.console
    grids = [grid.id for grid in loaded.config.grids]
    password = secrets.token_urlsafe(12)
    database = build_database(loaded)
    database.open()
    try:
        accounts = Accounts(database)
        try:
            accounts.add_user(DEMO_OPERATOR, "operator", password, grids=grids)
        except AccountError:  # --keep-state: the user is there already; give it the new password
            accounts.set_password(DEMO_OPERATOR, password)
    finally:
        database.close()
    url = console.public_url or f"http://{console.host}:{console.port}/"
    print(f"demo: operator console at {url}  sign in as {DEMO_OPERATOR} / {password}", flush=True)
