"""Database engine, sessions and column types shared by every domain.

One code path for SQLite (embedded default), PostgreSQL and MariaDB/MySQL.

Sessions
--------
``Database.session(write=...)`` hands out SQLAlchemy sessions. On SQLite a *write* session opens
its transaction with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout
instead of failing with "database is locked" when a read transaction tries to upgrade; read
sessions use plain deferred transactions so many readers run side by side (WAL mode). On the
server engines both kinds are the same.

Rule for every endpoint and service: never keep a transaction open while streaming bytes
(uploads, downloads, hashing). Read what you need, commit or close, stream, then write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from romshelf.core.timeutil import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored as naive UTC (microsecond precision on every engine), returned aware.

    MariaDB's DATETIME defaults to whole seconds; saves and sync decisions compare timestamps,
    so precision is forced to microseconds there.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=False))

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; use romshelf.core.timeutil")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False)


def engine_name(url: str) -> str:
    """'sqlite', 'postgresql' or 'mysql' (MariaDB reports as mysql)."""
    backend = make_url(url).get_backend_name()
    return "mysql" if backend == "mariadb" else backend


def _normalise_url(url: str) -> str:
    """Pick the drivers romshelf ships with when a URL names only the engine."""
    u = make_url(url)
    backend, driver = u.get_backend_name(), u.get_driver_name()
    if backend == "postgresql" and driver in ("", "psycopg2") and "+" not in url.split("://", 1)[0]:
        u = u.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb") and "+" not in url.split("://", 1)[0]:
        u = u.set(drivername=f"{backend}+pymysql")
    if u.get_backend_name() in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    return u.render_as_string(hide_password=False)


def _make_engine(url: str, *, immediate: bool = False, pool_size: int = 10) -> Engine:
    url = _normalise_url(url)
    name = engine_name(url)
    if name == "sqlite":
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control away from the sqlite3 module so BEGIN is ours.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        begin_sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql(begin_sql)

        return engine
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": pool_size, "max_overflow": pool_size}
    if name == "mysql":
        kwargs["pool_recycle"] = 3600
        kwargs["isolation_level"] = "READ COMMITTED"
    return sa.create_engine(url, **kwargs)


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = _normalise_url(url)
        self.engine_name = engine_name(self.url)
        self.engine = _make_engine(self.url, pool_size=pool_size)
        if self.engine_name == "sqlite":
            self.write_engine = _make_engine(self.url, immediate=True, pool_size=pool_size)
        else:
            self.write_engine = self.engine
        self._read = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False, autoflush=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine_name == "sqlite"

    def session(self, *, write: bool = True) -> Session:
        return (self._write if write else self._read)()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as s:
            yield s

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session that commits on success and rolls back on error."""
        with self._write() as s, s.begin():
            yield s

    @contextlib.contextmanager
    def lock(self, name: str, *, timeout: float = 30.0) -> Iterator[None]:
        """A named lock shared by every process using this database (replicas included).

        PostgreSQL: an advisory lock; MariaDB: GET_LOCK; SQLite: an flock on a file beside the
        database. Held on its own connection, so sessions may commit freely inside the block.
        ``timeout=0`` tries once. Raises :class:`LockTimeout` if the lock is not obtained.
        """
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        if self.engine_name == "sqlite":
            with _sqlite_file_lock(self.url, key, timeout):
                yield
            return
        with self.write_engine.connect() as conn:
            if self.engine_name == "postgresql":
                deadline = time.monotonic() + timeout
                while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                    if time.monotonic() >= deadline:
                        conn.rollback()
                        raise LockTimeout(name)
                    time.sleep(0.05)
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
            else:
                # GET_LOCK names are server-wide (PostgreSQL's advisory locks are per database):
                # include the database, or two romshelf databases on one server block each other.
                scope = f"{make_url(self.url).database}:{name}".encode()
                lock_name = f"romshelf:{hashlib.sha256(scope).hexdigest()[:40]}"
                got = conn.execute(
                    sa.text("SELECT GET_LOCK(:n, :t)"), {"n": lock_name, "t": max(0, int(timeout))}
                ).scalar()
                conn.commit()
                if got != 1:
                    raise LockTimeout(name)
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": lock_name})
                    conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()


class LockTimeout(Exception):
    """A named lock (:meth:`Database.lock`) could not be obtained in time."""


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def _sqlite_file_lock(url: str, key: int, timeout: float) -> Iterator[None]:
    db_path = make_url(url).database or "romshelf.db"
    lock_path = f"{db_path}.lock-{key & 0xFFFFFFFF:08x}"
    # flock is per open file, so threads of one process also exclude each other; a thread lock
    # in front avoids spinning on the file between threads.
    with _thread_locks_guard:
        tlock = _thread_locks.setdefault(lock_path, threading.Lock())
    acquired = tlock.acquire(timeout=timeout) if timeout > 0 else tlock.acquire(blocking=False)
    if not acquired:
        raise LockTimeout(lock_path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(lock_path) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    finally:
        tlock.release()


def is_unique_violation(exc: BaseException) -> bool:
    """True if a DBAPI error is a unique/primary-key violation, on any engine."""
    orig = getattr(exc, "orig", exc)
    name = type(orig).__name__
    text = str(orig).lower()
    if name == "UniqueViolation":  # psycopg
        return True
    if "unique constraint failed" in text:  # sqlite
        return True
    args = getattr(orig, "args", ())
    return bool(args and args[0] == 1062)  # MySQL/MariaDB duplicate entry
