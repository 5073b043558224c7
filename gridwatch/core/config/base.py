"""The strict base of every config section."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Ids of cameras, gates, registries and rules: short, log-safe, usable as Kafka keys.
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]

# A reference to a camera/gate id, or "*" for all of them.
SourceRef = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^(\*|[A-Za-z0-9][A-Za-z0-9_.-]*)$"),
]


class StrictModel(BaseModel):
    """Unknown keys are errors; values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
