"""Run Alembic migrations programmatically (start-up, ``romshelf db upgrade``, tests).

Several replicas may start at once: on PostgreSQL and MariaDB the upgrade runs under a
database-wide advisory lock, so exactly one of them migrates and the others wait for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from romshelf.core.db import Database

log = logging.getLogger("romshelf.migrate")
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 7_466_836_101  # arbitrary, stable advisory-lock id for "romshelf migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.write_engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    engine = db.write_engine
    with engine.connect() as conn:
        if db.engine_name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        elif db.engine_name == "mysql":
            conn.execute(text("SELECT GET_LOCK('romshelf_migrate', 600)"))
        conn.commit()
        try:
            before = MigrationContext.configure(conn).get_current_revision()
            conn.commit()
            command.upgrade(alembic_config(conn), revision)
            conn.commit()
            after = MigrationContext.configure(conn).get_current_revision()
            conn.commit()
            if before != after:
                log.info("database migrated from %s to %s", before or "empty", after)
        finally:
            if db.engine_name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()
            elif db.engine_name == "mysql":
                conn.execute(text("SELECT RELEASE_LOCK('romshelf_migrate')"))
                conn.commit()


def downgrade(db: Database, revision: str) -> None:
    with db.write_engine.connect() as conn:
        command.downgrade(alembic_config(conn), revision)
        conn.commit()
