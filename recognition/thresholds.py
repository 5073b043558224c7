"""Thresholds from an operating point, solved from a pack's calibration (``recognition.calibration``).

Searching a registry of N enrolled templates with F faces a day makes about ``N * F * FMR(t)``
false matches a day (each probe is compared with each template; the rare false matches are
independent). ``solve_threshold`` picks the lowest threshold that keeps that at or under a target;
``AutoThresholds`` does it for the ``threshold: auto`` registries at their current size.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, replace
from typing import Any

from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.config.root import GridwatchConfig
from recognition.calibration import PackCalibration

log = logging.getLogger(__name__)

THRESHOLD_DECIMALS = 4
# The solved threshold never goes past this: above it FNMR is near 1 for every shipped pack.
MAX_SOLVED_THRESHOLD = 0.95


# --- thresholds from an operating point -------------------------------------------------------


@dataclass(frozen=True)
class OperatingPoint:
    """What a registry's threshold means, by the calibration."""

    threshold: float
    size: int
    faces_per_day: float
    false_alerts_per_day: float
    miss_rate: float  # FNMR at the threshold
    fmr: float
    extrapolated: bool  # FMR at the threshold comes from the tail model
    target: float | None = None  # max false alerts per day (auto thresholds)
    met: bool = True
    reason: str | None = None  # why the target cannot be met


def operating_point(
    calibration: PackCalibration, threshold: float, *, size: int, faces_per_day: float
) -> OperatingPoint:
    fmr = calibration.fmr(threshold)
    return OperatingPoint(
        threshold=threshold,
        size=size,
        faces_per_day=faces_per_day,
        false_alerts_per_day=size * faces_per_day * fmr,
        miss_rate=calibration.fnmr(threshold),
        fmr=fmr,
        extrapolated=calibration.extrapolated(threshold),
    )


def solve_threshold(
    calibration: PackCalibration, *, size: int, faces_per_day: float, max_false_alerts_per_day: float
) -> OperatingPoint:
    """The lowest threshold (4 decimals) with ``size * faces_per_day * FMR(t) <= max_false_alerts_per_day``.

    An empty registry is solved as a registry of one (it has no false alerts, but its first entry
    should not face a threshold of 0). When even ``MAX_SOLVED_THRESHOLD`` gives more false alerts
    than the target, that threshold is returned with ``met=False`` and the reason.
    """
    n = max(size, 1)
    comparisons = n * faces_per_day
    step = 10.0**-THRESHOLD_DECIMALS
    low, high = 0.0, MAX_SOLVED_THRESHOLD
    if comparisons * calibration.fmr(high) > max_false_alerts_per_day:
        point = operating_point(calibration, high, size=size, faces_per_day=faces_per_day)
        reason = (
            f"{max_false_alerts_per_day:g} false alerts a day cannot be met with {n} enrolled and "
            f"{faces_per_day:g} faces a day: even threshold {high} predicts {point.false_alerts_per_day:.3g} "
            f"(and misses {point.miss_rate:.0%} of genuine faces); raise the target, search fewer faces "
            "or split the registry"
        )
        return _with(point, target=max_false_alerts_per_day, met=False, reason=reason)
    # FMR(t) is non-increasing: bisect on the 4-decimal grid.
    while high - low > step / 2:
        mid = round((low + high) / 2, THRESHOLD_DECIMALS + 2)
        if comparisons * calibration.fmr(mid) <= max_false_alerts_per_day:
            high = mid
        else:
            low = mid
    threshold = math.ceil(high / step - 1e-6) * step
    threshold = round(min(threshold, MAX_SOLVED_THRESHOLD), THRESHOLD_DECIMALS)
    point = operating_point(calibration, threshold, size=size, faces_per_day=faces_per_day)
    return _with(point, target=max_false_alerts_per_day)


def needs_resolve(solved_size: int, size: int, *, tolerance: float = 0.10) -> bool:
    """True when the registry's size moved by more than ``tolerance`` since its threshold was solved."""
    base = max(solved_size, 1)
    return abs(max(size, 1) - base) > tolerance * base


def _with(point: OperatingPoint, **changes: Any) -> OperatingPoint:
    return replace(point, **changes)


