"""HTTP helpers: conditional requests (ETag / If-None-Match), Content-Disposition, and the
pure-ASGI middleware that stamps every response with ``Server: romshelf/<version>``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from romshelf import __version__

SERVER_HEADER = f"romshelf/{__version__}".encode()


def weak_etag(*parts: object) -> str:
    """A weak validator over a representation's inputs (``W/"<sha1>"``)."""
    h = hashlib.sha1(usedforsecurity=False)
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\x00")
    return f'W/"{h.hexdigest()}"'


def strong_etag(value: str) -> str:
    return f'"{value}"'


def _tags(header: str) -> Iterable[str]:
    for item in header.split(","):
        tag = item.strip()
        if tag:
            yield tag


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match comparison (weak comparison, RFC 9110 §13.1.2); ``*`` matches anything."""
    if not header:
        return False
    bare = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == bare for t in _tags(header))


def not_modified(request: Request, etag: str) -> Response | None:
    """A 304 response if the client's If-None-Match matches ``etag``, else None."""
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return None


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266 header: an ASCII fallback plus ``filename*=UTF-8''...`` for any name."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    ascii_name = ascii_name.replace("\\", "_").replace('"', "'")
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


class ServerHeaderMiddleware:
    """Sets ``Server: romshelf/<version>`` on every response (replacing the ASGI server's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                headers.append((b"server", SERVER_HEADER))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)
