"""HTTP surface of the pkmnapi workspace: /v1/roms, /v1/access_tokens (+ account deletion) and
/status.

Responses are byte-exact with pkmnapi's: compact JSON in pkmnapi's key order, the same statuses,
and exactly pkmnapi's headers (``Content-Type``, ``ETag``, ``Location``; ``Server`` is stamped by
the app on every response). Errors use pkmnapi's envelope (see :mod:`romshelf.pkmnapi.errors`).

Authentication is ``Authorization: Bearer <token>`` with romshelf's own tokens (client API
tokens ``rmm_...`` and OAuth access tokens from ``/api/token``), so one account works on /api and
/v1. The /v1 workspace needs no /api scope.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from romshelf.accounts.dependencies import Principal, authenticate_bearer
from romshelf.core.context import AppContext, get_ctx
from romshelf.core.errors import register_renderer
from romshelf.core.routing import APIRouter
from romshelf.core.storage import CHUNK
from romshelf.pkmnapi import errors, service
from romshelf.pkmnapi.cors import PkmnapiCorsMiddleware
from romshelf.pkmnapi.errors import (
    JSON,
    AccessTokenForbidden,
    AccessTokenInvalid,
    AccessTokenUnauthorized,
    EtagMissing,
    InvalidRom,
    NoRom,
    RomsInvalidRequest,
    dumps,
)

log = logging.getLogger("romshelf.pkmnapi")

router = APIRouter(tags=["pkmnapi"])

BEARER = "bearer "
MAX_JSON_BODY = 64 * 1024
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off", ""})

ROM_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "The workspace ROM (headers: ETag, Location)"},
    400: {"description": "error_roms_invalid_rom: not a Game Boy ROM, or too large"},
    401: {"description": "error_access_tokens_unauthorized: no Bearer token"},
    403: {"description": "error_roms_rom_exists: delete the current ROM first"},
}
RAW_ROM_BODY = {
    "requestBody": {
        "required": True,
        "description": "The raw Game Boy ROM (any or no Content-Type).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def setup(app: FastAPI) -> None:
    """Called by create_app: /v1 errors in pkmnapi's shape, pkmnapi's CORS on /v1, and a sweep
    of leftovers at start-up."""
    register_renderer_once()
    app.add_middleware(PkmnapiCorsMiddleware)
    app.state.startup_hooks.append(_sweep_at_startup)


_registered = False


def register_renderer_once() -> None:
    """The renderer list is process-wide; create_app may run many times (tests, workers)."""
    global _registered
    if not _registered:
        register_renderer("/v1", errors.render)
        _registered = True


def _sweep_at_startup(ctx: AppContext) -> None:
    try:
        report = service.sweep(ctx)
    except Exception:
        log.warning("pkmnapi start-up sweep failed", exc_info=True)
        return
    if report.incoming or report.rom_data or report.files:
        log.info("pkmnapi sweep", extra=vars(report))


# --- helpers -----------------------------------------------------------------------------------------


def base_url(request: Request) -> str:
    """pkmnapi's API_DOMAIN: ROMSHELF_PUBLIC_URL if set, else the URL the client used."""
    public = get_ctx(request).settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 when the header is missing or not Bearer."""
    header = request.headers.get("authorization")
    if header is None or header[: len(BEARER)].lower() != BEARER:
        raise AccessTokenUnauthorized()
    return header[len(BEARER) :].strip()


def authenticate(request: Request) -> Principal:
    """The caller of a /v1 route. An unknown, expired or revoked token is pkmnapi's 400
    "Invalid access token" (pkmnapi itself answered 403 "No ROM uploaded" / "ROM already exists",
    which tells a client nothing about what is wrong)."""
    token = bearer_token(request)
    principal = authenticate_bearer(get_ctx(request), token) if token else None
    if principal is None:
        raise AccessTokenInvalid()
    return principal


def rom_response(request: Request, view: service.RomView, status_code: int, *, location: bool) -> Response:
    url = f"{base_url(request)}/v1/roms"
    body = {
        "data": {
            "id": view.id,
            "type": "roms",
            "attributes": {"name": view.name, "hash": view.hash, "valid": view.valid},
            "links": {"self": url},
        },
        "links": {"self": url},
    }
    headers = {"ETag": view.etag}
    if location:
        headers["Location"] = url
    return Response(dumps(body), status_code=status_code, media_type=JSON, headers=headers)


def parse_flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return False
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RomsInvalidRequest(f"Invalid value for {name}: {value!r} (use true or false)")


async def receive_rom(request: Request, ctx: AppContext) -> service.ReceivedRom:
    """Stream the raw body into a RomReceiver, 1 MiB at a time, off the event loop."""
    limit = ctx.settings.v1_max_rom_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRom()
    receiver = service.RomReceiver(ctx.storages.assets, limit)
    buffer = bytearray()
    try:
        async for chunk in request.stream():
            buffer += chunk
            if receiver.size + len(buffer) > limit:
                raise InvalidRom()
            if len(buffer) >= CHUNK:
                await run_in_threadpool(receiver.feed, bytes(buffer))
                buffer.clear()
        if buffer:
            await run_in_threadpool(receiver.feed, bytes(buffer))
        return await run_in_threadpool(receiver.finish)
    except BaseException:
        await run_in_threadpool(receiver.abort)
        raise


# --- /v1/roms ------------------------------------------------------------------------------------------


@router.post(
    "/v1/roms",
    status_code=201,
    response_class=Response,
    responses=ROM_RESPONSES,
    openapi_extra=RAW_ROM_BODY,
    summary="Upload the workspace ROM",
)
async def post_rom(request: Request) -> Response:
    """Upload a Game Boy ROM as the raw body. One ROM per user: a second upload is refused
    (403) until the first is deleted. ``?add_to_library=true`` also puts it in the /api library
    as a Game Boy ROM (needs the ``roms.write`` scope). The ROM can never be downloaded via /v1."""
    ctx = get_ctx(request)
    principal = await run_in_threadpool(authenticate, request)
    add_to_library = parse_flag(request, "add_to_library")
    if add_to_library:
        service.check_can_add_to_library(principal)
    received = await receive_rom(request, ctx)
    view = await run_in_threadpool(service.store_rom, ctx, principal, received, add_to_library=add_to_library)
    response = rom_response(request, view, 201, location=True)
    if add_to_library and view.library_rom_id is not None:
        response.headers["X-Romshelf-Library-Rom-Id"] = str(view.library_rom_id)
    return response


@router.get("/v1/roms", response_class=Response, summary="Get the workspace ROM")
@router.head("/v1/roms", response_class=Response, include_in_schema=False)  # Rocket answered HEAD for GET
def get_rom(request: Request) -> Response:
    """The workspace ROM's id, header name, MD5 and whether it is a known Pokémon Red/Blue
    (``valid``), with its ETag. 403 "No ROM uploaded" when there is none."""
    principal = authenticate(request)
    view = service.get_rom(get_ctx(request), principal.user_id)
    if view is None:
        raise NoRom()
    return rom_response(request, view, 200, location=False)


@router.delete("/v1/roms", status_code=204, response_class=Response, summary="Delete the workspace ROM")
def delete_rom(request: Request) -> Response:
    """Delete the workspace ROM; ``If-Match`` must be exactly its ETag (403 when missing, 400 when
    different)."""
    principal = authenticate(request)
    if_match = request.headers.get("if-match")
    if if_match is None:
        raise EtagMissing()
    service.delete_rom(get_ctx(request), principal.user_id, if_match)
    return Response(status_code=204)


# --- /v1/access_tokens ---------------------------------------------------------------------------------


def parse_access_token_request(raw: bytes, fields: tuple[str, ...] = ("email_address",)) -> dict[str, str]:
    """The string ``fields`` of ``{"data":{"type":"access_tokens","attributes":{...}}}``."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AccessTokenInvalid(f"Invalid JSON body: {e}") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise AccessTokenInvalid("Missing field: data")
    if data.get("type") != "access_tokens":
        raise AccessTokenInvalid('Invalid field data.type: expected "access_tokens"')
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise AccessTokenInvalid("Missing field: data.attributes")
    values = {}
    for name in fields:
        value = attributes.get(name)
        if not isinstance(value, str):
            raise AccessTokenInvalid(f"Missing field: data.attributes.{name} (a string)")
        values[name] = value
    return values


