"""Alert delivery: a durable outbox in front of the sinks (console, JSON-lines file, Kafka).

``Notifier.submit()`` writes an alert to the SQLite outbox before anything else; one delivery task
per sink then hands it to that sink and records the delivery, so each sink gets each alert once and
a sink that is down (Kafka) neither loses alerts nor holds up the others. Delivery is at-least-once
in the face of crashes: consumers deduplicate by ``alert_id`` (the CloudEvents ``ce_id`` on Kafka).
"""
