"""Config hot reload: the watcher on real files (watchfiles, SIGHUP), the diff, /status state, the audit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.loader import LoadedConfig, load_config
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.reload import (
    AUDIT_ACTION,
    ConfigDiff,
    ConfigState,
    ConfigWatcher,
    ReloadTrigger,
    audit_reload,
    config_path,
    diff_configs,
)

DEADLINE_S = 15.0
CAM_PASSWORD = "cam-Secret-9"
ENV = {"CAM_PASSWORD": CAM_PASSWORD}

SERVICE_YAML = """\
service:
  name: reload-test
  http:
    enabled: false
registries:
  - name: watch
    purpose: test registry
    legal_basis: test fixture
    retention_days: 30
    threshold: 0.5
"""

CAMERAS_YAML = """\
cameras:
  - id: cam1
    kind: file
    location_class: lobby
    signage_verified_at: 2026-01-15
    path: clip.mp4
"""

CAMERAS_TWO_YAML = """\
cameras:
  - id: cam1
    kind: file
    location_class: lobby
    signage_verified_at: 2026-01-15
    path: clip.mp4
  - id: cam2
    kind: rtsp
    location_class: lobby
    signage_verified_at: 2026-01-15
    url: rtsp://viewer:${CAM_PASSWORD}@10.0.0.2/stream
"""

BROKEN_YAML = """\
cameras:
  - id: cam1
    kind: file: x
    path: clip.mp4
"""

SCHEMA_ERROR_YAML = """\
cameras:
  - id: cam1
    kind: rtsp
    location_class: lobby
    signage_verified_at: 2026-01-15
    url: rtsp://viewer:${CAM_PASSWORD}@10.0.0.2/stream
    frame_rate: 5
"""


@pytest.fixture
def config_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="reload-helper-", dir="/tmp"))
    (path / "service.yaml").write_text(SERVICE_YAML)
    (path / "cameras.yaml").write_text(CAMERAS_YAML)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_like_an_editor(path: Path, text: str) -> None:
    """Write a temp file next to it and rename it into place (what vim, VS Code and kubectl do)."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


class Recorder:
    """The service's side: what the watcher handed over, with events to wait on."""

    def __init__(self) -> None:
        self.changes: list[tuple[LoadedConfig, ReloadTrigger]] = []
        self.errors: list[tuple[str, ReloadTrigger]] = []
        self.changed = asyncio.Event()
        self.failed = asyncio.Event()

    async def on_change(self, new: LoadedConfig, trigger: ReloadTrigger) -> None:
        self.changes.append((new, trigger))
        self.changed.set()

    async def on_error(self, issues: str, trigger: ReloadTrigger) -> None:
        self.errors.append((issues, trigger))
        self.failed.set()

    async def next_change(self) -> tuple[LoadedConfig, ReloadTrigger]:
        await asyncio.wait_for(self.changed.wait(), DEADLINE_S)
        self.changed.clear()
        return self.changes[-1]

    async def next_error(self) -> tuple[str, ReloadTrigger]:
        await asyncio.wait_for(self.failed.wait(), DEADLINE_S)
        self.failed.clear()
        return self.errors[-1]


def watcher_for(path: Path, recorder: Recorder, **kwargs: Any) -> ConfigWatcher:
    return ConfigWatcher(
        path,
        recorder.on_change,
        recorder.on_error,
        current=load_config(path, env=ENV),
        env=ENV,
        debounce_ms=400,
        step_ms=50,
        **kwargs,
    )


def camera_ids(loaded: LoadedConfig) -> list[str]:
    return [c.id for c in loaded.config.cameras]


# --- the watcher ----------------------------------------------------------------------------------


async def test_a_file_edit_hands_over_the_new_config(config_dir: Path) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder):
        write_like_an_editor(config_dir / "cameras.yaml", CAMERAS_TWO_YAML)
        new, trigger = await recorder.next_change()
    assert camera_ids(new) == ["cam1", "cam2"]
    assert trigger.kind == "file-change"
    assert trigger.files == ("cameras.yaml",)
    assert trigger.user  # the file's owner
    assert recorder.errors == []


