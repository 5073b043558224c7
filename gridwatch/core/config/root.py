"""The whole configuration: one section per module, cross-references checked here."""

from __future__ import annotations

from pydantic import Field, model_validator

from gridwatch.core.config.base import StrictModel
from gridwatch.core.config.cameras import CameraConfig
from gridwatch.core.config.gates import GateConfig
from gridwatch.core.config.model import ModelConfig
from gridwatch.core.config.notifier import NotifierConfig
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.config.rules import (
    FrequencyRuleConfig,
    OutsideAreaRuleConfig,
    OutsideHoursRuleConfig,
    RuleConfig,
    StrangerAtGateRuleConfig,
)
from gridwatch.core.config.schedules import ScheduleConfig
from gridwatch.core.config.service import ServiceConfig
from gridwatch.core.config.zones import ZoneConfig

# A key path into the config: mapping keys and sequence indexes.
Loc = tuple[str | int, ...]


class ConfigReferenceError(ValueError):
    """Cross-reference problems, each with the key path it is about (the loader turns that into file:line)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{_dotted(loc)}: {reason}" for loc, reason in problems))
        self.problems = problems


class GridwatchConfig(StrictModel):
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="Service settings.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Face model pack and quality gate.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras.")
    gates: list[GateConfig] = Field(default_factory=list, description="Face terminals of gates.")
    zones: list[ZoneConfig] = Field(default_factory=list, description="Named groups of cameras and gates.")
    schedules: list[ScheduleConfig] = Field(
        default_factory=list, description="Named weekly time windows, in local time of a time zone."
    )
    registries: list[RegistryConfig] = Field(default_factory=list, description="Watchlist registries.")
    rules: list[RuleConfig] = Field(default_factory=list, description="Warning rules.")
    notifier: NotifierConfig = Field(default_factory=NotifierConfig, description="Alert delivery.")

    @model_validator(mode="after")
    def _references(self) -> GridwatchConfig:
        problems: list[tuple[Loc, str]] = []
        problems += _unique("cameras", "id", [c.id for c in self.cameras])
        problems += _unique("gates", "id", [g.id for g in self.gates])
        camera_ids = {c.id for c in self.cameras}
        problems += [
            (("gates", i, "id"), f"id {g.id!r} is already a camera id (cameras and gates share one id space)")
            for i, g in enumerate(self.gates)
            if g.id in camera_ids
        ]
        problems += _unique("zones", "id", [z.id for z in self.zones])
        problems += _unique("schedules", "id", [s.id for s in self.schedules])
        problems += _unique("registries", "name", [r.name for r in self.registries])
        problems += _unique("rules", "id", [r.id for r in self.rules])
        sources = self.source_ids()
        for i, zone in enumerate(self.zones):
            # No "*" in a zone: a zone names places; "everywhere" is the absence of a zone condition.
            problems += [
                (("zones", i, "sources", j), '"*" is not allowed in a zone: list its cameras and gates')
                for j, source in enumerate(zone.sources)
                if source == "*"
            ]
            problems += _known(("zones", i, "sources"), "source", zone.sources, sources)
        registries = {r.name for r in self.registries}
        for i, reg in enumerate(self.registries):
            problems += _known(("registries", i, "sources"), "source", reg.sources, sources)
        for i, rule in enumerate(self.rules):
            key, names = rule.registry_refs()
            problems += _known(("rules", i, key), "registry", names, registries, wildcard=False)
            problems += _known(("rules", i, "sources"), "source", rule.sources, sources)
            problems += self._rule_references(i, rule)
        if problems:
            raise ConfigReferenceError(problems)
        return self

    def _rule_references(self, index: int, rule: RuleConfig) -> list[tuple[Loc, str]]:
        """Schedules and zones a rule names exist; a stranger rule watches gates only."""
        zones, schedules = self.zone_ids(), self.schedule_ids()
        loc: Loc = ("rules", index)
        problems: list[tuple[Loc, str]] = []
        scheduled = {"active": rule.active}
        if isinstance(rule, OutsideHoursRuleConfig):
            scheduled["allowed_hours"] = rule.allowed_hours
        for key, schedule in scheduled.items():
            if schedule is not None and schedule not in schedules:
                known = ", ".join(sorted(schedules)) or "none"
                problems.append(((*loc, key), f"unknown schedule {schedule!r} (known: {known})"))
        if isinstance(rule, OutsideAreaRuleConfig):
            problems += _known((*loc, "allowed_zones"), "zone", rule.allowed_zones, zones, wildcard=False)
        if isinstance(rule, FrequencyRuleConfig):
            problems += _known((*loc, "zones"), "zone", rule.zones, zones, wildcard=False)
        if isinstance(rule, StrangerAtGateRuleConfig):
            cameras = {c.id for c in self.cameras}
            problems += [
                ((*loc, "sources", j), f"{source!r} is a camera: stranger_at_gate counts attempts at gates")
                for j, source in enumerate(rule.sources)
                if source in cameras
            ]
        return problems

    def source_ids(self) -> set[str]:
        return {c.id for c in self.cameras} | {g.id for g in self.gates}

    def zone_ids(self) -> set[str]:
        return {z.id for z in self.zones}

    def schedule_ids(self) -> set[str]:
        return {s.id for s in self.schedules}


def _unique(section: str, key: str, ids: list[str]) -> list[tuple[Loc, str]]:
    first: dict[str, int] = {}
    problems: list[tuple[Loc, str]] = []
    for index, item in enumerate(ids):
        if item in first:
            problems.append(((section, index, key), f"duplicate {key} {item!r} (first at {section}[{first[item]}])"))
        else:
            first[item] = index
    return problems


def _known(loc: Loc, what: str, names: list[str], known: set[str], *, wildcard: bool = True) -> list[tuple[Loc, str]]:
    return [
        ((*loc, index), f"unknown {what} {name!r} (known: {', '.join(sorted(known)) or 'none'})")
        for index, name in enumerate(names)
        if name not in known and not (wildcard and name == "*")
    ]


def _dotted(loc: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
