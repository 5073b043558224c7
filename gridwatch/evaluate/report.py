"""The evaluation report: a JSON document (no embeddings, no images, no file names next to scores)
and the console table that summarises it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridwatch.core.config.model import QualityConfig
from gridwatch.evaluate.datasets import Dataset
from gridwatch.evaluate.metrics import (
    FAR_TARGETS,
    FPIR_TARGETS,
    FloatArray,
    Searches,
    at_threshold,
    threshold_for_fpir,
    verification,
)
from gridwatch.evaluate.rates import at_threshold_rates, calibration_prediction, failure_to_acquire, group_rates
from gridwatch.evaluate.run import (
    Acquired,
    gate_settings,
    identification_searches,
    photo_counts,
    verification_scores,
)
from gridwatch.evaluate.templates import enrolment_gain
from recognition.calibration import PackCalibration
from recognition.quality import QualityGate

REPORT_FORMAT = 1


@dataclass
class Evaluation:
    """The report, plus what the DET plot needs (kept in memory, not written)."""

    report: dict[str, Any]
    searches: Searches | None
    genuine: FloatArray
    impostor: FloatArray


def evaluate(
    dataset: Dataset,
    acquired: Acquired,
    *,
    model_id: str,
    backend: str,
    threshold: float,
    margin: float,
    quality: QualityConfig,
    fpir_targets: Sequence[float] = FPIR_TARGETS,
    far_targets: Sequence[float] = FAR_TARGETS,
    calibration: PackCalibration | None = None,
    calibration_note: str | None = None,
) -> Evaluation:
    """``calibration``: the pack's, for what it predicts at ``threshold`` (``calibration_note``: why none)."""
    gate = QualityGate(quality)
    genuine, impostor, skipped = verification_scores(dataset, acquired.photos, gate)
    verified = verification(genuine, impostor, far_targets)
    ident = identification_searches(dataset, acquired.photos, acquired.distractors, gate)

    counts: dict[str, Any] = {
        "photos": len(dataset.photos),
        "identities": len(dataset.identities),
        "faces": photo_counts(dataset, acquired.photos, gate),
        "pairs_genuine": len(genuine),
        "pairs_impostor": len(impostor),
        "pairs_skipped_no_usable_face": skipped,
        # Photos with several faces whose dominant face was used (recognition.dominant).
        "dominant_face_used": sum(acquired.photos[p.path].dominant is not None for p in dataset.photos),
        "distractor_images": sum(s.images for s in acquired.distractor_sources),
        "distractor_faces": len(acquired.distractors),
    }
    scores = [genuine, impostor]
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "data": str(dataset.source),
        "data_kind": dataset.kind,
        "model": model_id,
        "backend": backend,
        "threshold": threshold,
        "margin": margin,
        "quality_gate": quality.model_dump(),
        "counts": counts,
        "roc_auc": verified["roc_auc"],
        "eer": verified["eer"],
        "tar_at_far": verified["tar_at_far"],
        "verification": verified,
        "distractors": [dataclasses.asdict(s) for s in acquired.distractor_sources],
        "at_threshold": at_threshold_rates(genuine, impostor, threshold),
        "calibration": calibration_prediction(calibration, threshold, note=calibration_note),
        "fta": failure_to_acquire(dataset, acquired.photos, gate, skipped, len(genuine) + len(impostor) + skipped),
    }
    groups = group_rates(dataset, acquired.photos, gate, threshold)
    if groups is not None:
        report["groups"] = groups
    if ident is None:
        report |= {
            "fnir_at_fpir": [],
            "identification": {"note": "identification needs identity folders; a pairs CSV gives verification only"},
        }
        searches = None
    else:
        searches = ident.searches
        counts |= ident.counts
        scores.append(searches.scores())
        report["fnir_at_fpir"] = [threshold_for_fpir(searches, t) for t in fpir_targets]
        report["identification"] = {
            "at_default_threshold": at_threshold(searches, threshold, margin),
            "searches": _searches_json(searches),
        }
        report["identification"]["enrolment_photos"] = enrolment_gain(dataset, acquired.photos, gate, threshold, margin)
        report["gate_ablation"] = _gate_ablation(dataset, acquired, quality, threshold, margin, fpir_targets)
    seen = np.concatenate(scores) if scores else np.empty(0)
    report["score_range"] = [round(float(seen.min()), 6), round(float(seen.max()), 6)] if len(seen) else None
    return Evaluation(report, searches, genuine, impostor)