async def test_broken_yaml_is_reported_with_file_and_line_and_never_applied_then_a_fix_applies(
    config_dir: Path,
) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder):
        write_like_an_editor(config_dir / "cameras.yaml", BROKEN_YAML)
        issues, trigger = await recorder.next_error()
        assert f"{config_dir / 'cameras.yaml'}:3: YAML syntax error" in issues
        assert trigger.kind == "file-change"

        write_like_an_editor(config_dir / "cameras.yaml", SCHEMA_ERROR_YAML)
        issues, _ = await recorder.next_error()
        assert f"{config_dir / 'cameras.yaml'}:7: cameras[0].frame_rate: Extra inputs are not permitted" in issues
        assert CAM_PASSWORD not in issues
        assert recorder.changes == []

        write_like_an_editor(config_dir / "cameras.yaml", CAMERAS_TWO_YAML)
        new, _ = await recorder.next_change()
    assert camera_ids(new) == ["cam1", "cam2"]
    assert len(recorder.errors) == 2


async def test_reverting_a_broken_edit_clears_the_error(config_dir: Path) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder):
        write_like_an_editor(config_dir / "cameras.yaml", BROKEN_YAML)
        await recorder.next_error()
        write_like_an_editor(config_dir / "cameras.yaml", CAMERAS_YAML)  # back to the running config
        new, _ = await recorder.next_change()
    assert camera_ids(new) == ["cam1"]
    assert diff_configs(load_config(config_dir, env=ENV).config, new.config).empty


async def test_an_unset_variable_is_an_error_as_at_start(config_dir: Path) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder):
        write_like_an_editor(config_dir / "cameras.yaml", CAMERAS_TWO_YAML.replace("CAM_PASSWORD", "NEW_PASSWORD"))
        issues, _ = await recorder.next_error()
    assert f"{config_dir / 'cameras.yaml'}:11: cameras[1].url: environment variable NEW_PASSWORD is not set" in issues
    assert recorder.changes == []


async def test_a_comment_edit_changes_nothing(config_dir: Path) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder) as watcher:
        write_like_an_editor(config_dir / "cameras.yaml", "# a comment\n" + CAMERAS_YAML)
        deadline = time.monotonic() + DEADLINE_S
        while watcher.reloads < 1:
            assert time.monotonic() < deadline, "the edit was never read"
            await asyncio.sleep(0.05)
    assert recorder.changes == []
    assert recorder.errors == []


async def test_a_burst_of_writes_makes_one_reload(config_dir: Path) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder) as watcher:
        for text in (BROKEN_YAML, CAMERAS_YAML.replace("cam1", "cam9"), CAMERAS_TWO_YAML):
            write_like_an_editor(config_dir / "cameras.yaml", text)
        new, _ = await recorder.next_change()
        await asyncio.sleep(0.5)
    assert camera_ids(new) == ["cam1", "cam2"]
    assert len(recorder.changes) == 1
    assert recorder.errors == []
    assert watcher.reloads == 1


async def test_the_watcher_infers_the_config_path_from_the_loaded_config(config_dir: Path) -> None:
    recorder = Recorder()
    watcher = ConfigWatcher(
        None, recorder.on_change, recorder.on_error, current=load_config(config_dir, env=ENV), env=ENV, step_ms=50
    )
    async with watcher:
        assert watcher.path == config_dir.resolve()
        write_like_an_editor(config_dir / "cameras.yaml", CAMERAS_TWO_YAML)
        new, _ = await recorder.next_change()
    assert camera_ids(new) == ["cam1", "cam2"]


def test_config_path(config_dir: Path) -> None:
    assert config_path(load_config(config_dir, env=ENV)) == config_dir.resolve()
    single = config_dir / "site.yml"
    single.write_text(SERVICE_YAML + CAMERAS_YAML)
    assert config_path(load_config(single, env=ENV)) == single.resolve()  # other YAML files sit next to it
    (config_dir / "service.yaml").unlink()
    (config_dir / "cameras.yaml").unlink()
    assert config_path(load_config(single, env=ENV)) == config_dir.resolve()  # alone: its directory


