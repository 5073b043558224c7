"""Drivers of the stage transport (``gridwatch.core.transport``), chosen by ``service.transport.driver``."""

from __future__ import annotations

from gridwatch.core.config.transport import TransportConfig
from gridwatch.core.transport import Transport


def transport_for(config: TransportConfig, *, service_name: str) -> Transport:
    """The configured driver; nothing is connected until ``start()``."""
    if config.driver == "kafka":
        # Imported here: the embedded default never loads the Kafka client.
        from gridwatch.transport.kafka import KafkaTransport

        return KafkaTransport(config.kafka, service_name=service_name)
    from gridwatch.transport.inprocess import InProcessTransport

    return InProcessTransport(queue_size=config.queue_size)
