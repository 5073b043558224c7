"""gridwatch: watchlist alerts for community governance control rooms.

The composition package: CLI, config loading, wiring of the stages and the HTTP app.
The stages live beside it in ``ingest``, ``recognition``, ``rules`` and ``notifier``.
"""

__version__ = "0.1.0"
