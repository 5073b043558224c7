"""The YAML config loader: sections from one or many files, ${ENV} placeholders, file:line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from gridwatch.core.config import GridwatchConfig
from gridwatch.core.config.cameras import FileCameraConfig, RtspCameraConfig
from gridwatch.core.config.issues import ConfigIssue, format_key_path
from gridwatch.core.config.loader import ConfigError, LoadedConfig, load_config
from gridwatch.core.config.schema import config_json_schema
from tests.support.paths import REPO_ROOT

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"
EXAMPLE = REPO_ROOT / "configs" / "example"

CAM_PASSWORD = "cam-Secret-9"
ENV = {"CAM_USER": "viewer", "CAM_PASSWORD": CAM_PASSWORD, "KAFKA_BOOTSTRAP": "127.0.0.1:9092"}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; comments and blank lines skipped."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def config_dirs() -> list[Path]:
    """The shipped config directories that hold a config (configs/demo may not exist yet)."""
    candidates = [EXAMPLE, REPO_ROOT / "configs" / "demo"]
    return [d for d in candidates if d.is_dir() and any(d.glob("*.y*ml"))]


def issue_tuples(error: ConfigError) -> list[tuple[str, int | None, str]]:
    return [(i.file.relative_to(FIXTURES).as_posix(), i.line, i.key_path) for i in error.issues]


# ---------------------------------------------------------------------------------------------------
# One fixture, one mistake: the issue's file, line and key path are asserted exactly.

CASES = [
    pytest.param("valid/site.yaml", nullcontext(), [], "", id="valid"),
    pytest.param(
        "invalid/unknown_key.yaml",
        pytest.raises(ConfigError),
        [("invalid/unknown_key.yaml", 7, "cameras[0].frame_rate")],
        "Extra inputs are not permitted",
        id="unknown-key",
    ),
    pytest.param(
        "invalid/unknown_section.yaml",
        pytest.raises(ConfigError),
        [("invalid/unknown_section.yaml", 4, "alarms")],
        "Extra inputs are not permitted",
        id="unknown-section",
    ),
    pytest.param(
        "invalid/wrong_type.yaml",
        pytest.raises(ConfigError),
        [("invalid/wrong_type.yaml", 5, "service.http.port")],
        "valid integer",
        id="wrong-type",
    ),
    pytest.param(
        "invalid/missing_url.yaml",
        pytest.raises(ConfigError),
        [("invalid/missing_url.yaml", 7, "cameras[1].url")],  # the line of the camera that lacks it
        "Field required",
        id="missing-camera-url",
    ),
    pytest.param(
        "invalid/unknown_camera_kind.yaml",
        pytest.raises(ConfigError),
        [("invalid/unknown_camera_kind.yaml", 3, "cameras[0].kind")],
        "does not match any of the expected tags",
        id="unknown-camera-kind",
    ),
    pytest.param(
        "invalid/duplicate_key.yaml",
        pytest.raises(ConfigError),
        [("invalid/duplicate_key.yaml", 8, "cameras[0].fps")],
        "duplicate key (first defined at line 6)",
        id="duplicate-key",
    ),
    pytest.param(
        "invalid/missing_env.yaml",
        pytest.raises(ConfigError),
        [("invalid/missing_env.yaml", 5, "notifier.kafka.sasl_username")],
        "environment variable KAFKA_USERNAME is not set",
        id="missing-env-var",
    ),
    pytest.param(
        "invalid/literal_url_password.yaml",
        pytest.raises(ConfigError),
        [("invalid/literal_url_password.yaml", 6, "cameras[0].url")],
        "${ENV_VAR}",
        id="literal-rtsp-password",
    ),
    pytest.param(
        "invalid/literal_sasl_password.yaml",
        pytest.raises(ConfigError),
        [("invalid/literal_sasl_password.yaml", 7, "notifier.kafka.sasl_password")],
        "${ENV_VAR}",
        id="literal-sasl-password",
    ),
    pytest.param(
        "invalid/yaml_syntax.yaml",
        pytest.raises(ConfigError),
        [("invalid/yaml_syntax.yaml", 7, "")],
        "YAML syntax error",
        id="yaml-syntax-error",
    ),
    pytest.param(
        "invalid/section_in_two_files",
        pytest.raises(ConfigError),
        [("invalid/section_in_two_files/more_cameras.yaml", 3, "cameras")],
        f"also at {FIXTURES / 'invalid/section_in_two_files/cameras.yaml'}:1",
        id="section-in-two-files",
    ),
    pytest.param(
        "invalid/unknown_registry.yaml",
        pytest.raises(ConfigError),
        [("invalid/unknown_registry.yaml", 12, "rules[0].registries[1]")],
        "unknown registry 'lost_pets' (known: missing_persons)",
        id="rule-references-unknown-registry",
    ),
    pytest.param(
        "invalid/top_level_list.yaml",
        pytest.raises(ConfigError),
        [("invalid/top_level_list.yaml", 1, "")],
        "the top level must be a mapping of sections (service:, model:",
        id="top-level-not-a-mapping",
    ),
]


@pytest.mark.parametrize(("fixture", "expectation", "expected", "reason"), CASES)
def test_fixture_issues(
    fixture: str,
    expectation: AbstractContextManager[Any],
    expected: list[tuple[str, int | None, str]],
    reason: str,
) -> None:
    with expectation as caught:
        load_config(FIXTURES / fixture, ENV)
    if not expected:
        return
    error = caught.value
    assert issue_tuples(error) == expected
    assert all(reason in issue.reason for issue in error.issues), str(error)
    # The message names file:line and the key path, and quotes no secret of the fixture or the env.
    first = error.issues[0]
    assert str(first).startswith(f"{first.file}:{first.line}: ")
    assert "Hunter2" not in str(error)
    assert CAM_PASSWORD not in str(error)


# ---------------------------------------------------------------------------------------------------
# What a valid config turns into.


def test_valid_site_values() -> None:
    loaded = load_config(FIXTURES / "valid" / "site.yaml", ENV)
    config = loaded.config
    assert config.service.http.port == 8081  # ${HTTP_PORT:-8081}, then validated into an int
    gate, clip = config.cameras
    assert isinstance(gate, RtspCameraConfig)
    assert gate.url == f"rtsp://viewer:{CAM_PASSWORD}@127.0.0.1:8554/gate-a"
    assert gate.name == "Gate A costs ${PRICE}"  # $${ escape
    assert (gate.kind, gate.fps) == ("rtsp", 4.0)  # from the merge key
    assert isinstance(clip, FileCameraConfig)
    assert clip.path == Path("clips/loop.mp4")  # relative paths stay as written in the model ...
    assert loaded.resolve(clip.path) == FIXTURES / "valid" / "clips" / "loop.mp4"  # ... and resolve here
    assert config.notifier.kafka.sasl_password == ""  # ${KAFKA_PASSWORD:-}
    assert loaded.root == FIXTURES / "valid"
    assert loaded.files == (FIXTURES / "valid" / "site.yaml",)
    assert loaded.data_dir == FIXTURES / "valid" / "var" / "state"
    assert CAM_PASSWORD not in repr(loaded)


def test_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HTTP_PORT", "9191")
    assert load_config(FIXTURES / "valid" / "site.yaml").config.service.http.port == 9191


@pytest.mark.parametrize(
    ("data_dir", "expected"),
    [
        ("var/state", "ROOT/var/state"),
        ("/srv/gridwatch", "/srv/gridwatch"),
        ("../shared/state", "ROOT/../shared/state"),
    ],
)
def test_data_dir_resolves_against_config_dir(tmp_path: Path, data_dir: str, expected: str) -> None:
    (tmp_path / "service.yaml").write_text(f"service:\n  data_dir: {data_dir}\n")
    loaded = load_config(tmp_path, {})
    assert loaded.config.service.data_dir == Path(data_dir)
    assert loaded.data_dir == Path(expected.replace("ROOT", str(tmp_path)))
    assert loaded.data_dir.is_absolute()


def test_directory_reads_yaml_and_yml_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b_model.yml").write_text("model:\n  threads: 3\n")
    (tmp_path / "a_service.yaml").write_text("service:\n  name: site-a\n")
    (tmp_path / "c_empty.yaml").write_text("# only a comment\n")
    (tmp_path / ".editor-swap.yaml").write_text("not: [valid\n")  # dot-files are not config
    (tmp_path / "notes.txt").write_text("service: ignored\n")
    loaded = load_config(tmp_path, {})
    assert [f.name for f in loaded.files] == ["a_service.yaml", "b_model.yml", "c_empty.yaml"]
    assert (loaded.config.service.name, loaded.config.model.threads) == ("site-a", 3)


def test_every_issue_is_listed_in_reading_order(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "service:\n"
        "  http:\n"
        "    port: -1\n"  # line 3: out of range
        "model:\n"
        "  threads: many\n"  # line 5: wrong type
    )
    (tmp_path / "b.yaml").write_text(
        "cameras:\n"
        "  - id: gate-a\n"
        "    kind: rtsp\n"
        "    location_class: lobby\n"
        "    signage_verified_at: 2026-01-15\n"
        "    url: rtsp://u:${NOT_SET}@10.0.0.1/x\n"  # line 6: missing variable
        "    fps: 0\n"  # line 7: out of range
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[:2] for line in lines] == [
        [f"{tmp_path / 'a.yaml'}:3", "service.http.port"],
        [f"{tmp_path / 'a.yaml'}:5", "model.threads"],
        [f"{tmp_path / 'b.yaml'}:6", "cameras[0].url"],
        [f"{tmp_path / 'b.yaml'}:7", "cameras[0].fps"],
    ]


def test_value_from_missing_variable_reports_only_the_variable(tmp_path: Path) -> None:
    # Validation of the url (empty after the failed substitution) would only repeat the same problem.
    (tmp_path / "cameras.yaml").write_text(
        "cameras:\n  - id: gate-a\n    kind: rtsp\n    url: ${CAM_URL}\n"
        "    location_class: lobby\n    signage_verified_at: 2026-01-15\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert [(i.line, i.key_path, i.reason) for i in caught.value.issues] == [
        (4, "cameras[0].url", "environment variable CAM_URL is not set")
    ]


CAMERA_URL = "cameras:\n  - {id: a, kind: rtsp, location_class: lobby, signage_verified_at: 2026-01-15, url: '%s'}\n"
SASL_PASSWORD = "notifier:\n  kafka:\n    sasl_password: %s\n"


@pytest.mark.parametrize(
    ("yaml_text", "expectation", "key_path"),
    [
        (CAMERA_URL % "rtsp://${U}:${P}@h/x", nullcontext(), None),
        (CAMERA_URL % "rtsp://admin@h/x", nullcontext(), None),  # a user name alone is no secret
        (CAMERA_URL % "${CAM_URL}", nullcontext(), None),  # the whole URL from the environment
        (CAMERA_URL % "rtsp://u:${P:-Hunter2}@h/x", pytest.raises(ConfigError), "cameras[0].url"),
        (CAMERA_URL % "rtsps://u:Hunter2@h/x", pytest.raises(ConfigError), "cameras[0].url"),
        (SASL_PASSWORD % "${P}", nullcontext(), None),
        (SASL_PASSWORD % "", nullcontext(), None),
        (SASL_PASSWORD % "${P:-Hunter2}", pytest.raises(ConfigError), "notifier.kafka.sasl_password"),
        (SASL_PASSWORD % "Hunter2${P}", pytest.raises(ConfigError), "notifier.kafka.sasl_password"),
        (SASL_PASSWORD % "12345678", pytest.raises(ConfigError), "notifier.kafka.sasl_password"),
        ("x-secrets:\n  password: Hunter2\nservice: {}\n", nullcontext(), None),  # x-* keys are ignored
        ("service:\n  password: Hunter2\n", pytest.raises(ConfigError), "service.password"),
    ],
)
def test_secrets_come_only_from_the_environment(
    tmp_path: Path, yaml_text: str, expectation: AbstractContextManager[Any], key_path: str | None
) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(yaml_text)
    env = {"U": "viewer", "P": "Pw-from-env", "CAM_URL": "rtsp://viewer:Pw-from-env@h/x"}
    with expectation as caught:
        load_config(config, env)
    if key_path is not None:
        error: ConfigError = caught.value
        assert key_path in [i.key_path for i in error.issues]
        assert any("${ENV_VAR}" in i.reason for i in error.issues)
        assert "Hunter2" not in str(error)
        assert "12345678" not in str(error)


@pytest.mark.parametrize(
    ("field_yaml", "env_value"),
    [
        (
            "cameras:\n  - {id: a, kind: rtsp, location_class: lobby, signage_verified_at: 2026-01-15, url: 'rtsp://u:${P}@h/x'}\n",
            "Pw-" + "x" * 3000,
        ),  # too long
        ("notifier:\n  kafka:\n    sasl_password: ${P}\n", "Pw-" + "y" * 300),  # too long
    ],
)
def test_invalid_secret_value_is_not_echoed(tmp_path: Path, field_yaml: str, env_value: str) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(field_yaml)
    with pytest.raises(ConfigError) as caught:
        load_config(config, {"P": env_value})
    assert "at most" in str(caught.value)
    assert "Pw-" not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "nothing-here", "no such file or directory"),
        (lambda tmp: tmp, "no *.yaml or *.yml files in this directory"),
    ],
)
def test_missing_config(tmp_path: Path, make: Any, reason: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.issues == [ConfigIssue(path, None, "", reason)]
    assert str(caught.value) == f"{path}: {reason}"


def test_syntax_error_does_not_quote_the_line(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("notifier:\n  kafka:\n    sasl_password: ${P}\n    sasl_username: [Hunter2\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, {"P": "x"})
    (issue,) = caught.value.issues
    assert (issue.file, issue.key_path) == (config, "")
    assert issue.line is not None
    assert "Hunter2" not in str(caught.value)


def test_unsupported_tag(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("service:\n  name: !!python/name:os.system\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, {})
    assert [(i.line, i.key_path) for i in caught.value.issues] == [(2, "")]


def test_duplicate_ids_point_at_the_second(tmp_path: Path) -> None:
    (tmp_path / "cameras.yaml").write_text(
        "cameras:\n"
        "  - {id: gate-a, kind: file, location_class: lobby, signage_verified_at: 2026-01-15, path: a.mp4}\n"
        "  - {id: gate-b, kind: file, location_class: lobby, signage_verified_at: 2026-01-15, path: b.mp4}\n"
        "  - id: gate-a\n"  # line 4
        "    kind: file\n"
        "    path: c.mp4\n"
        "    location_class: lobby\n"
        "    signage_verified_at: 2026-01-15\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    assert [(i.line, i.key_path, i.reason) for i in caught.value.issues] == [
        (4, "cameras[2].id", "duplicate id 'gate-a' (first at cameras[0])")
    ]


def test_loaded_config_issue_points_at_a_value() -> None:
    loaded = load_config(FIXTURES / "valid" / "site.yaml", ENV)
    issue = loaded.issue(("cameras", 1, "path"), "file not found")
    assert str(issue) == f"{FIXTURES / 'valid' / 'site.yaml'}:28: cameras[1].path: file not found"


@pytest.mark.parametrize(
    ("key_path", "text"),
    [
        ((), ""),
        (("cameras",), "cameras"),
        (("cameras", 0, "url"), "cameras[0].url"),
        (("rules", 2, "registries", 1), "rules[2].registries[1]"),
        (("x", "a b", 3), "x['a b'][3]"),
    ],
)
def test_format_key_path(key_path: tuple[str | int, ...], text: str) -> None:
    assert format_key_path(key_path) == text


def test_issue_format() -> None:
    assert str(ConfigIssue(Path("c/a.yaml"), 7, "cameras[0].url", "Field required")) == (
        "c/a.yaml:7: cameras[0].url: Field required"
    )
    assert str(ConfigIssue(Path("c/a.yaml"), 3, "", "YAML syntax error")) == "c/a.yaml:3: YAML syntax error"
    assert str(ConfigIssue(Path("c"), None, "", "no such file or directory")) == "c: no such file or directory"


# ---------------------------------------------------------------------------------------------------
# The shipped configs.


@pytest.mark.parametrize("config_dir", config_dirs(), ids=lambda p: p.name)
def test_shipped_config_loads(config_dir: Path) -> None:
    env_file = config_dir / ".env.example"
    env = read_env_file(env_file) if env_file.exists() else {}
    loaded = load_config(config_dir, env)
    assert isinstance(loaded, LoadedConfig)
    assert loaded.root == config_dir
    assert loaded.data_dir.is_absolute()


def test_example_site() -> None:
    env = read_env_file(EXAMPLE / ".env.example")
    loaded = load_config(EXAMPLE, env)
    config = loaded.config
    assert [f.name for f in loaded.files] == [
        "cameras.yaml", "channels.yaml", "duty.yaml", "gates.yaml", "grids.yaml", "model.yaml", "notifier.yaml",
        "registries.yaml", "routes.yaml", "rules.yaml", "schedules.yaml", "service.yaml", "staff.yaml", "zones.yaml",
    ]  # fmt: skip
    assert len(config.cameras) == 4
    for camera in config.cameras:
        assert isinstance(camera, RtspCameraConfig)
        assert camera.url.startswith(f"rtsp://{env['CAM_USER']}:{env['CAM_PASSWORD']}@10.20.1.")
        assert camera.grid
    assert {r.name for r in config.registries} == {"missing_persons", "court_orders", "living_alone", "residents"}
    for registry in config.registries:
        assert registry.purpose
        assert registry.legal_basis
    assert {r.kind for r in config.rules} == {
        "seen",
        "not_seen",
        "outside_area",
        "outside_hours",
        "frequency",
        "stranger_at_gate",
    }
    assert config.zone_ids() == {"estate-north", "estate-south", "entrances"}
    assert config.schedule_ids() == {"night", "office-hours"}
    # The responsible staff: a ladder grid → community → street office, every place in a grid.
    assert {g.id: g.parent for g in config.grids}["grid-north"] == "lakeside"
    assert {z.grid for z in config.zones} <= config.grid_ids()
    assert {d.grid for d in config.duty} == config.grid_ids()
    assert config.routes
    assert config.notifier.acks.signing_secret == env["GRIDWATCH_ACK_SECRET"]
    kafka = config.notifier.kafka
    assert kafka.enabled
    assert kafka.enable_idempotence
    assert kafka.bootstrap_servers == env["KAFKA_BOOTSTRAP"]
    assert loaded.data_dir == Path("/var/lib/gridwatch")
    for file in loaded.files:
        assert file.read_text().startswith("# "), f"{file.name} lacks its commented header"


def test_example_env_file_lists_every_required_variable() -> None:
    lines = (line.split("#", 1)[0] for f in EXAMPLE.glob("*.yaml") for line in f.read_text().splitlines())
    text = "\n".join(lines)  # without comments: the headers mention ${ENV} as an example
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    env = read_env_file(EXAMPLE / ".env.example")
    assert required == set(env)
    for name in sorted(required):
        with pytest.raises(ConfigError, match=f"environment variable {name} is not set"):
            load_config(EXAMPLE, {k: v for k, v in env.items() if k != name})


# ---------------------------------------------------------------------------------------------------
# JSON Schema for editors.


def test_json_schema() -> None:
    schema = config_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == set(GridwatchConfig.model_fields)
    assert schema["additionalProperties"] is False
    json.dumps(schema)  # serialisable as is
    # House rule: every field is described (editors show the description while completing).
    models = [("GridwatchConfig", schema), *schema["$defs"].items()]
    undescribed = [
        f"{name}.{field}"
        for name, model in models
        for field, prop in model.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []


# ---------------------------------------------------------------------------------------------------
# The CLI: `gridwatch config check PATH` exits 0 or prints the issues on stderr.


def run_config_check(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridwatch", "config", "check", str(path)],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_config_check_valid() -> None:
    result = run_config_check(EXAMPLE, read_env_file(EXAMPLE / ".env.example"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("fixture", "line", "key_path"),
    [
        ("invalid/unknown_key.yaml", 7, "cameras[0].frame_rate"),
        ("invalid/literal_url_password.yaml", 6, "cameras[0].url"),
    ],
)
def test_cli_config_check_invalid(fixture: str, line: int, key_path: str) -> None:
    result = run_config_check(FIXTURES / fixture, ENV)
    assert result.returncode != 0
    assert f"{FIXTURES / fixture}:{line}: {key_path}: " in result.stderr
    assert "Hunter2" not in result.stderr + result.stdout


def test_secrets_substituted_into_secret_places_are_collected_for_the_redaction(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        "service:\n  name: ${SITE_NAME}\n"
        "cameras:\n"
        "  - {id: a, kind: rtsp, location_class: lobby, signage_verified_at: 2026-01-15,\n"
        "     url: 'rtsp://viewer:${CAM_PASSWORD}@10.0.0.7/live'}\n"
        "  - {id: b, kind: rtsp, location_class: lobby, signage_verified_at: 2026-01-15, url: '${CAM_URL}'}\n"
        "notifier:\n  kafka:\n    sasl_password: ${KAFKA_PASSWORD}\n"
    )
    env = {
        "SITE_NAME": "lakeside",
        "CAM_PASSWORD": "Gw%40ta%255",
        "CAM_URL": "rtsp://admin:p@ss:w0rd@10.0.0.8/live",  # raw "@": the password runs to the last one
        "KAFKA_PASSWORD": "kafka-Secret-1",
    }
    secrets = load_config(tmp_path, env).secrets
    assert set(secrets) == {("viewer", "Gw%40ta%255"), ("admin", "p@ss:w0rd"), "kafka-Secret-1"}
