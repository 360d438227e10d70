"""The app factory: mounts every domain's routers, error handlers, middleware and lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import romshelf.models  # noqa: F401 - every table, so ORM flushes resolve every foreign key
from romshelf import __version__
from romshelf.accounts import endpoints as accounts
from romshelf.collections import endpoints as collections
from romshelf.config import Settings
from romshelf.core.context import AppContext
from romshelf.core.errors import install_error_handlers
from romshelf.core.http import ServerHeaderMiddleware
from romshelf.core.logging import AccessLogMiddleware
from romshelf.core.routing import TrailingSlashMiddleware
from romshelf.devices import endpoints as devices
from romshelf.downloads import endpoints as downloads
from romshelf.library import endpoints as library
from romshelf.patching import endpoints as patching
from romshelf.pkmnapi import endpoints as pkmnapi
from romshelf.platforms import endpoints as platforms
from romshelf.roms import endpoints as roms
from romshelf.saves import endpoints as saves
from romshelf.system import endpoints as system

log = logging.getLogger("romshelf")

# Routes are tried in order, so the busiest surfaces come first. One constraint: every static
# /api/roms/<word> route (upload, download, ...) must be registered before /api/roms/{id}, so
# the library, downloads and patching routers precede the ROMs router.
ROUTERS = [
    library.router,
    downloads.router,
    patching.router,
    roms.router,
    saves.router,
    devices.router,
    collections.router,
    platforms.router,
    *accounts.routers,
    system.router,
    pkmnapi.router,
]


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    settings = settings or (ctx.settings if ctx else Settings())
    context = ctx or AppContext.create(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            from romshelf.core import migrate  # Alembic only when this process migrates

            await run_in_threadpool(migrate.upgrade, context.db)
        for hook in app.state.startup_hooks:
            await run_in_threadpool(hook, context)
        log.info(
            "romshelf %s ready",
            __version__,
            extra={"database": context.db.engine_name, "library": str(settings.library_path)},
        )
        try:
            yield
        finally:
            for hook in app.state.shutdown_hooks:
                await run_in_threadpool(hook, context)
            if ctx is None:
                context.close()

    app = FastAPI(
        title="romshelf",
        version=__version__,
        description="Self-hosted game library server. `/api` speaks RomM's library API; "
        "`/v1` speaks pkmnapi's ROM workspace.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.ctx = context
    # Domains append (callable(ctx)) here for work at start-up / shut-down (job workers...).
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    for module in (library, downloads, patching, collections, devices, saves, roms, pkmnapi):
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app)
    app.add_middleware(TrailingSlashMiddleware)  # innermost: the access log keeps the client's path
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(ServerHeaderMiddleware)
    return app


def app_from_env() -> FastAPI:
    """Entry point for ASGI servers: ``uvicorn --factory romshelf.app:app_from_env``."""
    from romshelf.core.logging import configure_logging
    from romshelf.core.memory import tune_malloc

    tune_malloc()
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings)
