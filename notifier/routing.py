"""Who gets an alert: the routing tree of `routes:` and the targets it names, resolved to staff ids.

Pure (no clock, no I/O): the case desk asks at the instants it decides, so a simulation on a
virtual clock gets the same answers as the service.

The routes are tried in order (Alertmanager's tree): a route whose ``match`` fits takes the alert;
its children are tried first and inherit what they leave unset; ``continue: true`` goes on to the
next routes. Every route that takes the alert contributes a ``Plan``; they join into one plan per
case (``Plan.join``): the first notifications go out together, the ladders merge by time.

Targets resolve against the grid tree and the duty rosters (see ``gridwatch.core.config.routes``):
``on_duty`` climbs over a gap to the first grid above that has somebody on duty; ``on_duty_parent``
climbs one level from the grid the case's ladder has reached.

Alerts of a ``kind: corrections`` registry (Community Corrections Law art. 29) reach only staff with the
``corrections`` role, whatever the routes say: the staff a route's targets resolve to are narrowed to
that role (``resolve(..., registry=)``), and ``corrections_route_warnings`` tells `config check` which
targets are narrowed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gridwatch.core.config.issues import KeyPath
from gridwatch.core.config.registries import CORRECTIONS_ROLE
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.config.routes import RouteConfig
from gridwatch.core.config.staff import StaffConfig
from gridwatch.core.events import Alert


class Roster(Protocol):
    """What routing needs of the duty rosters (``notifier.duty.DutyRoster``)."""

    def on_duty_climbing(self, grid: str, at: dt.datetime) -> tuple[str | None, list[str]]: ...

    def parent(self, grid: str) -> str | None: ...

    def ancestors(self, grid: str) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Step:
    after_s: int
    notify: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """How a case is handled: frozen into the case when it opens (a reload never changes a running ladder)."""

    routes: tuple[str, ...]  # which routes took the alert ("0", "1.0": a child of route 1)
    notify: tuple[str, ...]
    group_wait_s: int = 0
    repeat_s: int | None = None
    require_ack: bool = False
    escalate: tuple[Step, ...] = ()

    @classmethod
    def join(cls, plans: Sequence[Plan]) -> Plan | None:
        """One plan of several matching routes: first notifications together (at the shortest group wait),
        reminders at the shortest interval, ladders merged by time; None for no plan at all."""
        if not plans:
            return None
        repeats = [p.repeat_s for p in plans if p.repeat_s is not None]
        steps = sorted((step for p in plans for step in p.escalate), key=lambda s: s.after_s)
        return cls(
            routes=tuple(r for p in plans for r in p.routes),
            notify=tuple(dict.fromkeys(t for p in plans for t in p.notify)),
            group_wait_s=min(p.group_wait_s for p in plans),
            repeat_s=min(repeats) if repeats else None,
            require_ack=any(p.require_ack for p in plans),
            escalate=tuple(steps),
        )

    def targets_of_level(self, level: int) -> tuple[str, ...]:
        """Level 0: the first notification's targets; level n: escalation step n's."""
        return self.notify if level == 0 else self.escalate[level - 1].notify

    def to_json(self) -> str:
        return json.dumps(
            {
                "routes": list(self.routes),
                "notify": list(self.notify),
                "group_wait_s": self.group_wait_s,
                "repeat_s": self.repeat_s,
                "require_ack": self.require_ack,
                "escalate": [{"after_s": s.after_s, "notify": list(s.notify)} for s in self.escalate],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        return cls(
            routes=tuple(data["routes"]),
            notify=tuple(data["notify"]),
            group_wait_s=int(data["group_wait_s"]),
            repeat_s=None if data["repeat_s"] is None else int(data["repeat_s"]),
            require_ack=bool(data["require_ack"]),
            escalate=tuple(Step(int(s["after_s"]), tuple(s["notify"])) for s in data["escalate"]),
        )


NO_ROUTE = Plan(routes=(), notify=())


@dataclass(frozen=True, slots=True)
class Resolved:
    """Staff ids a list of targets reached, and the grid the ladder stands on afterwards."""

    staff: list[str]
    ladder_grid: str | None
    gaps: list[str] = field(default_factory=list)  # grids whose duty was empty and was climbed over


@dataclass(frozen=True, slots=True)
class _Settings:
    notify: tuple[str, ...] | None = None
    group_wait_s: int | None = None
    repeat_s: int | None = None
    require_ack: bool | None = None
    escalate: tuple[Step, ...] | None = None

    def under(self, route: RouteConfig) -> _Settings:
        """A child's settings: its own where given, else its parent's."""
        return _Settings(
            notify=tuple(route.notify) if route.notify is not None else self.notify,
            group_wait_s=route.group_wait_s if route.group_wait_s is not None else self.group_wait_s,
            repeat_s=route.repeat_s if route.repeat_s is not None else self.repeat_s,
            require_ack=route.require_ack if route.require_ack is not None else self.require_ack,
            escalate=tuple(Step(s.after_s, tuple(s.notify)) for s in route.escalate)
            if route.escalate is not None
            else self.escalate,
        )

    def plan(self, path: str) -> Plan:
        escalate = self.escalate or ()
        require_ack = self.require_ack if self.require_ack is not None else bool(escalate or self.repeat_s)
        return Plan(
            routes=(path,),
            notify=self.notify or ("on_duty",),
            group_wait_s=self.group_wait_s or 0,
            repeat_s=self.repeat_s if require_ack else None,
            require_ack=require_ack,
            escalate=escalate if require_ack else (),
        )


class Router:
    """The routing tree and the staff directory of one config (rebuilt on reload)."""

    def __init__(self, config: GridwatchConfig, roster: Roster) -> None:
        self._routes = list(config.routes)
        self._roster = roster
        self._staff = {person.id: person for person in config.staff}
        self._parents = {grid.id: grid.parent for grid in config.grids}
        self._corrections = frozenset(r.name for r in config.registries if r.corrections)

    @property
    def active(self) -> bool:
        """Routing is configured: without routes, alerts go to the alert sinks only (as before)."""
        return bool(self._routes)

    def staff(self, staff_id: str) -> StaffConfig | None:
        return self._staff.get(staff_id)

    def staff_ids(self) -> list[str]:
        return list(self._staff)

    def plan(self, alert: Alert) -> Plan:
        """The joined plan of every route that takes ``alert`` (``NO_ROUTE`` when none does)."""
        plans: list[Plan] = []
        self._walk(self._routes, alert, _Settings(), "", plans)
        return Plan.join(plans) or NO_ROUTE

    def _walk(
        self, routes: Sequence[RouteConfig], alert: Alert, inherited: _Settings, prefix: str, out: list[Plan]
    ) -> bool:
        """Append the plans of the routes that take the alert; True if one did."""
        took = False
        for index, route in enumerate(routes):
            if not self._matches(route, alert):
                continue
            path = f"{prefix}{index}"
            settings = inherited.under(route)
            if not self._walk(route.routes, alert, settings, f"{path}.", out):
                out.append(settings.plan(path))
            took = True
            if not route.continue_:
                break
        return took

    def _matches(self, route: RouteConfig, alert: Alert) -> bool:
        match = route.match
        if match.registry is not None and alert.registry not in match.registry:
            return False
        if match.rule is not None and alert.rule not in match.rule:
            return False
        if match.severity is not None and alert.severity not in match.severity:
            return False
        if match.grid is not None:
            if alert.grid is None:
                return False
            lineage = {alert.grid, *self._ancestors(alert.grid)}
            if not lineage & set(match.grid):
                return False
        return True

    def resolve(
        self,
        targets: Iterable[str],
        grid: str | None,
        ladder_grid: str | None,
        at: dt.datetime,
        *,
        climb: bool = True,
        registry: str | None = None,
    ) -> Resolved:
        """Staff ids (config order of first mention, no duplicates) the targets reach at ``at``.

        ``grid``: the alert's grid; ``ladder_grid``: where the case's ladder stands (None: not climbed
        yet). ``climb=False`` (a reminder) resolves ``on_duty_parent`` at the ladder's grid itself.
        ``registry``: the alert's; a corrections registry's alert reaches only staff with the ``corrections`` role.
        """
        resolved = self._resolve(targets, grid, ladder_grid, at, climb=climb)
        if registry is None or registry not in self._corrections:
            return resolved
        narrowed = [s for s in resolved.staff if CORRECTIONS_ROLE in self._staff[s].roles]
        return Resolved(narrowed, resolved.ladder_grid, resolved.gaps)

    def _resolve(
        self, targets: Iterable[str], grid: str | None, ladder_grid: str | None, at: dt.datetime, *, climb: bool
    ) -> Resolved:
        staff: list[str] = []
        gaps: list[str] = []
        standing = ladder_grid if ladder_grid is not None else grid
        for target in targets:
            kind, _, name = target.partition(":")
            if kind == "on_duty":
                staff += self._on_duty(grid, at, gaps)
            elif kind == "on_duty_parent":
                if standing is not None and climb:
                    standing = self._parents.get(standing) or standing
                staff += self._on_duty(standing, at, gaps)
            elif kind == "grid_staff":
                staff += [p.id for p in self._staff.values() if grid is not None and grid in p.grids]
            elif kind == "role":
                lineage = set() if grid is None else {grid, *self._ancestors(grid)}
                staff += [
                    p.id for p in self._staff.values() if name in p.roles and (grid is None or lineage & set(p.grids))
                ]
            elif kind == "staff" and name in self._staff:
                staff.append(name)
        return Resolved(list(dict.fromkeys(staff)), standing, gaps)

    def _on_duty(self, grid: str | None, at: dt.datetime, gaps: list[str]) -> list[str]:
        if grid is None or grid not in self._parents:
            return []
        answered, staff = self._roster.on_duty_climbing(grid, at)
        if answered != grid:
            gaps.append(grid)  # nobody on duty there: the parent grid's duty was asked at once
        return staff

    def _ancestors(self, grid: str) -> list[str]:
        lineage: list[str] = []
        at = self._parents.get(grid)
        while at is not None and at not in lineage:
            lineage.append(at)
            at = self._parents.get(at)
        return lineage

    def may_handle(self, staff_id: str, grid: str | None, *, registry: str | None = None) -> bool:
        """Whether a staff member is responsible for ``grid`` (their grids include it or a grid above it); for a
        corrections registry's case, only with the ``corrections`` role."""
        person = self._staff.get(staff_id)
        if person is None:
            return False
        if registry is not None and registry in self._corrections and CORRECTIONS_ROLE not in person.roles:
            return False
        if grid is None:
            return True
        return bool({grid, *self._ancestors(grid)} & set(person.grids))


