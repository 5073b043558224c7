"""The whole configuration: one section per module, cross-references checked here."""

from __future__ import annotations

from pydantic import Field, model_validator

from gridwatch.core.config.base import StrictModel
from gridwatch.core.config.cameras import CameraConfig
from gridwatch.core.config.channels import ChannelConfig
from gridwatch.core.config.duty import DutyConfig
from gridwatch.core.config.gates import GateConfig
from gridwatch.core.config.grids import GridConfig
from gridwatch.core.config.model import ModelConfig
from gridwatch.core.config.notifier import NotifierConfig
from gridwatch.core.config.registries import CORRECTIONS_ROLE, RegistryConfig
from gridwatch.core.config.routes import RouteConfig
from gridwatch.core.config.rules import (
    FrequencyRuleConfig,
    OutsideAreaRuleConfig,
    OutsideHoursRuleConfig,
    RuleConfig,
    StrangerAtGateRuleConfig,
)
from gridwatch.core.config.schedules import ScheduleConfig
from gridwatch.core.config.service import ServiceConfig
from gridwatch.core.config.staff import StaffConfig
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
    grids: list[GridConfig] = Field(
        default_factory=list,
        max_length=10000,
        description="Areas of responsibility; `parent` is the escalation ladder.",
    )
    staff: list[StaffConfig] = Field(default_factory=list, max_length=10000, description="Who can be notified.")
    duty: list[DutyConfig] = Field(default_factory=list, max_length=10000, description="Duty rosters, one per grid.")
    routes: list[RouteConfig] = Field(
        default_factory=list, max_length=1000, description="Ordered routing tree: who gets which alert."
    )
    channels: list[ChannelConfig] = Field(
        default_factory=list, max_length=100, description="How notifications reach staff."
    )

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
        problems += self._routing_references()
        if problems:
            raise ConfigReferenceError(problems)
        return self

    def _routing_references(self) -> list[tuple[Loc, str]]:
        """Grids, staff, duty, routes and channels refer to what exists; the grid tree has no cycle."""
        problems: list[tuple[Loc, str]] = []
        problems += _unique("grids", "id", [g.id for g in self.grids])
        problems += _unique("staff", "id", [p.id for p in self.staff])
        problems += _unique("channels", "id", [c.id for c in self.channels])
        problems += _unique("duty", "grid", [d.grid for d in self.duty])
        grids = self.grid_ids()
        for i, grid in enumerate(self.grids):
            if grid.parent is not None:
                problems += _known(("grids", i, "parent"), "grid", [grid.parent], grids, wildcard=False)
        problems += self._grid_cycles()
        if grids:
            # Once grids exist, every place names one: an alert of a place without a grid would reach nobody.
            named: list[tuple[str, list[tuple[int, str | None]]]] = [
                ("cameras", [(i, c.grid) for i, c in enumerate(self.cameras)]),
                ("gates", [(i, g.grid) for i, g in enumerate(self.gates)]),
                ("zones", [(i, z.grid) for i, z in enumerate(self.zones)]),
            ]
            for section, items in named:
                for i, grid_id in items:
                    if grid_id is None:
                        problems.append(((section, i, "grid"), "missing: every camera, gate and zone names its grid"))
                    else:
                        problems += _known((section, i, "grid"), "grid", [grid_id], grids, wildcard=False)
        channels = {c.id for c in self.channels}
        staff = {p.id for p in self.staff}
        for i, person in enumerate(self.staff):
            problems += _known(("staff", i, "grids"), "grid", person.grids, grids, wildcard=False)
            problems += _known(("staff", i, "channels"), "channel", person.channels, channels, wildcard=False)
        for i, roster in enumerate(self.duty):
            problems += _known(("duty", i, "grid"), "grid", [roster.grid], grids, wildcard=False)
            for loc, staff_id in roster.staff_refs():
                if staff_id not in staff:
                    known = ", ".join(sorted(staff)) or "none"
                    problems.append((("duty", i, *loc), f"unknown staff {staff_id!r} (known: {known})"))
        registries = {r.name for r in self.registries}
        rules = {r.id for r in self.rules}
        roles = {role for p in self.staff for role in p.roles}
        for i, route in enumerate(self.routes):
            problems += _route_references(("routes", i), route, registries, rules, grids, staff, roles)
        if self.routes and CORRECTIONS_ROLE not in roles:
            # Their alerts go to that role only (notifier.routing): without it they would reach nobody.
            problems += [
                (
                    ("registries", i, "kind"),
                    f"a corrections registry's alerts go only to staff with the role {CORRECTIONS_ROLE!r}, "
                    "and no staff member has it",
                )
                for i, reg in enumerate(self.registries)
                if reg.corrections
            ]
        if self.routes and self.notifier.acks.signing_secret is None:
            problems.append(
                (
                    ("notifier", "acks", "signing_secret"),
                    "missing: routes send one-click acknowledgement links, which need a signing secret "
                    "(write ${GRIDWATCH_ACK_SECRET} and set it to 32 random bytes, base64)",
                )
            )
        return problems

    def _grid_cycles(self) -> list[tuple[Loc, str]]:
        parent = {g.id: g.parent for g in self.grids}
        problems: list[tuple[Loc, str]] = []
        for i, grid in enumerate(self.grids):
            seen = {grid.id}
            at = grid.parent
            while at is not None and at in parent:
                if at in seen:
                    problems.append((("grids", i, "parent"), f"grid {grid.id!r} is its own ancestor (a cycle)"))
                    break
                seen.add(at)
                at = parent[at]
        return problems

    def grid_ids(self) -> set[str]:
        return {g.id for g in self.grids}

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


def _route_references(
    loc: Loc,
    route: RouteConfig,
    registries: set[str],
    rules: set[str],
    grids: set[str],
    staff: set[str],
    roles: set[str],
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    match = route.match
    problems += _known((*loc, "match", "registry"), "registry", match.registry or [], registries, wildcard=False)
    problems += _known((*loc, "match", "rule"), "rule", match.rule or [], rules, wildcard=False)
    problems += _known((*loc, "match", "grid"), "grid", match.grid or [], grids, wildcard=False)
    targets: list[tuple[Loc, str]] = [((*loc, "notify", j), t) for j, t in enumerate(route.notify or [])]
    for k, step in enumerate(route.escalate or []):
        targets += [((*loc, "escalate", k, "notify", j), t) for j, t in enumerate(step.notify)]
    for where, target in targets:
        kind, _, name = target.partition(":")
        if kind == "staff" and name not in staff:
            problems.append((where, f"unknown staff {name!r} (known: {', '.join(sorted(staff)) or 'none'})"))
        elif kind == "role" and name not in roles:
            problems.append((where, f"no staff member has role {name!r} (roles: {', '.join(sorted(roles)) or 'none'})"))
    for j, child in enumerate(route.routes):
        problems += _route_references((*loc, "routes", j), child, registries, rules, grids, staff, roles)
    return problems


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
