"""`gridwatch config check` as an integrator runs it: on a copy of the example site."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "configs" / "example"


def check(path: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CAM_", "KAFKA_"))} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "gridwatch", "config", "check", *extra, str(path)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_example_checks_without_the_site_secrets() -> None:
    result = check(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "note: ${CAM_PASSWORD} is not set here" in result.stderr


def test_require_env_makes_unset_variables_errors() -> None:
    result = check(EXAMPLE, "--require-env")
    assert result.returncode == 2
    assert "cameras.yaml:" in result.stderr
    assert "environment variable CAM_PASSWORD is not set" in result.stderr


def test_unknown_key_in_a_copy_names_file_line_and_key(tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    cameras = site / "cameras.yaml"
    lines = cameras.read_text().splitlines()
    first_id = next(i for i, line in enumerate(lines) if line.strip().startswith("- id:"))
    lines.insert(first_id + 1, "    frame_rate: 5")
    cameras.write_text("\n".join(lines) + "\n")
    result = check(site)
    assert result.returncode == 2
    assert f"cameras.yaml:{first_id + 2}: cameras[0].frame_rate: " in result.stderr, result.stderr
    assert "Extra inputs are not permitted" in result.stderr
