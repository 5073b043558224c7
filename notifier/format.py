"""The one-line human-readable form of an alert (console sink and ``alerts tail``)."""

from __future__ import annotations

import datetime as dt

from gridwatch.core.events import Alert


def utc_iso(at: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; naive datetimes are taken as UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def format_alert_line(alert: Alert) -> str:
    """Time, severity, rule, registry, person, source, similarity and the explanation on one line."""
    explanation = " ".join(alert.explanation.split())  # one alert, one line, whatever the rule wrote
    return (
        f"ALERT {utc_iso(alert.created_at)} {alert.severity.value.upper():<8} rule={alert.rule} "
        f"registry={alert.registry} person={alert.person_id} source={alert.source} "
        f"similarity={alert.similarity:.3f} id={alert.alert_id} | {explanation}"
    )
