"""The operator console: accounts, its own HTTP listener and API, the live feed, the static pages."""
