"""Config hot reload: follow the config files, validate each edit, say what changed.

The pieces, each usable alone (the service wires them):

- ``ConfigWatcher`` follows the config path the service was started with (one YAML file, or a directory of
  them) with ``watchfiles`` (debounced: an editor's temp file and rename make one reload) and ``SIGHUP``.
  On each trigger it loads and validates the files off the event loop with the same loader and the same
  environment rule as ``gridwatch run`` (an unset ``${VAR}`` is an error), then awaits
  ``on_change(new, trigger)`` for a valid config that differs from the running one, or
  ``on_error(issues_text, trigger)`` for an invalid one: ``FILE:LINE: KEY.PATH: reason`` lines that never
  quote a value. An invalid edit changes nothing: the running config stays.
- ``diff_configs(old, new)`` compares two configs by id and lists what changed as ids and key paths, never
  values; ``ConfigDiff.summary()`` is the line for the log and ``as_details()`` the audit details.
- ``ConfigState`` is what ``/status`` shows under ``config``: ``version`` (an integer, 1 for the config the
  service started with, +1 for every applied reload), ``loaded_at``, ``last_error``.
- ``audit_reload`` writes the audit record of one applied reload.

Typical wiring (in the service)::

    state = ConfigState()

    async def on_change(new: LoadedConfig, trigger: ReloadTrigger) -> None:
        diff = diff_configs(running.config, new.config)
        ...reconcile: cameras/gates by id, await asyncio.to_thread(registries.reconfigure, new.config.registries),
           rules.reconfigure(new.config.rules); log diff.needs_restart as a warning...
        state.applied()
        await asyncio.to_thread(audit_reload, audit, diff, state.version, trigger)

    async def on_error(issues: str, trigger: ReloadTrigger) -> None:
        state.rejected(issues)  # the watcher has logged the issues already

    watcher = ConfigWatcher(config_path, on_change, on_error, current=loaded)
    await watcher.start()
    ...
    await watcher.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import pwd
import signal
import threading
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import watchfiles

from gridwatch.core.audit import AuditLog, AuditRecord
from gridwatch.core.config.issues import ConfigError, KeyPath, format_key_path
from gridwatch.core.config.loader import CONFIG_SUFFIXES, LoadedConfig, load_config
from gridwatch.core.config.root import GridwatchConfig
from recognition.registries import LIVE_REGISTRY_FIELDS

__all__ = [
    "AUDIT_ACTION",
    "ConfigDiff",
    "ConfigState",
    "ConfigWatcher",
    "ItemChanges",
    "RegistryChanges",
    "ReloadTrigger",
    "audit_reload",
    "config_path",
    "diff_configs",
]

log = logging.getLogger(__name__)

AUDIT_ACTION = "config.reload"

# Sections reconciled by id while the service runs; a change anywhere else needs a restart.
# Routing (grids, staff, duty rosters, routes) applies to cases opened after the reload; open cases
# keep the plan they opened with. Channels hold connections: they change at the next restart.
ROUTING_SECTIONS = ("grids", "staff", "duty", "routes")
LIVE_SECTIONS = ("cameras", "gates", "registries", "rules", "zones", "schedules", *ROUTING_SECTIONS)

TriggerKind = Literal["file-change", "sighup", "manual"]


# --- triggers and the watcher ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReloadTrigger:
    """What started a reload, and who: for audit records and log lines.

    ``user`` is the owner of the newest changed config file for a file change (the editor's user), else
    the OS user the service runs as (a signal does not say who sent it). ``files`` are the changed
    config files, relative to the config directory (file changes only).
    """

    kind: TriggerKind
    user: str
    files: tuple[str, ...] = ()

    def describe(self) -> str:
        files = f" of {', '.join(self.files)}" if self.files else ""
        return f"{self.kind}{files} by {self.user}"


OnChange = Callable[[LoadedConfig, ReloadTrigger], Awaitable[None]]
OnError = Callable[[str, ReloadTrigger], Awaitable[None]]


class ConfigWatcher:
    """Follows a config path; see the module docstring. ``await start()`` … ``await stop()``.

    Triggers are serialised: one reload at a time, and triggers that arrive meanwhile make one more.
    A file event whose files are byte-identical to the last ones read is ignored; a valid config equal to
    the running one (a comment edited, a file touched) calls nothing, except right after a refused edit:
    then ``on_change`` is called (with an empty diff) so that the error clears. ``SIGHUP`` always re-reads and
    reports an invalid config again. If ``on_change`` raises, the error is logged, ``on_error`` gets a
    one-line note, and the next trigger tries that config again.
    """

    def __init__(
        self,
        path: Path | None,
        on_change: OnChange,
        on_error: OnError,
        *,
        current: LoadedConfig | None = None,
        env: Mapping[str, str] | None = None,
        handle_sighup: bool = True,
        watch_files: bool = True,
        debounce_ms: int = 1600,
        step_ms: int = 200,
        stop_timeout_s: float = 10.0,
        force_polling: bool | None = None,
    ) -> None:
        """``path``: the config file or directory given to ``gridwatch run``; ``None`` infers it from
        ``current`` at start (see ``config_path``). ``current``: the config the service runs (checked
        against the files at start, so an edit made during start-up is not missed).
        ``env``: the ``${VAR}`` values (default: the process environment at each reload).
        ``watch_files=False``: reload on SIGHUP (and ``request_reload``) only.
        ``step_ms``: quiet time that ends a burst of file events; ``debounce_ms``: longest burst.
        No I/O here."""
        if path is None and current is None:
            raise ValueError("ConfigWatcher needs the config path or the current LoadedConfig")
        self._given_path = None if path is None else Path(path)
        self._path = self._given_path or (current.root if current is not None else Path())
        self._on_change = on_change
        self._on_error = on_error
        self._current = current
        self._env = env
        self._handle_sighup = handle_sighup
        self._watch_files = watch_files
        self._debounce_ms = debounce_ms
        self._step_ms = step_ms
        self._stop_timeout_s = stop_timeout_s
        self._force_polling = force_polling
        self._applied: dict[str, Any] | None = None  # model dump of the running config
        self._fingerprint: str | None = None  # of the files last read
        self._rejected = False  # the last config read was refused (or failed to apply)
        self._pending: tuple[ReloadTrigger, bool] | None = None
        self._wake: asyncio.Event | None = None
        self._stop_event: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sighup_installed = False
        self._reloads = 0

    @property
    def path(self) -> Path:
        return self._path

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    @property
    def reloads(self) -> int:
        """How many triggers were processed (applied, rejected or found unchanged)."""
        return self._reloads

    async def start(self) -> None:
        """Read the files once (the baseline), then follow them (and SIGHUP, in the main thread).

        Returns once the file watch is set up. Idempotent.
        """
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        if self._given_path is None and self._current is not None:
            self._path = await asyncio.to_thread(config_path, self._current)
        self._wake = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._pending = None
        # The baseline: the files as they are now. If they no longer hold the config the service runs
        # (edited while it started), that edit is handled like any file change.
        self._fingerprint, now = await asyncio.to_thread(self._read)
        baseline = now.config.model_dump(mode="json") if isinstance(now, LoadedConfig) else None
        if self._current is None:
            self._applied = baseline
        else:
            self._applied = self._current.config.model_dump(mode="json")
            if baseline != self._applied:
                self._fingerprint = None
                self._request(ReloadTrigger("file-change", _service_user()), force=False)
        if self._handle_sighup and threading.current_thread() is threading.main_thread():
            try:
                self._loop.add_signal_handler(signal.SIGHUP, self.request_reload, "sighup")
                self._sighup_installed = True
            except (NotImplementedError, RuntimeError, ValueError) as exc:
                log.warning("config reload on SIGHUP unavailable here (%s); file changes still apply", exc)
        self._tasks = [asyncio.create_task(self._reload_loop(), name="config-reload")]
        if self._watch_files:
            self._tasks.append(asyncio.create_task(self._watch_loop(), name="config-watch"))
            # Let the watch task run to its first wait: the file watch is set up by then, so an edit
            # made as soon as start() returns is seen.
            await asyncio.sleep(0)
        how = [what for what, on in (("file changes", self._watch_files), ("SIGHUP", self._sighup_installed)) if on]
        log.info("following config %s (%s)", self._path, " and ".join(how) or "request_reload only")

    async def stop(self) -> None:
        """Stop following; a reload in progress may finish (bounded by ``stop_timeout_s``). Idempotent."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        if self._sighup_installed and self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGHUP)
            self._sighup_installed = False
        assert self._stop_event is not None
        assert self._wake is not None
        self._stop_event.set()
        self._wake.set()
        _done, pending = await asyncio.wait(tasks, timeout=self._stop_timeout_s)
        for task in pending:
            log.warning(
                "config watcher: %s did not stop within %.1f s; cancelling it", task.get_name(), self._stop_timeout_s
            )
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("stopped following config %s", self._path)

    async def __aenter__(self) -> ConfigWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __del__(self) -> None:
        if self._tasks:
            warnings.warn(f"ConfigWatcher for {self._path} was not stopped", ResourceWarning, stacklevel=1)

    def request_reload(self, kind: TriggerKind = "manual") -> None:
        """Re-read the config now, even if the files look unchanged (what SIGHUP does). Event loop only."""
        self._request(ReloadTrigger(kind, _service_user()), force=True)

    # --- internals -------------------------------------------------------------------------------

    def _request(self, trigger: ReloadTrigger, *, force: bool) -> None:
        if self._wake is None:
            return
        if self._pending is not None:
            earlier, earlier_force = self._pending
            files = tuple(dict.fromkeys((*earlier.files, *trigger.files)))
            trigger = ReloadTrigger(trigger.kind, trigger.user, files)
            force = force or earlier_force
        self._pending = (trigger, force)
        self._wake.set()

    async def _reload_loop(self) -> None:
        assert self._wake is not None
        assert self._stop_event is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stop_event.is_set():
                return
            if self._pending is None:
                continue
            (trigger, force), self._pending = self._pending, None
            try:
                await self._reload(trigger, force=force)
            except Exception:
                log.exception("config reload (%s) failed unexpectedly", trigger.kind)

    async def _reload(self, trigger: ReloadTrigger, *, force: bool) -> None:
        fingerprint, result = await asyncio.to_thread(self._read)
        if not force and fingerprint == self._fingerprint:
            log.debug("config files unchanged after %s; nothing to do", trigger.kind)
            return
        self._reloads += 1
        self._fingerprint = fingerprint
        if isinstance(result, LoadedConfig):
            dump = result.config.model_dump(mode="json")
            if dump == self._applied and not self._rejected:
                log.info("config re-read (%s): no change", trigger.describe())
                return
            log.info("config change (%s): valid, applying", trigger.describe())
            try:
                await self._on_change(result, trigger)
            except Exception as exc:
                log.exception("applying the new config failed; the next change or SIGHUP retries it")
                self._fingerprint = None  # so that any file event retries
                self._rejected = True
                await self._report(
                    f"{self._path}: the config is valid but applying it failed ({type(exc).__name__})", trigger
                )
                return
            self._applied = dump
            self._current = result
            self._rejected = False
            return
        self._rejected = True
        log.error(
            "config change (%s) rejected; the service keeps running the last good config:\n%s",
            trigger.describe(),
            result,
        )
        await self._report(result, trigger)

    async def _report(self, text: str, trigger: ReloadTrigger) -> None:
        try:
            await self._on_error(text, trigger)
        except Exception:
            log.exception("config reload: the error callback failed")

    def _read(self) -> tuple[str, LoadedConfig | str]:
        """Worker thread: the files' fingerprint (read first), then the loaded config or the issues text."""
        fingerprint = _fingerprint(self._path)
        try:
            return fingerprint, load_config(self._path, env=self._env)
        except ConfigError as exc:
            return fingerprint, str(exc)
        except Exception as exc:  # an unexpected loader failure must not stop the watcher
            log.exception("config reload: reading %s failed", self._path)
            return fingerprint, f"{self._path}: cannot read the config ({type(exc).__name__})"

    async def _watch_loop(self) -> None:
        assert self._stop_event is not None
        directory = self._path if self._path.is_dir() else self._path.parent
        while not self._stop_event.is_set():
            try:
                async for changes in watchfiles.awatch(
                    directory,
                    watch_filter=self._relevant,
                    debounce=self._debounce_ms,
                    step=self._step_ms,
                    stop_event=self._stop_event,
                    recursive=False,
                    force_polling=self._force_polling,
                ):
                    files = sorted({Path(p).name for _, p in changes if Path(p).suffix in CONFIG_SUFFIXES})
                    self._request(ReloadTrigger("file-change", _owner(directory, files), tuple(files)), force=False)
            except Exception as exc:  # e.g. the directory was removed; watch again once it is back
                log.warning("config watcher: cannot watch %s (%s); retrying in 5 s", directory, type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), timeout=5.0)

    def _relevant(self, change: watchfiles.Change, raw: str) -> bool:
        name = Path(raw).name
        if name.startswith(".."):  # Kubernetes ConfigMap volumes swap a `..data` symlink
            return True
        if self._path.is_dir():
            return Path(name).suffix in CONFIG_SUFFIXES and not name.startswith(".")
        return name == self._path.name