# --- per registry -----------------------------------------------------------------------------

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class FacesPerDay:
    value: float | None
    how: str  # "configured", "estimated from N camera(s)" or why there is no figure


def faces_per_day(registry: RegistryConfig, config: GridwatchConfig) -> FacesPerDay:
    """The registry's ``faces_per_day``, or an estimate: the analysed frames a day of the cameras it covers,
    one face each (a busy camera's ceiling; a quiet one sees far fewer). Gates send no frame rate."""
    if registry.faces_per_day is not None:
        return FacesPerDay(registry.faces_per_day, "configured")
    covered = [c for c in config.cameras if "*" in registry.sources or c.id in registry.sources]
    gates = [g for g in config.gates if "*" in registry.sources or g.id in registry.sources]
    if not covered:
        why = "set faces_per_day: it covers only gates, which send no frame rate" if gates else "no sources"
        return FacesPerDay(None, why)
    value = sum(c.fps for c in covered) * SECONDS_PER_DAY
    note = f"estimated from the fps of {len(covered)} camera(s)"
    if gates:
        note += f"; {len(gates)} gate(s) not counted"
    return FacesPerDay(value, note)


def registry_point(
    calibration: PackCalibration, registry: RegistryConfig, *, size: int, faces: float | None
) -> OperatingPoint | None:
    """The registry's operating point: solved for an auto threshold, evaluated for a fixed one.

    None when the faces a day are unknown (an auto threshold cannot be solved then)."""
    n = max(size, registry.expected_size or 0)
    if faces is None:
        return None
    if registry.max_false_alerts_per_day is not None:
        return solve_threshold(
            calibration, size=n, faces_per_day=faces, max_false_alerts_per_day=registry.max_false_alerts_per_day
        )
    return operating_point(calibration, registry.threshold, size=n, faces_per_day=faces)


class AutoThresholds:
    """Solves the ``threshold: auto`` registries for their current size; thread-safe, no I/O.

    ``effective(config, size)`` is called on the search path: it returns the registry config with the
    solved threshold, solving again only when the config changed or the size moved by more than 10%.
    """

    def __init__(self, calibration: PackCalibration, faces: dict[str, FacesPerDay]) -> None:
        self._calibration = calibration
        self._faces = dict(faces)
        self._solved: dict[str, tuple[RegistryConfig, int, RegistryConfig]] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_config(cls, calibration: PackCalibration, config: GridwatchConfig) -> AutoThresholds:
        return cls(calibration, {r.name: faces_per_day(r, config) for r in config.registries})

    def reconfigure(self, config: GridwatchConfig) -> None:
        with self._lock:
            self._faces = {r.name: faces_per_day(r, config) for r in config.registries}
            self._solved.clear()

    def effective(self, config: RegistryConfig, size: int) -> RegistryConfig:
        if not config.auto_threshold:
            return config
        with self._lock:
            cached = self._solved.get(config.name)
            if cached is not None and cached[0] is config and not needs_resolve(cached[1], size):
                return cached[2]
            # A configured figure is read from the config itself, so that a reloaded value counts at once.
            faces = (
                FacesPerDay(config.faces_per_day, "configured")
                if config.faces_per_day is not None
                else self._faces.get(config.name, FacesPerDay(None, "not estimated: added after start"))
            )
            point = registry_point(self._calibration, config, size=size, faces=faces.value)
            if point is None:
                log.error(
                    "registry %s: threshold auto cannot be solved (%s); keeping %.4f",
                    config.name,
                    faces.how,
                    config.threshold,
                )
                solved = config
            else:
                solved = config.model_copy(update={"threshold": point.threshold})
                if point.met:
                    log.info(
                        "registry %s: threshold auto solved to %.4f for %d templates and %.0f faces/day: "
                        "%.3g false alerts/day expected (target %g), miss rate %.1f%%",
                        config.name,
                        point.threshold,
                        point.size,
                        point.faces_per_day,
                        point.false_alerts_per_day,
                        config.max_false_alerts_per_day,
                        100 * point.miss_rate,
                    )
                else:
                    log.error("registry %s: %s", config.name, point.reason)
            self._solved[config.name] = (config, size, solved)
            return solved
