"""Routing helpers shared by every domain."""

from __future__ import annotations

from fastapi import APIRouter as _FastAPIRouter
from starlette.types import ASGIApp, Receive, Scope, Send


class APIRouter(_FastAPIRouter):
    """The router every domain uses. Paths are registered once, without a trailing slash;
    :class:`TrailingSlashMiddleware` makes ``/api/roms/`` answer exactly like ``/api/roms``."""


class TrailingSlashMiddleware:
    """Serve ``/path/`` as ``/path``, without a redirect (pure ASGI, before routing).

    RomM answers every route with and without the trailing slash, and clients use both; a 307
    redirect would lose the body of a POST with some HTTP clients. Normalising the path once
    here, instead of registering every route twice, also halves the routes the router has to
    try for each request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw = scope.get("raw_path")
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