def config_path(loaded: LoadedConfig) -> Path:
    """The path a config was loaded from, when only the ``LoadedConfig`` is at hand.

    A directory config loads every ``*.yaml``/``*.yml`` file of its directory; a single-file config may
    sit next to other YAML files it does not include. So: the config directory if every config file in
    it was loaded, else the one file. (A directory holding only the one file is taken as the directory:
    a file added there later is read, as ``gridwatch run DIR`` would.) Reads the directory listing.
    """
    if len(loaded.files) != 1:
        return loaded.root
    try:
        present = {
            p.resolve()
            for p in loaded.root.iterdir()
            if p.suffix in CONFIG_SUFFIXES and p.is_file() and not p.name.startswith(".")
        }
    except OSError:
        return loaded.files[0]
    return loaded.root if present <= set(loaded.files) else loaded.files[0]


def _fingerprint(path: Path) -> str:
    """SHA-256 over the config files' names and bytes (what the loader reads), cheap to compare."""
    digest = hashlib.sha256()
    try:
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file() and not p.name.startswith(".")
            )
        else:
            files = [path]
        for file in files:
            digest.update(file.name.encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    except OSError as exc:
        digest.update(f"unreadable:{type(exc).__name__}".encode())
    return digest.hexdigest()


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def _service_user() -> str:
    return _user_name(os.geteuid())


def _owner(directory: Path, names: Sequence[str]) -> str:
    """Owner of the most recently modified of the changed files; the service's user if none is left."""
    newest: tuple[float, int] | None = None
    for name in names:
        try:
            st = (directory / name).stat()
        except OSError:
            continue
        if newest is None or st.st_mtime > newest[0]:
            newest = (st.st_mtime, st.st_uid)
    return _service_user() if newest is None else _user_name(newest[1])


# --- what /status shows ---------------------------------------------------------------------------


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(at: dt.datetime | None) -> str | None:
    return None if at is None else at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class ConfigState:
    """The running config's version: ``/status`` → ``config``. Event-loop only.

    ``version`` is an integer: 1 for the config the service started with, +1 for each applied reload.
    ``last_error`` is the issues text of the last rejected edit, cleared when a config is applied.
    """

    version: int = 1
    loaded_at: dt.datetime = field(default_factory=_utc_now)
    last_error: str | None = None
    last_error_at: dt.datetime | None = None

    def applied(self, at: dt.datetime | None = None) -> int:
        """A new config now runs; returns its version."""
        self.version += 1
        self.loaded_at = at or _utc_now()
        self.last_error = None
        self.last_error_at = None
        return self.version

    def rejected(self, issues: str, at: dt.datetime | None = None) -> None:
        """An edit was refused; the running config (and version) stay."""
        self.last_error = issues
        self.last_error_at = at or _utc_now()

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "loaded_at": _iso(self.loaded_at),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
        }


