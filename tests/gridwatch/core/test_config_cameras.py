"""Camera declarations: a camera without signage, or looking into a private space, does not start."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from gridwatch.core.config.cameras import LOCATION_CLASSES, REFUSED_LOCATION_CLASSES
from gridwatch.core.config.loader import ConfigError, load_config
from tests.support.paths import REPO_ROOT


def camera_yaml(*declaration_lines: str) -> str:
    return "\n".join(
        [
            "cameras:",
            "  - id: gate-a",  # line 2
            "    kind: file",
            "    path: a.mp4",
            *(f"    {line}" for line in declaration_lines),  # from line 5
        ]
    )


def issues_of(tmp_path: Path, text: str) -> list[tuple[int | None, str, str]]:
    (tmp_path / "cameras.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {})
    return [(i.line, i.key_path, i.reason) for i in caught.value.issues]


def test_a_declared_camera_loads(tmp_path: Path) -> None:
    (tmp_path / "cameras.yaml").write_text(camera_yaml("location_class: lobby", "signage_verified_at: 2026-01-15"))
    camera = load_config(tmp_path, {}).config.cameras[0]
    assert (camera.location_class, camera.signage_verified_at) == ("lobby", dt.date(2026, 1, 15))


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["location_class: lobby"], [(2, "cameras[0].signage_verified_at", "Field required")]),
        (["signage_verified_at: 2026-01-15"], [(2, "cameras[0].location_class", "Field required")]),
        (
            ["location_class: lobby", "signage_verified_at: 2999-01-01"],
            [(6, "cameras[0].signage_verified_at", "in the future: give the date the signage was actually checked")],
        ),
        (
            ["location_class: lobby", "signage_verified_at: last week"],
            [(6, "cameras[0].signage_verified_at", "Input should be a valid date or datetime, input is too short")],
        ),
    ],
    ids=["no-signage", "no-location-class", "signage-in-the-future", "signage-not-a-date"],
)
def test_missing_or_wrong_declarations_are_errors_at_file_and_line(
    tmp_path: Path, lines: list[str], expected: list[tuple[int, str, str]]
) -> None:
    assert issues_of(tmp_path, camera_yaml(*lines)) == expected


@pytest.mark.parametrize("private_space", REFUSED_LOCATION_CLASSES)
def test_private_spaces_are_refused_with_the_reason(tmp_path: Path, private_space: str) -> None:
    issues = issues_of(tmp_path, camera_yaml(f"location_class: {private_space}", "signage_verified_at: 2026-01-15"))
    assert len(issues) == 1
    line, key_path, reason = issues[0]
    assert (line, key_path) == (5, "cameras[0].location_class")
    assert reason.startswith("a private space: face recognition is not allowed in toilets, changing rooms")


def test_an_unknown_location_class_lists_the_allowed_ones(tmp_path: Path) -> None:
    [(line, key_path, reason)] = issues_of(
        tmp_path, camera_yaml("location_class: rooftop", "signage_verified_at: 2026-01-15")
    )
    assert (line, key_path) == (5, "cameras[0].location_class")
    assert all(f"'{name}'" in reason for name in LOCATION_CLASSES)


def test_private_space_classes_are_not_among_the_allowed_ones() -> None:
    assert not set(REFUSED_LOCATION_CLASSES) & set(LOCATION_CLASSES)


def gridwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridwatch", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("lines", "line", "key_path"),
    [
        (["location_class: lobby"], 2, "cameras[0].signage_verified_at"),
        (["location_class: toilet", "signage_verified_at: 2026-01-15"], 5, "cameras[0].location_class"),
    ],
    ids=["no-signage", "toilet"],
)
def test_config_check_and_run_refuse_the_camera(tmp_path: Path, lines: list[str], line: int, key_path: str) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n" + camera_yaml(*lines))
    line += 2  # the service section above
    checked = gridwatch("config", "check", str(config))
    assert checked.returncode == 2
    assert f"{config}:{line}: {key_path}: " in checked.stderr
    ran = gridwatch("run", "-c", str(config), "--for", "5")
    assert ran.returncode == 2
    assert f"{config}:{line}: {key_path}: " in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not (tmp_path / "data").exists()  # refused before anything opened
