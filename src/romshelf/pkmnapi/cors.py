"""CORS for the pkmnapi surface, as pkmnapi configured it: any origin (``*``, no credentials),
request headers ``Accept, Authorization, Content-Type, X-Patch-Description``. Two fixes over
pkmnapi, whose browser clients could not delete a ROM: ``If-Match`` is an allowed request header
and ``ETag`` / ``Location`` are exposed to scripts.

Headers are added only to requests that carry an ``Origin`` (browsers), so every other response
keeps pkmnapi's exact header set. Bearer tokens are never sent by a browser on its own, so a
wildcard origin exposes nothing a page could not already read with its own token.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_HEADERS = "Accept, Authorization, Content-Type, If-Match, X-Patch-Description"
EXPOSED_HEADERS = "ETag, Location"
ALLOWED_METHODS = "GET, HEAD, POST, DELETE, OPTIONS"


def is_pkmnapi_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/") or path == "/status"


class PkmnapiCorsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_pkmnapi_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if "origin" not in headers:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "86400",
                },
            )
            await preflight(scope, receive, send)
            return

        async def send_with_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = "*"
                out["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_origin)