# --- what changed -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemChanges:
    """Changes of one id-keyed section. ``changed`` maps an id to its changed key paths (relative)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_details(self) -> dict[str, object]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [{"id": item, "keys": list(keys)} for item, keys in self.changed.items()],
        }

    def _summary(self, section: str) -> str | None:
        parts = [f"+{item}" for item in self.added] + [f"-{item}" for item in self.removed]
        parts += [f"~{item}({', '.join(keys)})" for item, keys in self.changed.items()]
        return f"{section} {' '.join(parts)}" if parts else None


@dataclass(frozen=True, slots=True)
class RegistryChanges(ItemChanges):
    """``retuned``: only thresholds, margins, covered sources or other live fields changed (applied in
    place); ``reload``: a change that needs the registry's vectors reloaded from the store. Both are
    also in ``changed``. With today's registry fields every change is live, so ``reload`` is empty
    unless a field outside ``recognition.registries.LIVE_REGISTRY_FIELDS`` is added."""

    retuned: tuple[str, ...] = ()
    reload: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """What a reload changes, as ids and key paths (never values).

    ``needs_restart``: key paths outside the live sections (cameras, gates, registries, rules, zones,
    schedules) that
    changed: ``model.*`` (the pack: every embedding would change), ``service.*`` (data dir, database,
    HTTP bind, transport, log level, name), ``notifier.*`` (sinks hold connections; the outbox keeps
    alerts across the restart) and any other section. The reload applies the live sections and leaves
    these running as they are until a restart.
    """

    cameras: ItemChanges = field(default_factory=ItemChanges)
    gates: ItemChanges = field(default_factory=ItemChanges)
    registries: RegistryChanges = field(default_factory=RegistryChanges)
    rules: ItemChanges = field(default_factory=ItemChanges)
    zones: ItemChanges = field(default_factory=ItemChanges)
    schedules: ItemChanges = field(default_factory=ItemChanges)
    routing: tuple[str, ...] = ()  # routing sections that changed
    needs_restart: tuple[str, ...] = ()

    @property
    def rules_changed(self) -> bool:
        """Rules, or the zones and schedules they refer to."""
        return self.rules.any or self.zones.any or self.schedules.any

    @property
    def empty(self) -> bool:
        sections = (self.cameras, self.gates, self.registries, self.rules, self.zones, self.schedules)
        return not (any(changes.any for changes in sections) or self.routing or self.needs_restart)

    def summary(self) -> str:
        """One short line: ``cameras +cam3 -cam2 ~cam1(fps); ...; needs restart: model.pack``."""
        parts = [
            text
            for section, changes in (
                ("cameras", self.cameras),
                ("gates", self.gates),
                ("registries", self.registries),
                ("rules", self.rules),
                ("zones", self.zones),
                ("schedules", self.schedules),
            )
            if (text := changes._summary(section)) is not None
        ]
        if self.routing:
            parts.append(f"routing: {', '.join(self.routing)}")
        if self.needs_restart:
            parts.append(f"needs restart: {', '.join(self.needs_restart)}")
        return "; ".join(parts) if parts else "no change"

    def as_details(self) -> dict[str, object]:
        """JSON-safe, for the audit record."""
        return {
            "cameras": self.cameras.as_details(),
            "gates": self.gates.as_details(),
            "registries": {
                **self.registries.as_details(),
                "retuned": list(self.registries.retuned),
                "reload": list(self.registries.reload),
            },
            "rules": self.rules.as_details(),
            "zones": self.zones.as_details(),
            "schedules": self.schedules.as_details(),
            "routing": list(self.routing),
            "needs_restart": list(self.needs_restart),
        }


def diff_configs(old: GridwatchConfig, new: GridwatchConfig) -> ConfigDiff:
    """Compare by id (cameras, gates, rules) and name (registries); order does not matter."""
    registries = _items(old.registries, new.registries, "name")
    live = set(LIVE_REGISTRY_FIELDS)
    retuned = tuple(name for name, keys in registries.changed.items() if all(_top(k) in live for k in keys))
    reload = tuple(name for name in registries.changed if name not in retuned)
    needs_restart: list[str] = []
    old_dump, new_dump = old.model_dump(mode="json"), new.model_dump(mode="json")
    for section in type(new).model_fields:
        if section not in LIVE_SECTIONS:
            needs_restart += _changed_paths(old_dump.get(section), new_dump.get(section), (section,))
    return ConfigDiff(
        cameras=_items(old.cameras, new.cameras, "id"),
        gates=_items(old.gates, new.gates, "id"),
        registries=RegistryChanges(
            registries.added, registries.removed, registries.changed, retuned=retuned, reload=reload
        ),
        rules=_items(old.rules, new.rules, "id"),
        zones=_items(old.zones, new.zones, "id"),
        schedules=_items(old.schedules, new.schedules, "id"),
        routing=tuple(s for s in ROUTING_SECTIONS if old_dump.get(s) != new_dump.get(s)),
        needs_restart=tuple(needs_restart),
    )


def _items(old: Sequence[Any], new: Sequence[Any], key: str) -> ItemChanges:
    before = {getattr(item, key): item.model_dump(mode="json") for item in old}
    after = {getattr(item, key): item.model_dump(mode="json") for item in new}
    changed = {
        item: tuple(_changed_paths(before[item], dump, ()))
        for item, dump in after.items()
        if item in before and before[item] != dump
    }
    return ItemChanges(
        added=tuple(item for item in after if item not in before),
        removed=tuple(item for item in before if item not in after),
        changed=changed,
    )


def _changed_paths(old: Any, new: Any, path: KeyPath) -> list[str]:
    """Leaf key paths whose values differ; a list of scalars (or of another length) is one path."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            paths += _changed_paths(old.get(key), new.get(key), (*path, key))
        return paths
    if (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(isinstance(item, dict) for item in (*old, *new))
    ):
        paths = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            paths += _changed_paths(a, b, (*path, index))
        return paths
    return [format_key_path(path)]


def _top(key_path: str) -> str:
    """The field name a relative key path starts with (``sources[0]`` → ``sources``)."""
    return key_path.split(".", 1)[0].split("[", 1)[0]


# --- audit --------------------------------------------------------------------------------------


def audit_reload(audit: AuditLog, diff: ConfigDiff, version: int, trigger: ReloadTrigger) -> AuditRecord:
    """One audit record for an applied reload: who (``actor`` = the trigger kind, ``user``), which files,
    what changed (ids and key paths). Blocking (fsync): call it with ``asyncio.to_thread``."""
    return audit.append(
        AUDIT_ACTION,
        actor=trigger.kind,
        target="config",
        details={
            "version": version,
            "user": trigger.user,
            "files": list(trigger.files),
            "summary": diff.summary(),
            "changes": diff.as_details(),
        },
    )