def corrections_route_warnings(config: GridwatchConfig) -> list[tuple[KeyPath, str]]:
    """`config check` warnings: every route target that may take a corrections registry's alert and may reach
    staff without the ``corrections`` role (such targets are narrowed to that role when they resolve)."""
    corrections = [r.name for r in config.registries if r.corrections]
    if not corrections:
        return []
    with_role = {p.id for p in config.staff if CORRECTIONS_ROLE in p.roles}
    warnings: list[tuple[KeyPath, str]] = []

    def walk(routes: Sequence[RouteConfig], prefix: KeyPath, inherited: Sequence[str] | None) -> None:
        for i, route in enumerate(routes):
            loc: KeyPath = (*prefix, i)
            registries = route.match.registry
            taken = [name for name in corrections if registries is None or name in registries]
            if not taken:
                continue
            notify = route.notify if route.notify is not None else inherited
            targets: list[tuple[KeyPath, str]] = []
            if route.notify is not None:
                targets += [((*loc, "notify", j), t) for j, t in enumerate(route.notify)]
            elif inherited is None and not route.routes:
                targets.append(((*loc,), "on_duty"))  # the default first notification
            for k, step in enumerate(route.escalate or []):
                targets += [((*loc, "escalate", k, "notify", j), t) for j, t in enumerate(step.notify)]
            for where, target in targets:
                kind, _, name = target.partition(":")
                if (kind == "role" and name == CORRECTIONS_ROLE) or (kind == "staff" and name in with_role):
                    continue
                warnings.append(
                    (
                        where,
                        f"{target} may notify staff without the role {CORRECTIONS_ROLE!r}: alerts of the corrections "
                        f"registr{'y' if len(taken) == 1 else 'ies'} {', '.join(taken)} reach only staff with that "
                        f"role, so this target is narrowed to them (write role:{CORRECTIONS_ROLE} to say so)",
                    )
                )
            walk(route.routes, (*loc, "routes"), notify)

    walk(config.routes, ("routes",), None)
    return warnings
