"""Configuration: strict pydantic models, one module per section, and the YAML loader."""

from gridwatch.core.config.root import GridwatchConfig

__all__ = ["GridwatchConfig"]
