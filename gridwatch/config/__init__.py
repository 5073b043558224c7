"""Configuration: strict pydantic models, one module per section, and the YAML loader."""

from gridwatch.config.root import GridwatchConfig

__all__ = ["GridwatchConfig"]
