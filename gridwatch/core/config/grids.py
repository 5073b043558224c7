"""`grids:` section: areas of responsibility. ``parent`` makes the escalation ladder (grid → community → street).

Every camera, gate and zone names its grid once grids are declared; an alert belongs to the grid of
the source that saw the person, and climbs this tree when nobody there answers.
"""

from __future__ import annotations

from pydantic import Field

from gridwatch.core.config.base import Identifier, StrictModel


class GridConfig(StrictModel):
    id: Identifier = Field(description="Grid id, named by cameras, gates, zones, staff, duty rosters and routes.")
    name: str = Field(min_length=1, max_length=200, description='Display name ("Grid A1", "Riverside community").')
    parent: Identifier | None = Field(
        default=None,
        description="The grid one level up (community, street office); unset for the top of a ladder.",
    )
