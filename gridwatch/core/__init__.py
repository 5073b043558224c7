"""The contracts every stage shares: events, interfaces, config models, redaction, storage, audit.

Nothing here imports a stage (``ingest``, ``recognition``, ``rules``, ``notifier``), the
composition (``gridwatch`` outside ``core``) or a web framework; ``make lint`` checks it.
"""
