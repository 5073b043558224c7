"""`gridwatch calibrate`: set one registry's threshold from an evaluation report, and record why.

The threshold is the lowest (4-decimal) value whose FPIR on the report's non-mated searches is at
most the target. It is refused when the report cannot measure that FPIR (fewer than 1/target
non-mated searches), when the report was made with another model pack (similarities of two packs
are not comparable), or when the threshold would lie outside the scores the report saw.

The config file that defines the registry is edited in place with ruamel.yaml's round-trip mode,
so comments, key order and layout stay; the result is validated before it replaces the file.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridwatch.core.config.loader import load_config
from gridwatch.evaluate.metrics import fnir, threshold_for_fpir
from gridwatch.evaluate.report import searches_from_report


class CalibrationError(ValueError):
    """The threshold cannot be set from this report; the message says why."""


@dataclass(frozen=True)
class Calibration:
    registry: str
    file: Path
    old_threshold: float
    threshold: float
    target_fpir: float
    fnir: float | None
    evidence: dict[str, Any]


def read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read the report ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"{path}: not a JSON report ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(report, dict) or "identification" not in report or "counts" not in report:
        raise CalibrationError(f"{path}: not a `gridwatch eval` report")
    if "searches" not in report["identification"]:
        raise CalibrationError(
            f"{path}: the report has no identification results (it was made from pairs); "
            "calibration needs identity folders"
        )
    return report


def plan_calibration(report: dict[str, Any], target_fpir: float, *, model_id: str | None) -> tuple[float, float, int]:
    """The threshold for ``target_fpir``, the FNIR there and the number of non-mated searches."""
    if model_id is not None and report.get("model") != model_id:
        raise CalibrationError(
            f"the report was made with model {report.get('model')}, the config uses {model_id}: "
            "similarities of two packs are not comparable; run `gridwatch eval` with this config"
        )
    searches = searches_from_report(report)
    entry = threshold_for_fpir(searches, target_fpir)
    if not entry["supported"]:
        raise CalibrationError(f"cannot calibrate to FPIR {target_fpir:g}: {entry['note']}")
    threshold = float(entry["threshold"])
    low, high = report["score_range"]
    if not low <= threshold <= high:
        raise CalibrationError(f"threshold {threshold} lies outside the scores the report saw ({low}..{high})")
    return threshold, fnir(searches, threshold), searches.nonmated


def calibrate(
    config_path: Path, registry: str, target_fpir: float, report_path: Path, *, model_id: str | None
) -> Calibration:
    loaded = load_config(config_path)
    index = next((i for i, r in enumerate(loaded.config.registries) if r.name == registry), None)
    if index is None:
        known = ", ".join(r.name for r in loaded.config.registries) or "none"
        raise CalibrationError(f"no registry {registry!r} in {config_path} (registries: {known})")
    position = loaded.positions.get(("registries", index)) or loaded.positions.get(("registries",))
    if position is None:
        raise CalibrationError(f"cannot find the file that defines registry {registry!r}")
    file = position[0]

    report = read_report(report_path)
    threshold, fnir_there, nonmated = plan_calibration(report, target_fpir, model_id=model_id)
    evidence = {
        "data": str(report.get("data", ""))[:500],
        "mated": int(report["identification"]["searches"]["mated"]),
        "nonmated": nonmated,
        "date": dt.date.today(),
        "target_fpir": target_fpir,
        "fnir": None if math.isnan(fnir_there) else round(fnir_there, 6),
        "model": str(report.get("model", ""))[:200],
        "report": str(report_path.resolve())[:1000],
    }
    old = loaded.config.registries[index].threshold
    _rewrite(file, registry, threshold, evidence, config_path)
    return Calibration(registry, file, old, threshold, target_fpir, fnir_there, evidence)


def _rewrite(file: Path, registry: str, threshold: float, evidence: dict[str, Any], config_path: Path) -> None:
    from ruamel.yaml.comments import CommentedMap

    original = file.read_text(encoding="utf-8")
    yaml = round_trip_yaml(original)
    document = yaml.load(original)
    entry = next((r for r in document["registries"] if r.get("name") == registry), None)
    if entry is None:
        raise CalibrationError(f"{file}: registry {registry!r} not found in its `registries:` list")
    if "threshold" in entry:
        entry["threshold"] = threshold
    else:
        entry.insert(list(entry.keys()).index("name") + 1, "threshold", threshold)
    entry.yaml_add_eol_comment(f"calibrated {evidence['date']} for FPIR {evidence['target_fpir']:g}", "threshold")
    calibration = CommentedMap(evidence)
    if "calibration" in entry:
        entry["calibration"] = calibration
    else:
        entry.insert(list(entry.keys()).index("threshold") + 1, "calibration", calibration)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    replace_checked(file, buffer.getvalue(), original, config_path)


def round_trip_yaml(original: str) -> Any:
    """A ruamel.yaml round-trip loader/dumper laid out like ``original`` (comments, order, quoting kept)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    # The guess is the indent of sequence items and the offset of their dash; mappings inside
    # them are indented by the difference ("  - name:" / "    purpose:" → 2, 4, 2).
    _, sequence_indent, dash_offset = load_yaml_guess_indent(original)
    yaml = YAML()  # round-trip: comments, order and quoting are kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # keep the author's line breaks in folded text
    if dash_offset is None:  # no block sequence: the guess is the mapping indent (None: nothing nested)
        yaml.indent(mapping=sequence_indent or 2)
        return yaml
    mapping_indent = sequence_indent - dash_offset if sequence_indent - dash_offset >= 2 else sequence_indent
    yaml.indent(mapping=mapping_indent, sequence=sequence_indent, offset=dash_offset)
    return yaml


def replace_checked(
    file: Path, text: str, original: str, config_path: Path, *, env: Mapping[str, str] | None = None
) -> None:
    """Write ``text`` atomically, then validate the whole config (``${ENV}`` values from ``env``, default
    ``os.environ``); put the original back if it fails."""
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, file.stat().st_mode & 0o777)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        load_config(config_path, env=env)
    except Exception:
        file.write_text(original, encoding="utf-8")
        raise
