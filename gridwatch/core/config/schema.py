"""JSON Schema of the config, so that editors can complete and check it (``gridwatch config schema``).

The schema describes the joined document. Every top-level section has a default, so each file of a
split config is valid against it too. ``${ENV}`` placeholders in non-string fields (e.g. a port) are
flagged by editors though the loader accepts them: the value is checked after substitution.
"""

from __future__ import annotations

from typing import Any

from gridwatch.core.config.root import GridwatchConfig

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``GridwatchConfig``, as accepted on input."""
    schema = GridwatchConfig.model_json_schema(mode="validation")
    schema["title"] = "gridwatch configuration"
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}
