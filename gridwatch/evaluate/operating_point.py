"""What each registry's threshold means, for `gridwatch config check`: size, threshold, expected false
alerts a day and expected miss rate, from the model pack's calibration.

The size is the registry's enrolled templates for the pack in use, read from the store when it is a
SQLite file that exists here (a workstation holds none; PostgreSQL is not contacted by a check), and
never less than the registry's ``expected_size``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridwatch.core.config.loader import LoadedConfig
from recognition.calibration import PackCalibration
from recognition.modelpack import ModelPackError
from recognition.thresholds import OperatingPoint, faces_per_day, registry_point


@dataclass
class OperatingPoints:
    lines: list[str] = field(default_factory=list)
    warnings: list[object] = field(default_factory=list)  # str or ConfigIssue (file:line: key: reason)


def operating_points(loaded: LoadedConfig) -> OperatingPoints:
    from gridwatch.wiring import pack_calibration
    from recognition.backends import resolve_pack

    result = OperatingPoints()
    config = loaded.config
    if not config.registries:
        return result
    try:
        pack = resolve_pack(config.model, config_dir=loaded.root)
        calibration = pack_calibration(loaded, pack)
    except ModelPackError as exc:
        first = str(exc).splitlines()[0]
        result.warnings.append(f"operating points not computed: {first}")
        return result
    sizes, where = registry_sizes(loaded, pack.model_id)
    result.lines += [
        f"operating points ({calibration_text(calibration)}; registry sizes: {where}):",
        f"  {'registry':<20} {'size':>8} {'threshold':>10} {'faces/day':>12} {'false alerts/day':>17} "
        f"{'miss rate':>9}  notes",
    ]
    for i, registry in enumerate(config.registries):
        faces = faces_per_day(registry, config)
        size = sizes.get(registry.name, 0)
        point = registry_point(calibration, registry, size=size, faces=faces.value)
        mode = "auto" if registry.auto_threshold else "fixed"
        if point is None:
            n = max(size, registry.expected_size or 0)
            miss = "?" if registry.auto_threshold else f"{calibration.fnmr(registry.threshold):.1%}"
            result.lines.append(
                f"  {registry.name:<20} {n:>8} {_threshold_text(registry.threshold, mode):>10} {'?':>12} "
                f"{'?':>17} {miss:>9}  {mode}; {faces.how}"
            )
            if registry.auto_threshold:
                result.warnings.append(
                    loaded.issue(("registries", i, "faces_per_day"), f"threshold: auto cannot be solved: {faces.how}")
                )
            continue
        notes = [mode, f"faces/day {faces.how}"]
        if registry.auto_threshold and registry.name not in sizes:
            # The configured figure is a stand-in; what runs is solved for the store's enrolled size.
            notes.append("no store here: solved for expected_size (the service solves it for the enrolled templates)")
        if point.extrapolated:
            notes.append("FMR extrapolated")
        result.lines.append(_row(registry.name, point, mode, notes))
        if not point.met and point.reason is not None:
            result.warnings.append(loaded.issue(("registries", i, "max_false_alerts_per_day"), point.reason))
    return result


def calibration_text(calibration: PackCalibration) -> str:
    return (
        f"calibration of {calibration.pack} from {calibration.source_text}; "
        f"FMR above {calibration.tail_from:.2f} extrapolated"
    )


def _threshold_text(threshold: float, mode: str) -> str:
    return "auto" if mode == "auto" else f"{threshold:.4f}"


def _row(name: str, point: OperatingPoint, mode: str, notes: list[str]) -> str:
    return (
        f"  {name:<20} {point.size:>8} {point.threshold:>10.4f} {point.faces_per_day:>12,.0f} "
        f"{point.false_alerts_per_day:>17.3g} {point.miss_rate:>9.1%}  {'; '.join(notes)}"
    )


def registry_sizes(loaded: LoadedConfig, model_id: str) -> tuple[dict[str, int], str]:
    """Enrolled templates per registry for ``model_id``, and where the figures come from."""
    from gridwatch.wiring import build_database, data_paths
    from recognition.store import RegistryStore

    url = loaded.config.service.database.url
    if url:
        return {}, "not read (the store is a server database; expected_size used)"
    path = data_paths(loaded).database
    if not path.is_file():
        return {}, f"no store at {path} (expected_size used)"
    store = RegistryStore(build_database(loaded), owns_database=True)
    try:
        sizes = {r.name: len(store.embeddings(r.name, model_id).ids) for r in loaded.config.registries}
    finally:
        store.close()
    return sizes, f"enrolled templates in {path}"
