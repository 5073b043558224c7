"""`rules:` section: warning models. Rules only notify people; nothing acts on a person.

Six kinds, told apart by ``kind``. Every kind may be armed by a schedule (``active``: outside it the
rule makes no alert) and has a cooldown per (rule, person) that starts when an alert was delivered.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gridwatch.core.config.base import Identifier, SourceRef, StrictModel
from gridwatch.core.events import Severity

DAY_S = 86400


class _RuleBase(StrictModel):
    id: Identifier = Field(description="Rule id, part of every alert it makes.")
    sources: list[SourceRef] = Field(
        default_factory=lambda: ["*"], min_length=1, description='Cameras and gates the rule watches; "*" = all.'
    )
    severity: Severity = Field(default=Severity.WARNING, description="Severity of the alerts.")
    cooldown_s: int = Field(
        default=600,
        ge=0,
        le=7 * DAY_S,
        description="No new alert for the same person and rule within this long after one was delivered.",
    )
    active: Identifier | None = Field(
        default=None,
        description="Id of a schedule (`schedules:`); outside it the rule makes no alert. Unset = always armed.",
    )

    def registry_refs(self) -> tuple[str, list[str]]:
        """The key and the registries this rule names (checked against `registries:`)."""
        return ("registries", [])


class _PersonRuleBase(_RuleBase):
    registries: list[Identifier] = Field(min_length=1, description="Registries the rule applies to.")

    def registry_refs(self) -> tuple[str, list[str]]:
        return ("registries", list(self.registries))


class SeenRuleConfig(_PersonRuleBase):
    kind: Literal["seen"] = Field(description="A person of the registries is sighted at the sources.")


class NotSeenRuleConfig(_PersonRuleBase):
    kind: Literal["not_seen"] = Field(
        description="A person of the registries has not been sighted at their home sources for `after_s`."
    )
    after_s: int = Field(
        ge=10, le=90 * DAY_S, description="Absence that makes an alert, in seconds (e.g. 172800 for 48 h)."
    )
    repeat_s: int | None = Field(
        default=None,
        ge=60,
        le=90 * DAY_S,
        description="While the absence lasts, alert again every this many seconds. Unset = once per absence.",
    )
    pause_timers_when_inactive: bool = Field(
        default=False,
        description=(
            "With `active`: true = time outside the schedule does not count towards `after_s`; "
            "false = the absence counts all the time and an alert due outside the schedule waits for it."
        ),
    )


class OutsideAreaRuleConfig(_PersonRuleBase):
    kind: Literal["outside_area"] = Field(description="A person is sighted at a source outside their permitted zones.")
    allowed_zones: list[Identifier] = Field(
        default_factory=list,
        description="Zones (`zones:`) the persons may be in, unless their entry names its own `allowed_zones`.",
    )


class OutsideHoursRuleConfig(_PersonRuleBase):
    kind: Literal["outside_hours"] = Field(description="A person is sighted outside the hours they may be there.")
    allowed_hours: Identifier | None = Field(
        default=None,
        description="Schedule id of the permitted hours, unless the person's entry names its own `allowed_hours`.",
    )


class FrequencyRuleConfig(_PersonRuleBase):
    kind: Literal["frequency"] = Field(
        description="The same person is sighted at least `count` times within `within_s`."
    )
    count: int = Field(ge=2, le=1000, description="Passes that make an alert.")
    within_s: int = Field(ge=60, le=30 * DAY_S, description="The sliding window the passes are counted in.")
    zones: list[Identifier] = Field(
        default_factory=list, description="Zones whose sources count too, besides `sources`."
    )
    pass_gap_s: int = Field(
        default=60,
        ge=1,
        le=3600,
        description=(
            "Sightings of one person at one camera closer than this are one pass (when they carry no track id). "
            "Every gate event is a pass."
        ),
    )


class StrangerAtGateRuleConfig(_RuleBase):
    kind: Literal["stranger_at_gate"] = Field(
        description="A face that matches none of `known_registries` tries the sources `count` times."
    )
    known_registries: list[Identifier] = Field(
        min_length=1, description="Registries of the people expected at the gates (e.g. residents)."
    )
    count: int = Field(default=3, ge=2, le=1000, description="Attempts that make an alert.")
    within_s: int = Field(default=600, ge=10, le=DAY_S, description="The window the attempts are counted in.")

    def registry_refs(self) -> tuple[str, list[str]]:
        return ("known_registries", list(self.known_registries))


RuleConfig = Annotated[
    SeenRuleConfig
    | NotSeenRuleConfig
    | OutsideAreaRuleConfig
    | OutsideHoursRuleConfig
    | FrequencyRuleConfig
    | StrangerAtGateRuleConfig,
    Field(discriminator="kind"),
]
