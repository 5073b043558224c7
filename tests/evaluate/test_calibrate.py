"""`gridwatch calibrate`: threshold from a report, written beside the registry with its evidence."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gridwatch.cli import main
from gridwatch.core.config.loader import load_config
from gridwatch.core.config.model import ModelConfig
from gridwatch.evaluate.metrics import Searches, fpir, threshold_for_fpir
from gridwatch.evaluate.report import _searches_json
from recognition.modelpack import resolve_model_pack

REGISTRIES_YAML = """\
# Watchlists of the test site.
registries:
  - name: missing_persons
    purpose: Find residents reported missing.   # why
    legal_basis: Vital interests of the person.
    retention_days: 30
    threshold: 0.45             # guessed: calibrate me
    sources: ["*"]

  # The second registry must not change.
  - name: court_orders
    purpose: Court-ordered restriction at the gates.
    legal_basis: Court order.
    retention_days: 180
    threshold: 0.55
"""


def synthetic_report(nonmated: int, model: str) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    searches = Searches(
        mated_hit=rng.uniform(0.4, 0.9, 40),
        mated_second=rng.uniform(0.0, 0.3, 40),
        nonmated_top=rng.uniform(0.0, 0.5, nonmated),
        nonmated_second=rng.uniform(-0.1, 0.0, nonmated),
    )
    scores = searches.scores()
    return {
        "format": 1,
        "data": "/data/site-photos",
        "model": model,
        "counts": {"photos": 100},
        "identification": {"searches": _searches_json(searches)},
        "score_range": [float(scores.min()), float(scores.max())],
    }


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "registries.yaml").write_text(REGISTRIES_YAML)
    (folder / "service.yaml").write_text("service:\n  data_dir: ../var\n")
    return folder


@pytest.fixture
def model_id() -> str:
    return resolve_model_pack(ModelConfig()).model_id


def write(report: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(report))
    return path


def test_calibrate_writes_a_threshold_inside_the_seen_range_and_keeps_comments(
    config_dir: Path, tmp_path: Path, model_id: str
) -> None:
    report = synthetic_report(500, model_id)
    path = write(report, tmp_path / "report.json")
    assert (
        main(
            [
                "calibrate",
                "-c",
                str(config_dir),
                "--registry",
                "missing_persons",
                "--target-fpir",
                "0.01",
                "--report",
                str(path),
            ]
        )
        == 0
    )

    text = (config_dir / "registries.yaml").read_text()
    for comment in ("# Watchlists of the test site.", "# why", "# The second registry must not change."):
        assert comment in text
    # Layout kept: every other line is unchanged; the new lines sit beside the threshold.
    new_lines = text.splitlines()
    for line in REGISTRIES_YAML.splitlines():
        if "guessed: calibrate me" not in line:
            assert line in new_lines, line
    assert new_lines[new_lines.index("    calibration:") - 1].startswith("    threshold: ")
    registries = {r.name: r for r in load_config(config_dir).config.registries}
    calibrated = registries["missing_persons"]
    low, high = report["score_range"]
    assert low <= calibrated.threshold <= high
    assert calibrated.threshold != 0.45
    assert registries["court_orders"].threshold == 0.55
    assert calibrated.calibration is not None
    assert calibrated.calibration.nonmated == 500
    assert calibrated.calibration.target_fpir == 0.01
    assert calibrated.calibration.data == "/data/site-photos"
    assert calibrated.calibration.model == model_id
    # The threshold does what it says on the report's own searches.
    searches = Searches(*(np.array([np.nan if v is None else v for v in col]) for col in _columns(report)))
    assert fpir(searches, calibrated.threshold) <= 0.01
    assert fpir(searches, calibrated.threshold - 1e-4) > 0.01 or calibrated.threshold == round(low, 4)


def _columns(report: dict[str, Any]) -> list[list[float | None]]:
    data = report["identification"]["searches"]
    mated, nonmated = data["mated_hit_second"], data["nonmated_top_second"]
    return [[r[0] for r in mated], [r[1] for r in mated], [r[0] for r in nonmated], [r[1] for r in nonmated]]


@pytest.mark.parametrize(
    ("nonmated", "target", "model", "message"),
    [
        pytest.param(200, 0.001, None, "200 non-mated searches measure FPIR only down to", id="too-few-nonmated"),
        pytest.param(500, 0.01, "other-pack@123456789abc", "not comparable", id="other-model"),
    ],
)
def test_calibrate_refuses_what_the_report_cannot_support(
    config_dir: Path,
    tmp_path: Path,
    model_id: str,
    capsys: pytest.CaptureFixture[str],
    nonmated: int,
    target: float,
    model: str | None,
    message: str,
) -> None:
    before = (config_dir / "registries.yaml").read_text()
    path = write(synthetic_report(nonmated, model or model_id), tmp_path / "report.json")
    assert (
        main(
            [
                "calibrate",
                "-c",
                str(config_dir),
                "--registry",
                "missing_persons",
                "--target-fpir",
                str(target),
                "--report",
                str(path),
            ]
        )
        == 1
    )
    assert message in capsys.readouterr().err
    assert (config_dir / "registries.yaml").read_text() == before


def test_calibrate_from_a_real_eval_report(config_dir: Path, tmp_path: Path) -> None:
    """eval → calibrate on the shared photos and clip; the threshold lies within the scores seen."""
    from tests.support.paths import CLIP, TESTDATA

    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                str(TESTDATA / "faces"),
                "--exclude",
                "group",
                "--out",
                str(out),
                "--distractors-video",
                str(CLIP),
                "--distractors-frames",
                "82:211",
                "--distractors-every",
                "3",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    n = report["counts"]["nonmated_searches"]
    target = 0.05
    assert n * target >= 1
    assert (
        main(
            [
                "calibrate",
                "-c",
                str(config_dir),
                "--registry",
                "missing_persons",
                "--target-fpir",
                str(target),
                "--report",
                str(out / "report.json"),
            ]
        )
        == 0
    )
    calibrated = next(r for r in load_config(config_dir).config.registries if r.name == "missing_persons")
    low, high = report["score_range"]
    assert low <= calibrated.threshold <= high
    assert calibrated.calibration is not None
    assert calibrated.calibration.nonmated == n


def test_threshold_for_fpir_counts_false_positives_exactly() -> None:
    tops = np.array([0.9, 0.8, 0.7] + [0.1] * 97)
    searches = Searches(np.array([0.95]), np.array([np.nan]), tops, np.full(100, np.nan))
    entry = threshold_for_fpir(searches, 0.02)  # 2 false positives allowed out of 100
    assert entry["supported"]
    assert entry["threshold"] == 0.7001
    assert math.isclose(entry["fpir_observed"], 0.02)
    assert threshold_for_fpir(searches, 0.001)["supported"] is False