async def test_a_single_config_file_is_followed(config_dir: Path) -> None:
    single = config_dir / "site.yml"
    single.write_text(SERVICE_YAML + CAMERAS_YAML)
    recorder = Recorder()
    async with watcher_for(single, recorder):
        (config_dir / "cameras.yaml").write_text(CAMERAS_TWO_YAML)  # not part of this config: ignored
        write_like_an_editor(single, SERVICE_YAML + CAMERAS_TWO_YAML)
        new, trigger = await recorder.next_change()
    assert camera_ids(new) == ["cam1", "cam2"]
    assert trigger.files == ("site.yml",)
    assert len(recorder.changes) == 1


async def test_an_edit_made_before_the_watcher_started_is_picked_up(config_dir: Path) -> None:
    recorder = Recorder()
    watcher = watcher_for(config_dir, recorder)  # holds the config as the service loaded it
    (config_dir / "cameras.yaml").write_text(CAMERAS_TWO_YAML)
    async with watcher:
        new, _ = await recorder.next_change()
    assert camera_ids(new) == ["cam1", "cam2"]


async def test_sighup_reloads(config_dir: Path) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder, watch_files=False):
        (config_dir / "cameras.yaml").write_text(CAMERAS_TWO_YAML)
        await asyncio.sleep(0.5)
        assert recorder.changes == []  # files are not followed in this watcher
        os.kill(os.getpid(), signal.SIGHUP)
        new, trigger = await recorder.next_change()
    assert camera_ids(new) == ["cam1", "cam2"]
    assert trigger.kind == "sighup"


async def test_sighup_reports_a_broken_config_again(config_dir: Path) -> None:
    recorder = Recorder()
    async with watcher_for(config_dir, recorder, watch_files=False):
        (config_dir / "cameras.yaml").write_text(BROKEN_YAML)
        os.kill(os.getpid(), signal.SIGHUP)
        await recorder.next_error()
        os.kill(os.getpid(), signal.SIGHUP)
        await recorder.next_error()
    assert len(recorder.errors) == 2
    assert recorder.changes == []


async def test_a_failing_apply_is_reported_and_retried(config_dir: Path) -> None:
    recorder = Recorder()
    calls = 0

    async def flaky(new: LoadedConfig, trigger: ReloadTrigger) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("camera start failed")
        await recorder.on_change(new, trigger)

    watcher = ConfigWatcher(
        config_dir, flaky, recorder.on_error, current=load_config(config_dir, env=ENV), env=ENV, watch_files=False
    )
    async with watcher:
        (config_dir / "cameras.yaml").write_text(CAMERAS_TWO_YAML)
        watcher.request_reload()
        issues, _ = await recorder.next_error()
        assert "applying it failed (RuntimeError)" in issues
        watcher.request_reload()
        new, trigger = await recorder.next_change()
    assert camera_ids(new) == ["cam1", "cam2"]
    assert trigger.kind == "manual"


async def test_stop_is_clean_and_safe_twice(config_dir: Path) -> None:
    recorder = Recorder()
    before = signal.getsignal(signal.SIGHUP)
    watcher = watcher_for(config_dir, recorder)
    await watcher.stop()  # never started: nothing to do
    await watcher.start()
    await watcher.start()  # idempotent
    assert watcher.running
    assert signal.getsignal(signal.SIGHUP) is not before  # the loop's handler
    started = time.monotonic()
    await watcher.stop()
    assert time.monotonic() - started < 5.0
    await watcher.stop()
    assert not watcher.running
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("config-")]
    write_like_an_editor(config_dir / "cameras.yaml", CAMERAS_TWO_YAML)
    await asyncio.sleep(0.5)
    assert recorder.changes == []
    assert recorder.errors == []


def test_init_does_no_io() -> None:
    async def nothing(*_: object) -> None:
        return None

    watcher = ConfigWatcher(Path("/nonexistent/reload-helper-config"), nothing, nothing)
    assert not watcher.running


# --- the diff -------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "cameras": [
        {"id": "cam1", "kind": "file", "location_class": "lobby", "signage_verified_at": "2026-01-15", "path": "a.mp4"},
        {
            "id": "cam2",
            "kind": "rtsp",
            "location_class": "lobby",
            "signage_verified_at": "2026-01-15",
            "url": "rtsp://viewer:old-Secret@10.0.0.2/s",
        },
    ],
    "gates": [{"id": "gate1", "kind": "isapi_push", "username": "dev", "password": "${GATE_PASSWORD}"}],
    "registries": [
        {"name": "watch", "purpose": "test registry", "legal_basis": "test fixture", "retention_days": 30},
        {"name": "other", "purpose": "test registry", "legal_basis": "test fixture", "retention_days": 30},
    ],
    "rules": [{"id": "r1", "kind": "seen", "registries": ["watch"]}],
}


