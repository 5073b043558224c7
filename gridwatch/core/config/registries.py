"""`registries:` section: watchlists, each with its purpose, legal basis and retention."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, model_validator

from gridwatch.core.config.base import Identifier, SourceRef, StrictModel


class CalibrationEvidence(StrictModel):
    """Where a registry's threshold came from; written by `gridwatch calibrate`, kept for auditors."""

    data: str | None = Field(
        default=None, max_length=500, description="The labelled data the report was made from (path or name)."
    )
    mated: int | None = Field(default=None, ge=0, le=10**9, description="Mated searches in the report.")
    nonmated: int | None = Field(default=None, ge=0, le=10**9, description="Non-mated searches in the report.")
    date: dt.date | None = Field(default=None, description="Day the threshold was set.")
    target_fpir: float | None = Field(
        default=None, gt=0.0, le=1.0, description="False-positive identification rate the threshold aims at."
    )
    fnir: float | None = Field(
        default=None, ge=0.0, le=1.0, description="False-negative identification rate the report saw there."
    )
    model: str | None = Field(
        default=None, max_length=200, description="Model pack (name@hash) the scores were computed with."
    )
    report: str | None = Field(default=None, max_length=1000, description="Path of the evaluation report.")


class EvidenceConfig(StrictModel):
    """What a registry keeps to let an operator judge its matches; sealed at rest with ``GRIDWATCH_DATA_KEY``."""

    keep: bool = Field(
        default=False,
        description=(
            "Store the matched face crop and its frame of every match (never an unmatched face), "
            "encrypted; needs GRIDWATCH_DATA_KEY at start."
        ),
    )
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="Stored evidence is purged this many days after capture."
    )
    reference_photo: bool = Field(
        default=False,
        description=(
            "Keep the enrolment photo, encrypted, to show beside the captured face; needs GRIDWATCH_DATA_KEY at start."
        ),
    )

    @property
    def needs_key(self) -> bool:
        """True when this registry stores any image, so the service needs a data key to start."""
        return self.keep or self.reference_photo


# Community Corrections Law art. 29: each approval of electronic monitoring lasts at most three months.
MAX_APPROVAL_DAYS = 92
# The staff role that alone receives the alerts of a corrections registry (``staff[].roles``).
CORRECTIONS_ROLE = "corrections"

RegistryKind = Literal["watchlist", "corrections"]


class RegistryConfig(StrictModel):
    name: Identifier = Field(description="Registry name.")
    kind: RegistryKind = Field(
        default="watchlist",
        description=(
            "`corrections` (Community Corrections Law art. 29): every entry needs an approval record "
            "(approval_doc, approver, situation_code 1-5, start, end <= start + 92 days) and is matched only "
            "within it; an extension is a new approval; alerts go only to staff with the `corrections` role."
        ),
    )
    purpose: str = Field(min_length=3, max_length=500, description="Why this registry exists.")
    legal_basis: str = Field(min_length=3, max_length=500, description="The legal basis of the processing.")
    retention_days: int = Field(
        ge=1, le=3650, description="Entries expire this many days after enrolment unless renewed."
    )
    threshold: Annotated[
        float,
        WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0.0, "maximum": 1.0}, {"const": "auto"}]}),
    ] = Field(
        default=0.45,
        ge=0.0,
        le=1.0,
        description=(
            "Cosine similarity at or above which a face matches; or `auto`: solved from the model pack's "
            "calibration so that size x faces_per_day x FMR(threshold) <= max_false_alerts_per_day, and "
            "solved again when the registry's size changes by more than 10%."
        ),
    )
    max_false_alerts_per_day: float | None = Field(
        default=None,
        gt=0.0,
        le=1e6,
        description="With `threshold: auto`: false matches a day this registry may make (0.1: one in ten days).",
    )
    faces_per_day: float | None = Field(
        default=None,
        gt=0.0,
        le=1e10,
        description=(
            "Faces searched against this registry a day; unset: estimated as the analysed frames a day of the "
            "cameras it covers (one face per frame; gates are not counted). Used by `threshold: auto` and by "
            "`config check`'s expected false alerts."
        ),
    )
    expected_size: int | None = Field(
        default=None,
        ge=0,
        le=10**9,
        description=(
            "Templates you plan to enrol; the operating point uses the larger of this and the enrolled count, "
            "so that a registry that is still being filled is not solved for its first few entries."
        ),
    )
    margin: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description=(
            "A match also needs the best identity to beat the second-best identity by this much "
            "(cosine); otherwise the face is unknown. Vacuous with a single enrolled identity."
        ),
    )
    calibration: CalibrationEvidence | None = Field(
        default=None, description="Evidence for `threshold`, recorded by `gridwatch calibrate`."
    )
    sources: list[SourceRef] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description='Cameras/gates searched against this registry; "*" means all.',
    )
    confirmations: int = Field(
        default=1,
        ge=1,
        le=2,
        description=(
            "2: an alert of this registry is held as pending_confirmation and reaches staff only after two "
            "different operators confirmed the match (high-risk registries, EU AI Act Art. 14(5))."
        ),
    )
    evidence: EvidenceConfig = Field(
        default_factory=EvidenceConfig,
        description="Evidence kept for this registry's matches (encrypted at rest); none by default.",
    )

    @model_validator(mode="before")
    @classmethod
    def _auto_threshold(cls, data: Any) -> Any:
        """`threshold: auto` needs a target; a target beside a fixed threshold would be silently ignored."""
        if not isinstance(data, dict):
            return data
        target = data.get("max_false_alerts_per_day")
        if data.get("threshold") == "auto":
            if target is None:
                raise ValueError("threshold: auto needs max_false_alerts_per_day (the false matches a day allowed)")
            # Until it is solved (by the registries at load), the default stands in.
            return {k: v for k, v in data.items() if k != "threshold"}
        if "threshold" in data and target is not None:
            raise ValueError(
                "max_false_alerts_per_day is only used with threshold: auto; remove it or write threshold: auto"
            )
        return data

    @property
    def corrections(self) -> bool:
        """True for a corrections registry: entries need approvals, alerts reach the `corrections` role only."""
        return self.kind == "corrections"

    @property
    def auto_threshold(self) -> bool:
        """True when the threshold is solved from the calibration (`threshold: auto`)."""
        return self.max_false_alerts_per_day is not None
