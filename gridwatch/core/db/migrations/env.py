"""Alembic environment: migrations run on the connection (and in the transaction) the caller gives.

``gridwatch.core.db.migrate.upgrade(engine)`` passes its connection in ``config.attributes``. For
development with the ``alembic`` command (e.g. ``alembic -c gridwatch/core/db/alembic.ini -x
url=sqlite:///tmp/dev.sqlite3 revision --autogenerate -m "..."``) the URL comes from ``-x url=``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gridwatch.core.db.engine import create_engine
from gridwatch.core.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=... (see gridwatch/core/db/migrations/env.py)")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()
