"""`staff:` section: the people gridwatch can notify, their roles, their grids and their channels.

Contact details are personal data and secrets: every value under ``contact`` must be a ``${ENV}``
placeholder (the loader refuses literals), like the URLs and signing secrets of channels.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from gridwatch.core.config.base import Identifier, StrictModel


def _unique(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError("an item is listed twice")
    return items


class StaffConfig(StrictModel):
    id: Identifier = Field(description="Staff id: the key of their push messages and the `by` of what they handle.")
    name: str = Field(min_length=1, max_length=200, description="Display name.")
    roles: list[Identifier] = Field(
        default_factory=list,
        max_length=20,
        description="Free-form role names that routes target as `role:<name>` (grid_worker, community_officer, ...).",
    )
    grids: list[Identifier] = Field(
        default_factory=list,
        max_length=200,
        description="Grids this person is responsible for (`grid_staff`; `role:` targets within the alert's grid "
        "and the grids above it).",
    )
    channels: list[Identifier] = Field(
        min_length=1, max_length=10, description="Ids of `channels:` entries this person is notified through."
    )
    contact: dict[Identifier, str] = Field(
        default_factory=dict,
        max_length=10,
        description="Contact details for channels that need them (phone, user id): ${ENV} placeholders only.",
    )

    _unique_lists = field_validator("roles", "grids", "channels")(_unique)
