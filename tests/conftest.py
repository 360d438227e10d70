"""Shared fixtures: a real database per test session, a fresh data folder per test, an app.

The database engine is chosen by ``ROMSHELF_TEST_BACKEND`` (``sqlite`` default, ``postgres``,
``mariadb``); the server engines need ``ROMSHELF_TEST_POSTGRES_URL`` / ``ROMSHELF_TEST_MARIADB_URL``
(a URL of the server; the suite creates and drops its own uniquely named database on it, so
several runs can share one server). ``scripts/test`` runs the suite once per configured engine.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import UserFactory
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

import romshelf.models  # noqa: F401 - every table
from romshelf.app import create_app
from romshelf.config import Settings
from romshelf.core import migrate
from romshelf.core.context import AppContext
from romshelf.core.db import Base, Database

BACKEND = os.environ.get("ROMSHELF_TEST_BACKEND", "sqlite").lower()


def pytest_report_header(config: pytest.Config) -> str:
    return f"romshelf test database backend: {BACKEND}"


def _server_url(env: str, default_db: str) -> str:
    url = os.environ.get(env)
    if not url:
        pytest.exit(f"ROMSHELF_TEST_BACKEND={BACKEND} needs {env} (a URL of the server)", returncode=4)
    return url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'romshelf.db'}"
        return
    name = f"romshelf_test_{os.getpid()}_{secrets.token_hex(3)}"
    if BACKEND in ("postgres", "postgresql"):
        server = make_url(_server_url("ROMSHELF_TEST_POSTGRES_URL", "postgres"))
        admin = sa.create_engine(server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(False)
        finally:
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    if BACKEND in ("mariadb", "mysql"):
        server = make_url(_server_url("ROMSHELF_TEST_MARIADB_URL", "mysql"))
        admin = sa.create_engine(server.set(drivername="mysql+pymysql"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        try:
            yield server.set(drivername="mysql+pymysql", database=name).render_as_string(False)
        finally:
            with admin.connect() as c:
                c.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
            admin.dispose()
        return
    pytest.exit(f"unknown ROMSHELF_TEST_BACKEND {BACKEND!r}", returncode=4)


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url, pool_size=5)
    migrate.upgrade(db)
    yield db
    db.dispose()


def _clean(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.write_engine.begin() as conn:
        inspector_tables = set(sa.inspect(conn).get_table_names())
        extra = sorted(inspector_tables - set(tables) - {"alembic_version"})
        if db.engine_name == "postgresql":
            names = ", ".join(f'"{t}"' for t in tables + extra)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return
        if db.engine_name == "mysql":
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=0"))
        for t in extra + tables:
            conn.execute(sa.text(f"DELETE FROM {conn.dialect.identifier_preparer.quote(t)}"))
        if db.engine_name == "mysql":
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=1"))


@pytest.fixture
def db(database: Database) -> Database:
    """The migrated test database, emptied before the test."""
    _clean(database)
    return database


@pytest.fixture
def settings(tmp_path: Path, database: Database) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database.url,
        auto_migrate=False,
        secret_key="test-secret-key-" + "x" * 32,
        argon2_time_cost=1,
        argon2_memory_cost_kib=64,
        jobs_immediate=True,
        public_url="http://testserver",
    )


@pytest.fixture
def ctx(settings: Settings, db: Database) -> Iterator[AppContext]:
    context = AppContext.create(settings, db=db)
    yield context


@pytest.fixture
def app(ctx: AppContext):  # type: ignore[no-untyped-def]
    return create_app(ctx=ctx)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        yield c


@pytest.fixture
def users(ctx: AppContext) -> UserFactory:
    """Create users and credentials: ``users.admin()``, ``users.make("bob", role="viewer")``,
    ``users.headers(user)`` (Bearer client token with all the user's scopes),
    ``users.headers(user, scopes=[...])``, ``users.basic(user)``."""
    return UserFactory(ctx)
