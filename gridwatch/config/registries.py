"""`registries:` section: watchlists, each with its purpose, legal basis and retention."""

from __future__ import annotations

from pydantic import Field

from gridwatch.config.base import Identifier, StrictModel


class RegistryConfig(StrictModel):
    name: Identifier = Field(description="Registry name.")
    purpose: str = Field(min_length=3, max_length=500, description="Why this registry exists.")
    legal_basis: str = Field(min_length=3, max_length=500, description="The legal basis of the processing.")
    retention_days: int = Field(
        ge=1, le=3650, description="Entries expire this many days after enrolment unless renewed."
    )
    threshold: float = Field(
        default=0.45, ge=0.0, le=1.0, description="Cosine similarity at or above which a face matches."
    )
    sources: list[Identifier] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description='Cameras/gates searched against this registry; "*" means all.',
    )
