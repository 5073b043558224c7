"""`zones:` section: named groups of cameras and gates (an estate's north side, a building's lobbies).

Per-person conditions refer to zones ("allowed only in estate-north"), so that a person's entry does
not list camera ids, and a camera added to a zone applies to every person allowed there.
"""

from __future__ import annotations

from pydantic import Field

from gridwatch.core.config.base import Identifier, SourceRef, StrictModel


class ZoneConfig(StrictModel):
    id: Identifier = Field(description="Zone id, used in per-person conditions (`--zone`) and rules.")
    sources: list[SourceRef] = Field(
        min_length=1,
        max_length=1000,
        description='Camera and gate ids in this zone. "*" is not allowed: a zone names its places.',
    )
    grid: Identifier | None = Field(
        default=None, description="Grid (area of responsibility) of the zone; required once `grids:` are declared."
    )
