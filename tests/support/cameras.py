"""The lawful-use declarations every camera of a test carries (see ``gridwatch.core.config.cameras``)."""

from __future__ import annotations

import datetime as dt

LOCATION_CLASS = "lobby"
SIGNAGE_CHECKED = dt.date(2026, 1, 15)
