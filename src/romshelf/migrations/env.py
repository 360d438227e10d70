"""Alembic environment: one migration history for SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import romshelf.models  # noqa: F401 - registers every table on Base.metadata
from romshelf.core.db import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE via copy on SQLite
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("romshelf runs migrations through romshelf.core.migrate (romshelf db upgrade)")
_run(connection)
