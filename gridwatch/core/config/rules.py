"""`rules:` section: warning models. Rules only notify people."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gridwatch.core.config.base import Identifier, SourceRef, StrictModel
from gridwatch.core.events import Severity


class SeenRuleConfig(StrictModel):
    id: Identifier = Field(description="Rule id, part of every alert it makes.")
    kind: Literal["seen"] = Field(description="A person of the registries is sighted at the sources.")
    registries: list[Identifier] = Field(min_length=1, description="Registries the rule applies to.")
    sources: list[SourceRef] = Field(default_factory=lambda: ["*"], min_length=1, description='"*" = all.')
    severity: Severity = Field(default=Severity.WARNING, description="Severity of the alerts.")
    cooldown_s: int = Field(
        default=600, ge=0, le=7 * 86400, description="No new alert for the same person and rule within this."
    )


RuleConfig = Annotated[SeenRuleConfig, Field(discriminator="kind")]
