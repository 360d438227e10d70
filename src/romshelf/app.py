"""The app factory: mounts every domain's routers, error handlers, middleware and lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

try:  # FastAPI >= 0.16x keeps included routers as lazy nodes; older versions copied routes
    from fastapi.routing import _IncludedRouter
except ImportError:  # pragma: no cover - older FastAPI
    _IncludedRouter = None  # type: ignore[assignment,misc]

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


def flat_routes(routers: list[APIRouter]) -> list[BaseRoute]:
    """Every route of ``routers`` (nested included routers too), as plain routes.

    Recent FastAPI keeps an included router as one lazily resolved node, and matching a
    request walks each node with bookkeeping per candidate: about 8 µs per route tried, so
    ~0.7 ms before a late route such as ``/api/users/me`` was found. Flat routes are matched
    by one compiled regex each. Our includes carry no prefix or dependencies, only tags,
    which are copied onto the routes here (the OpenAPI document is unchanged).
    """
    out: list[BaseRoute] = []

    def walk(routes: list[BaseRoute], tags: list[str]) -> None:
        for route in routes:
            if _IncludedRouter is not None and isinstance(route, _IncludedRouter):
                ic = route.include_context
                if ic.prefix or ic.dependencies:
                    raise RuntimeError("flat_routes: included routers must not carry a prefix or dependencies")
                walk(route.original_router.routes, [*tags, *(ic.tags or [])])
                continue
            if tags and isinstance(route, APIRoute):
                route.tags = [*(t for t in tags if t not in route.tags), *route.tags]
            out.append(route)

    for router in routers:
        walk(list(router.routes), [])
    return out


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
    for route in flat_routes(ROUTERS):
        app.router.routes.append(route)
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
