"""The application context: settings, database and storages, built once per process.

The FastAPI app keeps it on ``app.state.ctx``; the CLI, workers and tests build their own with
:func:`AppContext.create`. Services receive what they need from it explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from romshelf.config import Settings
from romshelf.core.db import Database
from romshelf.core.storage import Storages


@dataclass
class AppContext:
    settings: Settings
    db: Database
    storages: Storages
    # Domain-owned singletons (job queue, caches...) keyed by name; see each domain.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, db: Database | None = None) -> AppContext:
        settings.ensure_dirs()
        database = db or Database(settings.db_url)
        storages = Storages.local(
            settings.library_path, settings.assets_path, settings.resources_path, settings.tmp_path
        )
        return cls(settings=settings, db=database, storages=storages)

    def close(self) -> None:
        self.db.dispose()


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def app_ctx(request: Request) -> AppContext:
    """The context as a dependency: ``Annotated[AppContext, Depends(app_ctx)]``. async on purpose:
    FastAPI runs a sync dependency in the thread pool, a hop per request just to read it."""
    return get_ctx(request)


def get_settings(request: Request) -> Settings:
    return get_ctx(request).settings


def get_db(request: Request) -> Iterator[Session]:
    """A session for this request: a write session for unsafe methods, a read session otherwise.

    Nothing is committed for you: services commit what they write. The session is closed (and
    anything uncommitted rolled back) when the request's dependencies are torn down.
    """
    ctx = get_ctx(request)
    session = ctx.db.session(write=request.method not in SAFE_METHODS)
    try:
        yield session
    finally:
        session.close()