def _gate_ablation(
    dataset: Dataset,
    acquired: Acquired,
    quality: QualityConfig,
    threshold: float,
    margin: float,
    fpir_targets: Sequence[float],
) -> list[dict[str, Any]]:
    rows = []
    for setting in gate_settings(quality):
        gate = QualityGate(setting.config)
        ident = identification_searches(dataset, acquired.photos, acquired.distractors, gate)
        assert ident is not None
        rows.append(
            {
                "gate": setting.name,
                "quality_gate": setting.config.model_dump(),
                "faces": photo_counts(dataset, acquired.photos, gate),
                "gallery_identities": ident.counts["gallery_identities"],
                "distractor_faces_usable": ident.counts["distractor_faces_usable"],
                "at_default_threshold": at_threshold(ident.searches, threshold, margin),
                "fnir_at_fpir": [threshold_for_fpir(ident.searches, t) for t in fpir_targets],
            }
        )
    return rows


def _searches_json(searches: Searches) -> dict[str, Any]:
    """The scores of every search, sorted, so that `calibrate` can pick any target FPIR.

    Sorting drops the order, the only link between a score and a photo."""

    def pairs(top: FloatArray, second: FloatArray) -> list[list[float | None]]:
        rows = sorted(zip(top.tolist(), second.tolist(), strict=True), key=lambda r: (math.isnan(r[0]), r))
        return [[_num(a), _num(b)] for a, b in rows]

    return {
        "mated": searches.mated,
        "nonmated": searches.nonmated,
        "mated_hit_second": pairs(searches.mated_hit, searches.mated_second),
        "nonmated_top_second": pairs(searches.nonmated_top, searches.nonmated_second),
    }


def searches_from_report(report: dict[str, Any]) -> Searches:
    """The inverse of ``_searches_json`` (used by `gridwatch calibrate`)."""
    data = report["identification"]["searches"]

    def column(rows: list[list[float | None]], i: int) -> FloatArray:
        return np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=np.float64)

    mated, nonmated = data["mated_hit_second"], data["nonmated_top_second"]
    return Searches(column(mated, 0), column(mated, 1), column(nonmated, 0), column(nonmated, 1))


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 6)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


# --- console ----------------------------------------------------------------------------------


