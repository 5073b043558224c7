"""The threshold `rules simulate` checks a matched line's similarity against, per registry.

A fixed threshold is the configured one. A `threshold: auto` registry's configured figure is a stand-in
(0.45): the running service solves it from the model pack's calibration for the registry's enrolled
size (``recognition.thresholds``). A simulation has no store, so it solves it for the registry's entries
in the entries file (never fewer than its ``expected_size``) and says so; when it cannot (no pack or
calibration here, no faces a day), it keeps the stand-in and says that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridwatch.core.config.loader import LoadedConfig
from gridwatch.core.config.registries import RegistryConfig
from recognition.calibration import PackCalibration
from recognition.modelpack import ModelPackError
from recognition.thresholds import faces_per_day, registry_point


@dataclass
class SimulationThresholds:
    """Callable as ``thresholds(registry, entries)``; ``notes`` says, per auto registry, what was used."""

    loaded: LoadedConfig
    entries_name: str = "the entries file"
    calibration: PackCalibration | None = None
    unavailable: str | None = None  # why there is no calibration here
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, loaded: LoadedConfig, entries_name: str) -> SimulationThresholds:
        """Reads the pack's calibration only when a registry has `threshold: auto` (a check needs no pack)."""
        thresholds = cls(loaded, entries_name)
        if any(r.auto_threshold for r in loaded.config.registries):
            from gridwatch.wiring import pack_calibration
            from recognition.backends import resolve_pack

            try:
                thresholds.calibration = pack_calibration(
                    loaded, resolve_pack(loaded.config.model, config_dir=loaded.root)
                )
            except ModelPackError as exc:
                thresholds.unavailable = str(exc).splitlines()[0]
        return thresholds

    def __call__(self, registry: RegistryConfig, entries: int) -> float:
        if not registry.auto_threshold:
            return registry.threshold
        stand_in = f"the stand-in {registry.threshold:.4f} (a running registry uses its solved threshold)"
        if self.calibration is None:
            self._note(registry, f"checked against {stand_in}: not solvable here: {self.unavailable}")
            return registry.threshold
        faces = faces_per_day(registry, self.loaded.config)
        point = registry_point(self.calibration, registry, size=entries, faces=faces.value)
        if point is None:
            self._note(registry, f"checked against {stand_in}: not solvable: {faces.how}")
            return registry.threshold
        self._note(
            registry,
            f"checked against {point.threshold:.4f}, solved for {point.size} entr(ies) "
            f"({entries} in {self.entries_name}; expected_size {registry.expected_size or 0}) and "
            f"{point.faces_per_day:,.0f} faces/day; no store here: the running service solves it for the "
            "registry's enrolled templates",
        )
        return point.threshold

    def _note(self, registry: RegistryConfig, text: str) -> None:
        self.notes.append(f"registry {registry.name!r} has threshold: auto: similarities {text}")
