"""Pack calibrations with the real models on the shared photos: they hold on identities they were not
built from, the shipped files are what `gridwatch calibrate pack` rebuilds, and the command works.

Hold-out protocol (5-fold over identities): the identities of faces + faces-dev, sorted, are dealt
into 5 folds; each fold is checked against a calibration built from the other four, at the pack's
default threshold; the folds' predictions and measurements are pooled (weighted by their genuine
and impostor comparisons). Stated tolerance: pooled measured FNMR within 0.05 of the pooled
prediction; pooled measured FMR not above the pooled prediction. A single fold of 6 identities is
not held to it: which people it holds moves its FNMR by up to ±0.15 (see the README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gridwatch.cli import main
from gridwatch.core.config.model import ModelConfig
from gridwatch.evaluate.packcal import LabelledEmbeddings, comparison_scores, embed_identity_sets, subset
from recognition.backends import build_analyzer, default_threshold
from recognition.calibration import (
    CalibrationFileError,
    build_calibration,
    calibration_for,
    parse_calibration,
    shipped_calibration_path,
)
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
FACES_DEV = TESTDATA / "faces-dev"
FOLDS = 5
FNMR_TOLERANCE = 0.05
BACKENDS = ["insightface", "opencv_zoo"]


@dataclass
class Embedded:
    backend: str
    data: LabelledEmbeddings
    recognizer_sha256: str


@pytest.fixture(scope="module", params=BACKENDS)
def embedded(request: pytest.FixtureRequest) -> Embedded:
    """Every usable face of faces + faces-dev, embedded once per pack for the whole module."""
    model = ModelConfig(backend=request.param)
    analyzer = build_analyzer(model)
    analyzer.load()
    data = embed_identity_sets(analyzer, [FACES, FACES_DEV], model.quality, exclude=["group"])
    pack = analyzer.pack
    return Embedded(request.param, data, pack.sha256[pack.recognizer.name])


def calibrate(embedded: Embedded, identities: set[str], resamples: int = 500) -> dict[str, object]:
    compared = comparison_scores(*subset(embedded.data, identities))
    return build_calibration(
        compared.genuine,
        compared.impostor,
        compared.impostor_identities,
        backend=embedded.backend,
        pack="held-out",
        recognizer="r",
        recognizer_sha256=embedded.recognizer_sha256,
        source=[],
        counts={},
        quality_gate={},
        resamples=resamples,
    )


def test_predictions_hold_on_held_out_identities(embedded: Embedded) -> None:
    threshold = default_threshold(ModelConfig(backend=embedded.backend))
    identities = sorted(set(embedded.data.identities))
    predicted_misses = predicted_false = 0.0
    misses = false_matches = genuine = impostor = 0
    for fold in range(FOLDS):
        held_out = {who for i, who in enumerate(identities) if i % FOLDS == fold}
        calibration = parse_calibration(calibrate(embedded, set(identities) - held_out))  # type: ignore[arg-type]
        check = comparison_scores(*subset(embedded.data, held_out))
        predicted_misses += calibration.fnmr(threshold) * len(check.genuine)
        predicted_false += calibration.fmr(threshold) * len(check.impostor)
        misses += int((check.genuine < threshold).sum())
        false_matches += int((check.impostor >= threshold).sum())
        genuine += len(check.genuine)
        impostor += len(check.impostor)
    fnmr, fmr = misses / genuine, false_matches / impostor
    print(
        f"{embedded.backend} at {threshold}: FNMR predicted {predicted_misses / genuine:.4f} measured {fnmr:.4f} "
        f"({genuine} genuine); FMR predicted {predicted_false / impostor:.3g} measured {fmr:.3g} ({impostor} impostor)"
    )
    assert abs(fnmr - predicted_misses / genuine) <= FNMR_TOLERANCE
    assert fmr <= predicted_false / impostor


def test_the_shipped_calibration_is_what_calibrate_pack_rebuilds(embedded: Embedded) -> None:
    shipped = calibration_for(embedded.backend, embedded.recognizer_sha256)  # made with this recogniser
    rebuilt = calibrate(embedded, set(embedded.data.identities))
    assert rebuilt["counts"] == {
        k: v for k, v in shipped.counts.items() if k in ("genuine_comparisons", "impostor_comparisons")
    }
    assert shipped.counts["usable_photos"] == len(embedded.data.identities)
    assert rebuilt["grid"] == shipped.raw["grid"]
    assert rebuilt["fmr"] == shipped.raw["fmr"]


def test_calibrate_pack_writes_a_calibration_with_its_data_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site-calibration.json"
    assert main(["calibrate", "pack", str(FACES), "--exclude", "group", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["backend"] == "insightface"
    assert document["source"][0]["name"] == "faces"
    assert document["counts"]["identities"] == 6
    assert document["counts"]["impostor_comparisons"] > 0
    assert document["fmr"]["tail"]["extrapolation"] is True
    assert "written to" in capsys.readouterr().out
    # A site points model.calibration at it; a calibration of another recogniser is refused.
    other = document | {"recognizer_sha256": "f" * 64}
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(CalibrationFileError, match="rebuild it with `gridwatch calibrate pack`"):
        calibration_for("insightface", document["recognizer_sha256"], path=tmp_path / "other.json")
    assert calibration_for("insightface", document["recognizer_sha256"], path=out).counts["identities"] == 6
    assert np.isfinite(parse_calibration(document).fmr(0.45))


def test_calibrate_without_a_form_still_needs_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "-c", str(shipped_calibration_path("insightface").parent)]) == 1
    assert "calibrate needs --registry, --target-fpir, --report" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["calibrate", "-c", "site", "pack", "data", "--out", "o.json"], id="before"),
        pytest.param(["calibrate", "pack", "data", "--out", "o.json", "-c", "site"], id="after"),
    ],
)
def test_the_config_of_calibrate_pack_may_come_before_or_after_the_form(argv: list[str]) -> None:
    from gridwatch.cli import _parser

    assert _parser().parse_args(argv).config == Path("site")
