"""The DET plot: error trade-off curves on log axes, identification (FNIR vs FPIR) and verification
(FNMR vs FMR). Rates of zero cannot sit on a log axis: they are drawn on the axis floor (1/(2N),
below the finest measurable rate), which is shaded and labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gridwatch.evaluate.metrics import FloatArray, Searches, identification_det, verification_det


def plot_det(
    path: Path, report: dict[str, Any], searches: Searches | None, genuine: FloatArray, impostor: FloatArray
) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4), constrained_layout=True)
    try:
        fig.suptitle(f"gridwatch eval — {report['model']} — {Path(report['data']).name}", fontsize=12)
        _identification(axes[0], report, searches)
        _verification(axes[1], report, genuine, impostor)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)


def _identification(ax: Any, report: dict[str, Any], searches: Searches | None) -> None:
    ax.set_title("Identification (1:N)")
    if searches is None or searches.mated == 0 or searches.nonmated == 0:
        ax.text(0.5, 0.5, "needs identity folders with mated\nand non-mated searches", ha="center", va="center")
        ax.set_axis_off()
        return
    thresholds, fpirs, fnirs = identification_det(searches)
    x_floor, y_floor = 0.5 / searches.nonmated, 0.5 / searches.mated
    _axes(
        ax, x_floor, y_floor, "FPIR (false-positive identification rate)", "FNIR (false-negative identification rate)"
    )
    ax.step(
        np.maximum(fpirs, x_floor),
        np.maximum(fnirs, y_floor),
        where="post",
        color="tab:blue",
        lw=2,
        label=f"{searches.mated} mated / {searches.nonmated} non-mated searches",
    )
    default = report["identification"]["at_default_threshold"]
    _mark(
        ax, default["fpir"], default["fnir"], x_floor, y_floor, f"default threshold {default['threshold']}", "tab:red"
    )
    for entry in report["fnir_at_fpir"]:
        if entry["supported"]:
            ax.axvline(entry["fpir"], color="grey", lw=0.8, ls=":")
            _mark(
                ax,
                entry["fpir_observed"],
                entry["fnir"],
                x_floor,
                y_floor,
                f"FPIR ≤ {entry['fpir']:g}: threshold {entry['threshold']}",
                "tab:green",
            )
    ax.legend(loc="upper right", fontsize=8)
    del thresholds


def _verification(ax: Any, report: dict[str, Any], genuine: FloatArray, impostor: FloatArray) -> None:
    ax.set_title("Verification (1:1 pairs)")
    if len(genuine) == 0 or len(impostor) == 0:
        ax.text(0.5, 0.5, "needs same-person and\ndifferent-person pairs", ha="center", va="center")
        ax.set_axis_off()
        return
    fmr, fnmr = verification_det(genuine, impostor)
    x_floor, y_floor = 0.5 / len(impostor), 0.5 / len(genuine)
    _axes(ax, x_floor, y_floor, "FMR (false match rate)", "FNMR (false non-match rate)")
    label = f"{len(genuine)} same / {len(impostor)} different pairs; EER {report['eer']}, AUC {report['roc_auc']}"
    ax.step(np.maximum(fmr, x_floor), np.maximum(fnmr, y_floor), where="post", color="tab:purple", lw=2, label=label)
    ax.legend(loc="upper right", fontsize=8)


def _axes(ax: Any, x_floor: float, y_floor: float, xlabel: str, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_floor * 0.7, 1.05)
    ax.set_ylim(y_floor * 0.7, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    # Zero rates are drawn on the floor: shade the band and say so.
    ax.axvspan(x_floor * 0.7, x_floor * 1.2, color="0.9", zorder=0)
    ax.axhspan(y_floor * 0.7, y_floor * 1.2, color="0.9", zorder=0)
    ax.text(x_floor * 1.3, y_floor * 0.8, "shaded: rate 0 (below 1/N)", fontsize=7, color="0.4", va="center")


def _mark(ax: Any, x: float | None, y: float | None, x_floor: float, y_floor: float, label: str, color: str) -> None:
    if x is None or y is None:
        return
    ax.plot([max(x, x_floor)], [max(y, y_floor)], "o", color=color, ms=7, label=label, zorder=5)
