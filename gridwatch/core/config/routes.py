"""`routes:` section: who gets an alert, in the style of Alertmanager's routing tree, plus acknowledgement
and an escalation ladder.

The routes are tried in order; the first whose ``match`` fits the alert decides, unless it says
``continue: true`` (then the next ones are tried too, and every matching route notifies). A route
with child ``routes`` tries them first; a child leaves unset what it takes from its parent. An alert
that no route matches is counted and notifies nobody (give a last route without ``match`` to catch all).

Targets (``notify``, each escalation step's ``notify``):
- ``on_duty``: whoever is on duty for the alert's grid now; a gap climbs to the parent grid's duty;
- ``on_duty_parent``: the duty of the grid one level above the one the case has reached (each use in a
  later step climbs one more level: grid → community → street);
- ``grid_staff``: every staff member whose ``grids`` list the alert's grid;
- ``role:<r>``: staff with role ``r`` responsible for the alert's grid or a grid above it;
- ``staff:<id>``: that person.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from gridwatch.core.config.base import Identifier, StrictModel
from gridwatch.core.events import Severity

DAY_S = 86400
TARGET_PATTERN = (
    r"^(on_duty|on_duty_parent|grid_staff|role:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}|staff:[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$"
)

Target = Annotated[
    str, Field(pattern=TARGET_PATTERN, description="on_duty, on_duty_parent, grid_staff, role:R, staff:ID")
]


def _as_list(value: object) -> object:
    """``registry: welfare`` is ``registry: [welfare]``."""
    return [value] if isinstance(value, str) else value


class MatchConfig(StrictModel):
    """Every key given must fit (each lists the values it accepts); an empty match fits every alert."""

    registry: Annotated[list[Identifier], BeforeValidator(_as_list)] | None = Field(
        default=None, max_length=100, description="Registries of the alert's person."
    )
    rule: Annotated[list[Identifier], BeforeValidator(_as_list)] | None = Field(
        default=None, max_length=100, description="Rule ids."
    )
    severity: Annotated[list[Severity], BeforeValidator(_as_list)] | None = Field(
        default=None, max_length=3, description="Severities (info, warning, critical)."
    )
    grid: Annotated[list[Identifier], BeforeValidator(_as_list)] | None = Field(
        default=None,
        max_length=100,
        description="Grids; an alert of a grid below one of these fits too (a community matches its grids).",
    )


class EscalationStepConfig(StrictModel):
    after_s: int = Field(
        ge=1,
        le=7 * DAY_S,
        description="Seconds after the first notification at which, if nobody acknowledged, this step runs.",
    )
    notify: list[Target] = Field(min_length=1, max_length=20, description="Targets of this step (only these).")


class RouteConfig(StrictModel):
    match: MatchConfig = Field(default_factory=MatchConfig, description="Which alerts this route takes.")
    notify: list[Target] | None = Field(
        default=None, max_length=20, description="Targets of the first notification (inherited by child routes)."
    )
    group_wait_s: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description=(
            "Wait this long before the first notification (default 0); an alert handled meanwhile rings nobody."
        ),
    )
    repeat_s: int | None = Field(
        default=None,
        ge=30,
        le=7 * DAY_S,
        description="Notify the same people again this often while unacknowledged; unset: never.",
    )
    require_ack: bool | None = Field(
        default=None, description="The case waits for an acknowledgement (needed for repeat_s and escalate)."
    )
    escalate: list[EscalationStepConfig] | None = Field(
        default=None,
        max_length=10,
        description="Escalation ladder; each step runs if nobody acknowledged by its after_s.",
    )
    continue_: bool = Field(
        default=False, alias="continue", description="Go on to the next routes after this one matched."
    )
    routes: list[RouteConfig] = Field(
        default_factory=list,
        max_length=100,
        description="Child routes, tried first; they inherit what they leave unset.",
    )

    model_config = ConfigDict(extra="forbid", validate_assignment=True, serialize_by_alias=True)

    @field_validator("notify")
    @classmethod
    def _no_parent_first(cls, notify: list[str] | None) -> list[str] | None:
        if notify is not None and "on_duty_parent" in notify:
            raise ValueError("on_duty_parent belongs in an escalation step; the first notification goes to on_duty")
        return notify

    @model_validator(mode="after")
    def _ladder(self) -> RouteConfig:
        steps = self.escalate or []
        times = [step.after_s for step in steps]
        if times != sorted(set(times)):
            raise ValueError("escalation steps need strictly increasing after_s")
        if (steps or self.repeat_s is not None) and self.require_ack is False:
            raise ValueError("repeat_s and escalate need require_ack: true (without it, nothing stops them)")
        return self
