"""The gate source of a configured gate, chosen by its ``kind``.

Each dialect's module is imported only when a gate of that kind is configured, so a missing
optional dependency (``aiomqtt`` for MQTT terminals, say) affects that kind alone.
"""

from __future__ import annotations

import importlib
from typing import cast

from gridwatch.core.config.gates import GateConfig
from gridwatch.core.interfaces import GateEventHandler, GateSource, SerialWatermarks

# kind → (module, class); the modules are imported on first use.
SOURCES: dict[str, tuple[str, str]] = {
    "isapi_push": ("ingest.gates.isapi_push", "IsapiPushSource"),
    "isapi_stream": ("ingest.gates.isapi_stream", "IsapiStreamSource"),
    "dahua_stream": ("ingest.gates.dahua_stream", "DahuaStreamSource"),
    "mqtt": ("ingest.gates.mqtt", "MqttGateSource"),
}


# Kinds that read an event stream: they resume their event-history search from a saved serial watermark.
STREAM_KINDS = frozenset({"isapi_stream", "dahua_stream"})


class GateSourceUnavailable(RuntimeError):
    """The source of a gate kind cannot be loaded (usually: an optional dependency is missing)."""


def gate_source_for(
    config: GateConfig, on_event: GateEventHandler, *, watermarks: SerialWatermarks | None = None
) -> GateSource:
    """A new, not yet started source for ``config`` that awaits ``on_event`` for every face event.

    ``watermarks`` keep stream gates' serials across restarts (push kinds have the device resend instead).
    """
    try:
        module_name, class_name = SOURCES[config.kind]
    except KeyError:
        raise GateSourceUnavailable(f"gate {config.id}: no source for kind {config.kind!r}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise GateSourceUnavailable(
            f"gate {config.id}: kind {config.kind!r} needs {missing!r}, which cannot be imported ({exc})"
        ) from exc
    source_class = getattr(module, class_name)
    if config.kind in STREAM_KINDS:
        return cast(GateSource, source_class(config, on_event, watermarks=watermarks))
    return cast(GateSource, source_class(config, on_event))