def config(**changes: Any) -> GridwatchConfig:
    data = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        data[key] = value
    return GridwatchConfig.model_validate(data)


def edited(section: str, index: int, **fields: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(json.dumps(BASE[section]))
    items[index].update(fields)
    return items


CAM3 = {"id": "cam3", "kind": "file", "location_class": "lobby", "signage_verified_at": "2026-01-15", "path": "c.mp4"}
GATE2 = {"id": "gate2", "kind": "mqtt", "topic": "faces/#"}
NEW_REGISTRY = {"name": "new", "purpose": "test registry", "legal_basis": "test fixture", "retention_days": 7}


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        pytest.param(config(), {}, id="unchanged"),
        pytest.param(config(cameras=[*BASE["cameras"], CAM3]), {"cameras.added": ("cam3",)}, id="camera-added"),
        pytest.param(config(cameras=BASE["cameras"][:1]), {"cameras.removed": ("cam2",)}, id="camera-removed"),
        pytest.param(
            config(cameras=edited("cameras", 0, fps=2.0)), {"cameras.changed": {"cam1": ("fps",)}}, id="camera-changed"
        ),
        pytest.param(
            config(cameras=edited("cameras", 1, url="rtsp://viewer:new-Secret@10.0.0.2/s")),
            {"cameras.changed": {"cam2": ("url",)}},
            id="camera-credentials-changed",
        ),
        pytest.param(
            config(cameras=edited("cameras", 0, backoff={"max_s": 5.0})),
            {"cameras.changed": {"cam1": ("backoff.max_s",)}},
            id="camera-nested-change",
        ),
        pytest.param(config(cameras=BASE["cameras"][::-1]), {}, id="cameras-reordered"),
        pytest.param(config(gates=[*BASE["gates"], GATE2]), {"gates.added": ("gate2",)}, id="gate-added"),
        pytest.param(config(gates=[]), {"gates.removed": ("gate1",)}, id="gate-removed"),
        pytest.param(
            config(gates=edited("gates", 0, doors=[{"door": "1", "direction": "in"}])),
            {"gates.changed": {"gate1": ("doors",)}},
            id="gate-changed",
        ),
        pytest.param(
            config(registries=edited("registries", 0, threshold=0.6)),
            {"registries.changed": {"watch": ("threshold",)}, "registries.retuned": ("watch",)},
            id="registry-threshold",
        ),
        pytest.param(
            config(registries=edited("registries", 0, sources=["cam1"], margin=0.1)),
            {"registries.changed": {"watch": ("margin", "sources")}, "registries.retuned": ("watch",)},
            id="registry-sources-and-margin",
        ),
        pytest.param(
            config(registries=[*BASE["registries"], NEW_REGISTRY]), {"registries.added": ("new",)}, id="registry-added"
        ),
        pytest.param(
            config(registries=BASE["registries"][:1]), {"registries.removed": ("other",)}, id="registry-removed"
        ),
        pytest.param(
            config(rules=edited("rules", 0, cooldown_s=60)),
            {"rules.changed": {"r1": ("cooldown_s",)}},
            id="rule-changed",
        ),
        pytest.param(
            config(rules=[*BASE["rules"], {"id": "r2", "kind": "seen", "registries": ["other"]}]),
            {"rules.added": ("r2",)},
            id="rule-added",
        ),
        pytest.param(config(model={"pack": "buffalo_l"}), {"needs_restart": ("model.pack",)}, id="model-pack"),
        pytest.param(
            config(model={"quality": {"min_face_px": 60}}),
            {"needs_restart": ("model.quality.min_face_px",)},
            id="model-quality",
        ),
        pytest.param(
            config(service={"data_dir": "elsewhere", "http": {"port": 9090}}),
            {"needs_restart": ("service.data_dir", "service.http.port")},
            id="service-data-dir-and-http",
        ),
        pytest.param(
            config(service={"console": {"enabled": True, "port": 9091}}),
            {"needs_restart": ("service.console.enabled", "service.console.port")},
            id="service-console",
        ),
        pytest.param(
            config(notifier={"jsonl": {"enabled": True}, "kafka": {"topic": "other.alerts"}}),
            {"needs_restart": ("notifier.jsonl.enabled", "notifier.kafka.topic")},
            id="notifier-sinks",
        ),
    ],
)
def test_diff_configs(new: GridwatchConfig, expected: dict[str, Any]) -> None:
    diff = diff_configs(config(), new)
    actual: dict[str, Any] = {}
    for section in ("cameras", "gates", "registries", "rules"):
        changes = getattr(diff, section)
        for name in ("added", "removed"):
            if getattr(changes, name):
                actual[f"{section}.{name}"] = getattr(changes, name)
        if changes.changed:
            actual[f"{section}.changed"] = dict(changes.changed)
    if diff.registries.retuned:
        actual["registries.retuned"] = diff.registries.retuned
    if diff.needs_restart:
        actual["needs_restart"] = diff.needs_restart
    assert actual == expected
    assert diff.empty == (not expected)
    assert diff.rules_changed == any(key.startswith("rules.") for key in expected)
    assert diff.registries.reload == ()  # every registry field is applied in place today
    summary = diff.summary()
    assert "Secret" not in summary
    for value in ("buffalo_l", "9090", "0.6"):
        assert value not in summary
    if not expected:
        assert summary == "no change"


