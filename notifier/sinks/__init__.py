"""Alert sinks: each delivers one alert or raises (the outbox retries what raised)."""

from notifier.sinks.console import ConsoleSink
from notifier.sinks.jsonl import JsonlSink
from notifier.sinks.kafka import KafkaSink, cloudevent_headers

__all__ = ["ConsoleSink", "JsonlSink", "KafkaSink", "cloudevent_headers"]