def format_table(report: dict[str, Any]) -> str:
    c = report["counts"]
    faces = c["faces"]
    lines = [
        f"gridwatch eval: {report['data']} ({report['data_kind']})",
        f"model {report['model']} ({report['backend']}), default threshold {report['threshold']}, "
        f"margin {report['margin']}",
        "",
        f"photos {c['photos']} of {c['identities']} identities; usable faces {faces['usable']}",
        f"dominant face used in {c.get('dominant_face_used', 0)} photo(s) with several faces; "
        "failures to acquire/enrol: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in faces.items() if k != "usable"),
        "",
        "verification (pairs)",
        f"  pairs: {c['pairs_genuine']} same-person, {c['pairs_impostor']} different-person, "
        f"{c['pairs_skipped_no_usable_face']} skipped (no usable face)",
        f"  ROC AUC {_fmt(report['roc_auc'])}   EER {_fmt(report['eer'])}",
    ]
    for entry in report["tar_at_far"]:
        note = "" if entry.get("supported") else f"   (* {entry['note']})"
        lines.append(
            f"  TAR at FAR {entry['far']:g}: {_fmt(entry['tar'])} (threshold {_fmt(entry['threshold'])})"
            + ("" if entry.get("supported") else f" at FAR {entry['at_far']:.2g}*")
            + note
        )
    lines += _operating_point_lines(report)
    ident = report.get("identification", {})
    if "at_default_threshold" not in ident:
        lines += ["", f"identification: {ident.get('note', 'not available')}"]
        return "\n".join(lines)
    lines += [
        "",
        "identification (1:N)",
        f"  gallery {c['gallery_identities']} identities ({c['failed_to_enrol_identities']} failed to enrol); "
        f"mated searches {c['mated_searches']}; non-mated searches {c['nonmated_searches']} "
        f"= {c['nonmated_leave_one_out']} leave-one-out photos + {c['nonmated_unenrolled_photos']} unenrolled "
        f"photos + {c['nonmated_distractor_faces']} distractor faces ({c['distractor_faces_usable']} usable) "
        f"from {c['distractor_images']} frames/photos",
        f"  {'FPIR target':>12} {'threshold':>10} {'FNIR':>8}",
    ]
    for entry in report["fnir_at_fpir"]:
        if entry["supported"]:
            lines.append(f"  {entry['fpir']:>12g} {entry['threshold']:>10.4f} {entry['fnir']:>8.4f}")
        else:
            lines.append(f"  {entry['fpir']:>12g} {'-':>10} {'-':>8}   unsupported: {entry['note']}")
    d = ident["at_default_threshold"]
    lines.append(
        f"  at the default threshold {d['threshold']}: FPIR {_fmt(d['fpir'])} FNIR {_fmt(d['fnir'])}; "
        f"with margin {d['margin']}: FPIR {_fmt(d['fpir_with_margin'])} FNIR {_fmt(d['fnir_with_margin'])}"
    )
    gain = ident.get("enrolment_photos") or {}
    if gain.get("by_photos"):
        lines.append(
            f"  enrolment photos per person ({gain['identities']} identities, {gain['probes']} probes, "
            f"best template per person, with margin):"
        )
        for row in gain["by_photos"]:
            lines.append(
                f"    {row['photos']} photo(s): FNIR {_fmt(row['fnir_with_margin'])}  "
                f"FPIR {_fmt(row['fpir_with_margin'])}"
            )
    lines += ["", "quality gates (identification at the default threshold, with margin)"]
    lines.append(
        f"  {'gate':<16} {'usable':>6} {'small':>6} {'yaw':>5} {'blur':>5} {'distr.':>7} {'FPIR':>8} {'FNIR':>8}"
    )
    for row in report.get("gate_ablation", []):
        f, d = row["faces"], row["at_default_threshold"]
        lines.append(
            f"  {row['gate']:<16} {f['usable']:>6} {f['too_small']:>6} {f['too_much_yaw']:>5} {f['too_blurred']:>5} "
            f"{row['distractor_faces_usable']:>7} {_fmt(d['fpir_with_margin']):>8} {_fmt(d['fnir_with_margin']):>8}"
        )
    return "\n".join(lines)


def _operating_point_lines(report: dict[str, Any]) -> list[str]:
    at, cal, fta = report["at_threshold"], report["calibration"], report["fta"]
    lines = [
        f"  at threshold {at['threshold']}: FNMR {_fmt(at['fnmr'])} on {at['genuine']} genuine pairs, "
        f"FMR {_fmt(at['fmr'])} on {at['impostor']} impostor pairs",
        f"  failure to acquire: {_pct(fta['photos'])} of photos, {_pct(fta['pairs'])} of pairs",
    ]
    if cal["pack"] is None:
        lines.append(f"  calibration: {cal.get('note', 'none')}")
    else:
        lines.append(
            f"  calibration predicts FNMR {cal['fnmr_at_threshold']:.4f}, FMR {cal['fmr_at_threshold']:.3g}"
            + (" (extrapolated)" if cal.get("fmr_extrapolated") else "")
            + f" ({cal['pack']}: {cal['source']})"
        )
    groups = report.get("groups")
    if groups is not None:
        lines.append("  per group (within-group pairs):")
        for name, rates in groups["groups"].items():
            lines.append(
                f"    {name:<16} FNMR {_fmt(rates['fnmr'])} ({rates['genuine']} pairs)  "
                f"FMR {_fmt(rates['fmr'])} ({rates['impostor']} pairs)"
            )
        ratio = groups["largest_ratio"]
        lines.append(f"    largest ratio between groups: FNMR {_fmt(ratio['fnmr'])}, FMR {_fmt(ratio['fmr'])}")
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