def test_summary_names_ids_and_key_paths() -> None:
    new = config(
        cameras=[*edited("cameras", 0, fps=2.0)[:1], CAM3],
        registries=edited("registries", 0, threshold=0.6),
        model={"pack": "buffalo_l"},
    )
    assert diff_configs(config(), new).summary() == (
        "cameras +cam3 -cam2 ~cam1(fps); registries ~watch(threshold); needs restart: model.pack"
    )


# --- state and audit ----------------------------------------------------------------------------


def test_config_state() -> None:
    started = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.UTC)
    state = ConfigState(loaded_at=started)
    assert state.as_dict() == {
        "version": 1,
        "loaded_at": "2026-12-01T22:00:00Z",
        "last_error": None,
        "last_error_at": None,
    }
    state.rejected("/etc/gw/cameras.yaml:4: cameras[0].path: bad", at=started + dt.timedelta(minutes=1))
    assert state.as_dict()["version"] == 1
    assert state.as_dict()["last_error"] == "/etc/gw/cameras.yaml:4: cameras[0].path: bad"
    assert state.as_dict()["last_error_at"] == "2026-12-01T22:01:00Z"
    assert state.applied(at=started + dt.timedelta(minutes=2)) == 2
    assert state.as_dict() == {
        "version": 2,
        "loaded_at": "2026-12-01T22:02:00Z",
        "last_error": None,
        "last_error_at": None,
    }


def test_audit_reload_names_who_and_what_never_values(tmp_path: Path) -> None:
    new = config(
        cameras=edited("cameras", 1, url="rtsp://viewer:new-Secret@10.0.0.2/s"),
        gates=[{"id": "password", "kind": "isapi_push", "username": "dev", "password": "${GATE_PASSWORD}"}],
    )
    diff = diff_configs(config(), new)
    trigger = ReloadTrigger("file-change", "alice", ("cameras.yaml",))
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        record = audit_reload(audit, diff, 7, trigger)
    assert record.action == AUDIT_ACTION
    assert record.actor == "file-change"
    assert record.target == "config"
    assert record.details["version"] == 7
    assert record.details["user"] == "alice"
    assert record.details["files"] == ["cameras.yaml"]
    assert record.details["changes"]["cameras"]["changed"] == [{"id": "cam2", "keys": ["url"]}]
    assert record.details["changes"]["gates"] == {"added": ["password"], "removed": ["gate1"], "changed": []}
    text = (tmp_path / "audit.jsonl").read_text()
    assert "Secret" not in text
    assert verify(tmp_path / "audit.jsonl").ok


def test_an_empty_diff_is_falsy_everywhere() -> None:
    diff = ConfigDiff()
    assert diff.empty
    assert not diff.rules_changed
    assert diff.summary() == "no change"
