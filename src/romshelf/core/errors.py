"""Errors and their HTTP rendering.

Services raise :class:`AppError` subclasses (no HTTP imports needed in services). The app turns
them into ``{"detail": ...}`` responses for ``/api`` (FastAPI's shape). Another surface (the
pkmnapi ``/v1`` routes) registers its own renderer for its path prefix with
:func:`register_renderer`, so every error under that prefix, including 404/405 for unknown routes
and validation errors, comes out in that surface's shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, StatementError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("romshelf.errors")


class AppError(Exception):
    """An error with an HTTP status and a client-facing detail (string or JSON-able dict)."""

    status_code = 400

    def __init__(
        self, detail: Any = None, *, status_code: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        if status_code is not None:
            self.status_code = status_code
        self.detail = detail if detail is not None else self.default_detail()
        self.headers = headers
        super().__init__(str(self.detail))

    def default_detail(self) -> str:
        return "Bad request"


class BadRequest(AppError):
    status_code = 400


class NotAuthenticated(AppError):
    status_code = 401

    def __init__(self, detail: Any = "Not authenticated") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403

    def default_detail(self) -> str:
        return "Forbidden"


class NotFound(AppError):
    status_code = 404

    def default_detail(self) -> str:
        return "Not found"


class Conflict(AppError):
    status_code = 409

    def default_detail(self) -> str:
        return "Conflict"


class Gone(AppError):
    status_code = 410


class PayloadTooLarge(AppError):
    status_code = 413

    def default_detail(self) -> str:
        return "Request body too large"


class UnprocessableEntity(AppError):
    status_code = 422


class RangeNotSatisfiable(AppError):
    status_code = 416

    def default_detail(self) -> str:
        return "Requested range not satisfiable"


OUT_OF_RANGE = "A value in the request is out of range (too large a number or too long a text)"

# (prefix, renderer(request, status_code, detail, headers) -> Response)
Renderer = Callable[[Request, int, Any, dict[str, str] | None], Response]
_renderers: list[tuple[str, Renderer]] = []


def register_renderer(prefix: str, renderer: Renderer) -> None:
    _renderers.append((prefix, renderer))


def _render(request: Request, status_code: int, detail: Any, headers: dict[str, str] | None) -> Response:
    path = request.url.path
    for prefix, renderer in _renderers:
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return renderer(request, status_code, detail, headers)
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return _render(request, exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _render(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        # An endpoint that checks credentials in its own body (``require_deferred``) has not
        # checked them when its parameters fail validation: as with ``require()``, a 401/403
        # answers first.
        pending = request.scope.get("state", {}).get("deferred_auth")
        if pending is not None:
            try:
                await run_in_threadpool(pending.check)
            except AppError as e:
                return _render(request, e.status_code, e.detail, e.headers)
        errors = _jsonable_errors(exc.errors())
        return _render(request, 422, errors, None)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        return _render(request, 422, OUT_OF_RANGE, None)

    @app.exception_handler(StatementError)
    async def _statement_error(request: Request, exc: StatementError) -> Response:
        # A value the database cannot hold (an id beyond 64 bits, a number out of a column's
        # range, a string longer than its column): the request is at fault, not the server.
        if isinstance(exc, DataError) or isinstance(exc.orig, OverflowError):
            return _render(request, 422, OUT_OF_RANGE, None)
        log.exception("database error on %s %s", request.method, request.url.path)
        return _render(request, 500, "Internal server error", None)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _render(request, 500, "Internal server error", None)


def _jsonable_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        item = dict(err)
        if "ctx" in item and isinstance(item["ctx"], dict):
            item["ctx"] = {
                k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v)) for k, v in item["ctx"].items()
            }
        if "input" in item and isinstance(item["input"], (bytes, bytearray)):
            item["input"] = item["input"][:100].decode("utf-8", "replace")
        item.pop("url", None)
        out.append(item)
    return out
