"""The `eval` and `calibrate` subcommands. Nothing heavy is imported until a command runs."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridwatch.core.config.model import ModelConfig
    from recognition.calibration import PackCalibration
    from recognition.modelpack import ModelPack

log = logging.getLogger(__name__)

EXIT_DATA = 1
EXIT_CONFIG = 2


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `eval` and `calibrate` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    ev = commands.add_parser(
        "eval",
        help="measure recognition accuracy on labelled photos (FNIR at FPIR, ROC, EER, DET plot)",
        description="Run the product's detection, quality gate and embedding over labelled data: a folder of "
        "identity folders, or a CSV with the header path_a,path_b,same (paths relative to the CSV).",
    )
    config_arg(ev)
    ev.add_argument("data", type=Path, help="folder of identity folders, or pairs CSV")
    ev.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a sub-folder of DATA that is not an identity, e.g. group photos (repeatable)",
    )
    ev.add_argument("--out", type=Path, default=None, help="write DIR/report.json and DIR/det.png")
    ev.add_argument("--backend", choices=["insightface", "opencv_zoo"], default=None, help="override model.backend")
    ev.add_argument(
        "--margin", type=float, default=None, help="decision margin between the two best identities (default 0.05)"
    )
    ev.add_argument(
        "--distractors-video",
        action="append",
        type=Path,
        default=[],
        metavar="CLIP",
        help="a video whose faces are all of people NOT in the labelled data (repeatable)",
    )
    ev.add_argument(
        "--distractors-frames",
        default=None,
        metavar="A:B[,C:D]",
        help="only these frame ranges of the distractor videos (start included, end excluded)",
    )
    ev.add_argument("--distractors-every", type=int, default=3, metavar="N", help="use every N-th frame (default 3)")
    ev.add_argument(
        "--distractors-photos",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="a photo or folder of photos of people NOT in the labelled data; every face counts (repeatable)",
    )
    ev.set_defaults(handler=cmd_eval)

    cal = commands.add_parser(
        "calibrate",
        help="set a registry's threshold from an eval report for a target FPIR, and record the evidence; "
        "`calibrate pack`: rebuild a pack's calibration from labelled photos",
        description="Without a sub-command: set one registry's threshold from an eval report "
        "(--registry, --target-fpir and --report are then required). `gridwatch calibrate pack DATA...`: "
        "rebuild the model pack's calibration (FMR and FNMR by threshold) from identity folders.",
    )
    config_arg(cal)
    cal.add_argument("--registry", default=None, help="registry name")
    cal.add_argument("--target-fpir", type=float, default=None, help="e.g. 0.01")
    cal.add_argument("--report", type=Path, default=None, help="report.json written by `gridwatch eval --out`")
    cal.set_defaults(handler=cmd_calibrate)
    forms = cal.add_subparsers(metavar="FORM")
    pack = forms.add_parser(
        "pack",
        help="rebuild the model pack's calibration from labelled photos (every cross-identity comparison)",
        description="Compare every usable photo of the identity folders with every other (same folder: genuine, "
        "otherwise impostor) and write FMR(t) and FNMR(t), with the data, date and counts. Point "
        "model.calibration at the file to use it for `threshold: auto` and `config check`.",
    )
    # SUPPRESS: without it the sub-parser's default would overwrite a -c given before `pack`.
    pack.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS, help="config file or directory")
    pack.add_argument("data", type=Path, nargs="+", help="folders of identity folders (several are pooled)")
    pack.add_argument("--out", type=Path, required=True, help="calibration file to write (JSON)")
    pack.add_argument(
        "--exclude", action="append", default=[], metavar="FOLDER", help="a sub-folder that is not an identity"
    )
    pack.add_argument("--backend", choices=["insightface", "opencv_zoo"], default=None, help="override model.backend")
    pack.set_defaults(handler=cmd_calibrate_pack)


def cmd_eval(args: argparse.Namespace) -> int:
    from gridwatch.core.config.model import ModelConfig
    from gridwatch.core.config.registries import RegistryConfig
    from gridwatch.evaluate.acquire import parse_frame_ranges, photo_distractors, video_distractors
    from gridwatch.evaluate.datasets import DatasetError, load_dataset
    from gridwatch.evaluate.det import plot_det
    from gridwatch.evaluate.report import evaluate, format_table, write_report
    from gridwatch.evaluate.run import Acquired, acquire_dataset
    from recognition.backends import build_analyzer, default_threshold

    if args.distractors_every < 1:
        print("error: --distractors-every must be 1 or more", file=sys.stderr)
        return EXIT_DATA
    try:
        ranges = None if args.distractors_frames is None else parse_frame_ranges(args.distractors_frames)
    except ValueError as exc:
        print(f"error: --distractors-frames: {exc}", file=sys.stderr)
        return EXIT_DATA
    try:
        dataset = load_dataset(args.data, exclude=args.exclude)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA

    model, config_dir = ModelConfig(), None
    if args.config is not None:
        from gridwatch.core.config.loader import load_config

        loaded = load_config(args.config)
        model, config_dir = loaded.config.model, loaded.root
    if args.backend is not None and args.backend != model.backend:
        # Another family's pack: the site's pins (model.sha256) name the configured pack's files, not its.
        model = model.model_copy(update={"backend": args.backend, "sha256": None})
    margin = args.margin if args.margin is not None else float(RegistryConfig.model_fields["margin"].default)
    analyzer = build_analyzer(model, config_dir=config_dir)
    analyzer.load()

    acquired = Acquired(acquire_dataset(analyzer, dataset))
    try:
        for clip in args.distractors_video:
            samples, source = video_distractors(analyzer, clip, ranges=ranges, every=args.distractors_every)
            acquired.distractors += samples
            acquired.distractor_sources.append(source)
        for photos in args.distractors_photos:
            samples, source = photo_distractors(analyzer, photos)
            acquired.distractors += samples
            acquired.distractor_sources.append(source)
    except OSError as exc:
        print(f"error: distractors: {exc}", file=sys.stderr)
        return EXIT_DATA

    calibration, calibration_note = _calibration_of(model, analyzer.pack, config_dir)
    evaluation = evaluate(
        dataset,
        acquired,
        model_id=analyzer.model_id,
        backend=model.backend,
        threshold=default_threshold(model),
        margin=margin,
        quality=model.quality,
        calibration=calibration,
        calibration_note=calibration_note,
    )
    print(format_table(evaluation.report))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_report(evaluation.report, args.out / "report.json")
        plot_det(args.out / "det.png", evaluation.report, evaluation.searches, evaluation.genuine, evaluation.impostor)
        print(f"\nwrote {args.out / 'report.json'} and {args.out / 'det.png'}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from gridwatch.evaluate.calibrate import CalibrationError, calibrate

    if args.config is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        return EXIT_CONFIG
    missing = [
        flag
        for flag, value in (
            ("--registry", args.registry),
            ("--target-fpir", args.target_fpir),
            ("--report", args.report),
        )
        if value is None
    ]
    if missing:
        print(f"error: calibrate needs {', '.join(missing)} (or the form `gridwatch calibrate pack`)", file=sys.stderr)
        return EXIT_DATA
    if not 0.0 < args.target_fpir < 1.0:
        print("error: --target-fpir must be between 0 and 1, e.g. 0.01", file=sys.stderr)
        return EXIT_DATA
    try:
        result = calibrate(
            args.config, args.registry, args.target_fpir, args.report, model_id=_config_model_id(args.config)
        )
    except CalibrationError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_DATA
    nonmated = int(result.evidence["nonmated"])
    if nonmated < 3.0 / args.target_fpir:
        print(
            f"caution: {nonmated} non-mated searches can show FPIR {args.target_fpir:g} but not prove it: "
            f"with no error in N searches the 95% upper bound is about 3/N = {3.0 / nonmated:.2g}; "
            "collect more non-mated searches before relying on this threshold",
            file=sys.stderr,
        )
    fnir_text = "n/a" if result.fnir is None or math.isnan(result.fnir) else f"{result.fnir:.4f}"
    print(
        f"{result.registry}: threshold {result.old_threshold} -> {result.threshold} "
        f"(FPIR <= {result.target_fpir:g} on {result.evidence['nonmated']} non-mated searches; "
        f"FNIR there {fnir_text}); written to {result.file}"
    )
    return 0


def cmd_calibrate_pack(args: argparse.Namespace) -> int:
    from gridwatch.core.config.model import ModelConfig
    from gridwatch.evaluate.datasets import DatasetError
    from gridwatch.evaluate.packcal import comparison_scores, embed_identity_sets
    from recognition.backends import build_analyzer
    from recognition.calibration import CalibrationFileError, build_calibration, write_calibration

    model, config_dir = ModelConfig(), None
    if args.config is not None:
        from gridwatch.core.config.loader import load_config

        loaded = load_config(args.config)
        model, config_dir = loaded.config.model, loaded.root
    if args.backend is not None and args.backend != model.backend:
        model = model.model_copy(update={"backend": args.backend, "sha256": None})
    analyzer = build_analyzer(model, config_dir=config_dir)
    analyzer.load()
    try:
        embedded = embed_identity_sets(analyzer, args.data, model.quality, exclude=args.exclude)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_DATA
    compared = comparison_scores(embedded.vectors, embedded.identities)
    pack = analyzer.pack
    try:
        document = build_calibration(
            compared.genuine,
            compared.impostor,
            compared.impostor_identities,
            backend=model.backend,
            pack=pack.name,
            recognizer=pack.recognizer.name,
            recognizer_sha256=pack.sha256[pack.recognizer.name],
            source=embedded.source,
            counts=embedded.counts,
            quality_gate=model.quality.model_dump(),
        )
    except CalibrationFileError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_DATA
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_calibration(document, args.out)
    counts = document["counts"]
    print(
        f"{pack.model_id}: {counts['usable_photos']} usable photos of {counts['identities']} identities "
        f"({counts['failed_to_acquire_photos']} failed to acquire): {counts['genuine_comparisons']} genuine and "
        f"{counts['impostor_comparisons']} impostor comparisons; FMR measured up to threshold "
        f"{document['fmr']['measured_up_to']}, extrapolated above; written to {args.out}"
    )
    return 0


def _calibration_of(
    model: ModelConfig, pack: ModelPack, config_dir: Path | None
) -> tuple[PackCalibration | None, str | None]:
    """The pack's calibration (``model.calibration`` or the shipped one), or None and why."""
    from recognition.calibration import CalibrationFileError, calibration_for

    path = None
    if model.calibration is not None:
        path = (
            model.calibration
            if model.calibration.is_absolute() or config_dir is None
            else config_dir / model.calibration
        )
    try:
        return calibration_for(model.backend, pack.sha256[pack.recognizer.name], path=path), None
    except CalibrationFileError as exc:
        return None, str(exc)


def _config_model_id(config_path: Path) -> str:
    """The model id of the config's pack: a report from another pack must not set its threshold."""
    from gridwatch.core.config.loader import load_config
    from recognition.backends import build_analyzer

    loaded = load_config(config_path)
    return build_analyzer(loaded.config.model, config_dir=loaded.root).model_id