async def access_token_request(request: Request, fields: tuple[str, ...] = ("email_address",)) -> dict[str, str]:
    """The checks every /v1/access_tokens route makes, in pkmnapi's order: no Bearer header
    (403), open sign-up enabled (romshelf's 403), then a well-formed JSON:API body (400)."""
    ctx = get_ctx(request)
    header = request.headers.get("authorization")
    if header is not None and header[: len(BEARER)].lower() == BEARER:
        raise AccessTokenForbidden()
    if not ctx.settings.v1_open_signup:
        raise AccessTokenForbidden(
            "Sign-up is disabled on this server (ROMSHELF_V1_OPEN_SIGNUP=false): "
            "create an API token in romshelf instead (POST /api/client-tokens)"
        )
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise AccessTokenInvalid(f"Request body is larger than {MAX_JSON_BODY} bytes")
    return parse_access_token_request(bytes(raw), fields)


def created_json_string(request: Request, value: str) -> Response:
    return Response(
        dumps(value),
        status_code=201,
        media_type=JSON,
        headers={"Location": f"{base_url(request)}/v1/access_tokens"},
    )


@router.post("/v1/access_tokens", status_code=201, response_class=Response, summary="Get a /v1 access token")
async def post_access_token(request: Request) -> Response:
    """Open sign-up: a client API token for the email address, returned as a JSON string (romshelf
    sends no email). Off unless ``ROMSHELF_V1_OPEN_SIGNUP=true``; romshelf users get their token
    from ``POST /api/client-tokens`` instead. A new token for the same address is refused for 10
    minutes, and revokes the previous one."""
    fields = await access_token_request(request)
    token = await run_in_threadpool(service.issue_access_token, get_ctx(request), fields["email_address"])
    return created_json_string(request, token)


@router.post(
    "/v1/access_tokens/delete", status_code=201, response_class=Response, summary="Get an account deletion code"
)
async def post_access_token_delete(request: Request) -> Response:
    """A one-time code (JSON string, valid for an hour) for ``DELETE /v1/access_tokens``; ``""``
    for an address without a /v1 account. Only accounts made by /v1 sign-up can be deleted here."""
    fields = await access_token_request(request)
    code = await run_in_threadpool(service.request_account_deletion, get_ctx(request), fields["email_address"])
    return created_json_string(request, code)


@router.delete("/v1/access_tokens", status_code=204, response_class=Response, summary="Delete a /v1 account")
async def delete_access_token(request: Request) -> Response:
    """Delete the /v1 account of ``email_address`` with its deletion ``code``. 204 whether or not
    the code matched, as in pkmnapi."""
    fields = await access_token_request(request, ("code", "email_address"))
    await run_in_threadpool(service.delete_account, get_ctx(request), fields["email_address"], fields["code"])
    return Response(status_code=204)


# --- /status ---------------------------------------------------------------------------------------------


@router.get("/status", response_class=PlainTextResponse, summary="pkmnapi liveness check")
@router.head("/status", response_class=PlainTextResponse, include_in_schema=False)
def status() -> PlainTextResponse:
    return PlainTextResponse("OK")
