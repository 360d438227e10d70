"""pkmnapi's error envelope and the errors of the /v1 surface.

Every error under ``/v1`` is ``{"data":{"id":"error_...","type":"errors","attributes":{"message":...}}}``
(compact JSON, ``Content-Type: application/json``). The ids, statuses and messages are pkmnapi's;
:func:`render` also turns romshelf's generic errors (unknown route, wrong method, validation,
crash) into that shape, as pkmnapi's catchers do.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from romshelf.core.errors import AppError
from romshelf.core.http import SERVER_HEADER

JSON = "application/json"


def dumps(value: Any) -> bytes:
    """Compact JSON in insertion order, UTF-8, like serde_json's ``to_string``."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def error_body(error_id: str, message: str) -> bytes:
    return dumps({"data": {"id": error_id, "type": "errors", "attributes": {"message": message}}})


class PkmnapiError(AppError):
    """An error with a pkmnapi id; its ``detail`` carries the id and message to the renderer."""

    status_code = 400
    error_id = "error_invalid"
    message = "Invalid request"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__({"id": self.error_id, "message": message or self.message}, headers=headers)


class AccessTokenUnauthorized(PkmnapiError):
    status_code = 401
    error_id = "error_access_tokens_unauthorized"
    message = "Authorization header must be set"


class AccessTokenForbidden(PkmnapiError):
    status_code = 403
    error_id = "error_access_tokens_forbidden"
    message = "Authorization header must not be set"


class AccessTokenInvalid(PkmnapiError):
    status_code = 400
    error_id = "error_access_tokens_invalid"
    message = "Invalid access token"


class AccessTokenTimeout(PkmnapiError):
    status_code = 403
    error_id = "error_access_tokens_timeout"

    def __init__(self, seconds: int) -> None:
        super().__init__(f"Please try again in {seconds} seconds")


class EtagMissing(PkmnapiError):
    status_code = 403
    error_id = "error_etag_missing"
    message = "If-Match header must be set"


class EtagMismatch(PkmnapiError):
    status_code = 400
    error_id = "error_etag_mismatch"
    message = "ETag mismatch"


class InvalidRom(PkmnapiError):
    status_code = 400
    error_id = "error_roms_invalid_rom"
    message = "Invalid ROM provided"


class NoRom(PkmnapiError):
    status_code = 403
    error_id = "error_roms_no_rom"
    message = "No ROM uploaded"


class RomExists(PkmnapiError):
    status_code = 403
    error_id = "error_roms_rom_exists"
    message = "ROM already exists"


class RomsInvalidRequest(PkmnapiError):
    status_code = 400
    error_id = "error_roms_invalid"


class RomsForbidden(PkmnapiError):
    status_code = 403
    error_id = "error_roms_forbidden"


class ServerBusy(PkmnapiError):
    status_code = 503
    error_id = "error_service_unavailable"
    message = "The server is busy; please try again in a few seconds"


NOT_FOUND = ("error_not_found", "The requested resource could not be found")
INTERNAL = ("error_internal_server", "An unknown error has occurred")
_RESOURCE_RE = re.compile(r"^/v1/([a-z_]+)")


def _resource(request: Request) -> str:
    m = _RESOURCE_RE.match(request.url.path)
    return m.group(1) if m else "request"


def _validation_message(detail: Any) -> str:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        text = str(first.get("msg", "invalid value"))
        return f"Invalid request: {where}: {text}" if where else f"Invalid request: {text}"
    return "Invalid request"


def render(request: Request, status_code: int, detail: Any, headers: dict[str, str] | None) -> Response:
    """The /v1 error renderer (registered with ``core.errors.register_renderer``)."""
    out_headers: dict[str, str] = {}
    if isinstance(detail, dict) and {"id", "message"} <= detail.keys():
        error_id, message = str(detail["id"]), str(detail["message"])
        out_headers.update(headers or {})
    elif status_code in (404, 405):  # pkmnapi (Rocket 0.4) has no 405: a wrong method is "not found"
        status_code = 404
        error_id, message = NOT_FOUND
    elif status_code >= 500:
        status_code = 500
        error_id, message = INTERNAL
    elif status_code == 422:  # request validation: pkmnapi's BadRequestError
        status_code = 400
        error_id, message = f"error_{_resource(request)}_invalid", _validation_message(detail)
    elif status_code == 401:
        error_id, message = AccessTokenUnauthorized.error_id, AccessTokenUnauthorized.message
    elif status_code == 400:
        error_id, message = f"error_{_resource(request)}_invalid", str(detail)
    else:
        error_id, message = f"error_{_resource(request)}_{status_code}", str(detail)
    # Responses of the outermost error handler (500) skip the middleware that stamps the Server
    # header, so it is set here too (the middleware replaces it, never duplicates it).
    out_headers["Server"] = SERVER_HEADER.decode()
    return Response(error_body(error_id, message), status_code=status_code, media_type=JSON, headers=out_headers)
