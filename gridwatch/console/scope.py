"""Who may see which alert: the object-level scope of a console user (OWASP API1).

- ``operator``: alerts whose grid is one of theirs or below one of theirs (``grids:`` parents);
- ``staff``: alerts their staff member was notified of;
- every other role: no alerts (the routes answer 403 before any scope applies).

The scope turns into the filters of ``Desk.list_cases``, so an alert out of scope is never loaded for
that user: not listed, not counted, not on the stream, and 404 by id (the same answer as an unknown id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gridwatch.console.accounts import User
from gridwatch.core.config.root import GridwatchConfig

ALERT_ROLES = ("operator", "staff")


def grids_below(config: GridwatchConfig, roots: Iterable[str]) -> set[str]:
    """``roots`` and every grid under one of them (only grids the config declares)."""
    children: dict[str, list[str]] = {}
    for grid in config.grids:
        if grid.parent is not None:
            children.setdefault(grid.parent, []).append(grid.id)
    known = {grid.id for grid in config.grids}
    found: set[str] = set()
    todo = [root for root in roots if root in known]
    while todo:
        grid_id = todo.pop()
        if grid_id in found:
            continue
        found.add(grid_id)
        todo.extend(children.get(grid_id, []))
    return found


@dataclass(frozen=True, slots=True)
class AlertScope:
    """Filters that restrict ``Desk.list_cases`` to what one user may see (``None``: no restriction)."""

    grids: frozenset[str] | None
    recipient: str | None
    nothing: bool = False

    @classmethod
    def of(cls, user: User, config: GridwatchConfig) -> AlertScope:
        if user.role == "operator":
            return cls(grids=frozenset(grids_below(config, user.grids)), recipient=None)
        if user.role == "staff" and user.staff_id is not None:
            return cls(grids=None, recipient=user.staff_id)
        return cls(grids=frozenset(), recipient=None, nothing=True)

    def grid_filter(self, wanted: str | None) -> frozenset[str] | None:
        """The grids to list: the scope's, narrowed to ``wanted`` when given."""
        if wanted is None:
            return self.grids
        if self.grids is None:
            return frozenset({wanted})
        return self.grids & {wanted}
