"""The whole configuration: one section per module, cross-references checked here."""

from __future__ import annotations

from pydantic import Field, model_validator

from gridwatch.config.base import StrictModel
from gridwatch.config.cameras import CameraConfig
from gridwatch.config.model import ModelConfig
from gridwatch.config.notifier import NotifierConfig
from gridwatch.config.registries import RegistryConfig
from gridwatch.config.rules import RuleConfig
from gridwatch.config.service import ServiceConfig


class GridwatchConfig(StrictModel):
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="Service settings.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Face model pack and quality gate.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras.")
    registries: list[RegistryConfig] = Field(default_factory=list, description="Watchlist registries.")
    rules: list[RuleConfig] = Field(default_factory=list, description="Warning rules.")
    notifier: NotifierConfig = Field(default_factory=NotifierConfig, description="Alert delivery.")

    @model_validator(mode="after")
    def _references(self) -> GridwatchConfig:
        _unique("cameras", [c.id for c in self.cameras])
        _unique("registries", [r.name for r in self.registries])
        _unique("rules", [r.id for r in self.rules])
        sources = {c.id for c in self.cameras}
        registries = {r.name for r in self.registries}
        for reg in self.registries:
            _known(f"registry {reg.name!r} sources", reg.sources, sources)
        for rule in self.rules:
            _known(f"rule {rule.id!r} registries", rule.registries, registries, wildcard=False)
            _known(f"rule {rule.id!r} sources", rule.sources, sources)
        return self

    def source_ids(self) -> set[str]:
        return {c.id for c in self.cameras}


def _unique(section: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"{section}: duplicate id {item!r}")
        seen.add(item)


def _known(what: str, names: list[str], known: set[str], *, wildcard: bool = True) -> None:
    unknown = [n for n in names if n not in known and not (wildcard and n == "*")]
    if unknown:
        raise ValueError(f"{what}: unknown {', '.join(map(repr, unknown))} (known: {sorted(known) or 'none'})")
