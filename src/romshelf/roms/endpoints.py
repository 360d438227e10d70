"""/api/roms: the list with every filter, lookups, details, edits, user props, deletion; and the
read-only route serving generated resources (covers) at RomM's ``/assets/romm/resources/...``."""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import random
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Body, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from romshelf.accounts.dependencies import DeferredAuth, Principal, require, require_deferred
from romshelf.accounts.scopes import Scope
from romshelf.core.context import AppContext, get_ctx, get_db
from romshelf.core.errors import BadRequest, NotFound
from romshelf.core.http import etag_matches, not_modified, weak_etag
from romshelf.core.pagination import MAX_LIMIT, LimitOffset
from romshelf.core.paths import safe_key
from romshelf.core.routing import APIRouter
from romshelf.roms import listing, query, render, service, triggers
from romshelf.roms.listing import ListCache, ListOptions
from romshelf.roms.query import RomFilters
from romshelf.roms.schemas import (
    BulkOperationResponse,
    DeleteRomsRequest,
    DetailedRomSchema,
    RomFileSchema,
    RomFiltersDict,
    RomListPage,
    RomUserData,
    RomUserSchema,
    SimpleRomSchema,
)

router = APIRouter(tags=["roms"])
Db = Annotated[Session, Depends(get_db)]


async def _app_ctx(request: Request) -> AppContext:
    # async: resolved on the event loop (a sync dependency costs a thread-pool hop per request)
    return get_ctx(request)


Ctx = Annotated[AppContext, Depends(_app_ctx)]
JSON = "application/json"
MiB = 1024 * 1024


def list_cache(ctx: AppContext) -> ListCache:
    cache = ctx.extras.get("roms.list_cache")
    if cache is None:
        cache = ctx.extras["roms.list_cache"] = ListCache(ctx.settings.rom_list_cache_mb * MiB)
    return cache  # type: ignore[no-any-return]


def _json(body: bytes, etag: str | None = None, status_code: int = 200) -> Response:
    headers = {"ETag": etag} if etag else None
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)


def _conditional(request: Request, body: bytes) -> Response:
    """The JSON body with a weak ETag over its bytes, or 304 if the client has it."""
    etag = weak_etag("body", body)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return _json(body, etag)


# --- list parameters ----------------------------------------------------------------------------

_Strs = Annotated[list[str] | None, Query()]
_Logic = Annotated[str, Query(description="any (OR), all (AND) or none (NOT)")]


async def list_filters(
    search_term: Annotated[
        str | None, Query(description="Words across name and file name; '|' separates alternatives")
    ] = None,
    platform_ids: Annotated[list[int] | None, Query(description="Platform ids (repeat for several)")] = None,
    platform_id: Annotated[int | None, Query(description="One platform id (older clients)")] = None,
    collection_id: Annotated[int | None, Query(ge=1)] = None,
    virtual_collection_id: str | None = None,
    smart_collection_id: Annotated[int | None, Query(ge=1)] = None,
    matched: bool | None = None,
    favorite: bool | None = None,
    duplicate: bool | None = None,
    last_played: bool | None = None,
    playable: bool | None = None,
    missing: bool | None = None,
    has_ra: bool | None = None,
    has_saves: bool | None = None,
    has_states: bool | None = None,
    verified: bool | None = None,
    has_soundtrack: bool | None = None,
    genres: _Strs = None,
    franchises: _Strs = None,
    collections: _Strs = None,
    companies: _Strs = None,
    age_ratings: _Strs = None,
    statuses: _Strs = None,
    regions: _Strs = None,
    languages: _Strs = None,
    player_counts: _Strs = None,
    metadata_providers: _Strs = None,
    tags: _Strs = None,
    genres_logic: _Logic = "any",
    franchises_logic: _Logic = "any",
    collections_logic: _Logic = "any",
    companies_logic: _Logic = "any",
    age_ratings_logic: _Logic = "any",
    statuses_logic: _Logic = "any",
    regions_logic: _Logic = "any",
    languages_logic: _Logic = "any",
    player_counts_logic: _Logic = "any",
    metadata_providers_logic: _Logic = "any",
    tags_logic: _Logic = "any",
    updated_after: Annotated[
        dt.datetime | None, Query(description="ISO 8601 date-time; only ROMs updated strictly after it")
    ] = None,
    group_by_meta_id: bool = False,
) -> RomFilters:
    params = dict(locals())
    return query.build_filters(params)


async def list_order(
    order_by: Annotated[str, Query(description="Field to sort by (name = the name sort key)")] = "",
    order_dir: Annotated[str, Query(description="asc or desc")] = "asc",
) -> query.Order:
    return query.build_order(order_by, order_dir)


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1-10 000)")] = 50,
    offset: Annotated[int, Query(ge=0, description="Zero-based offset of the first item")] = 0,
) -> LimitOffset:
    return LimitOffset(limit, offset)


# --- routes: static paths first -----------------------------------------------------------------


@router.get("/api/roms", response_model=RomListPage, summary="List ROMs with filters, sort and sidecars")
def get_roms(
    request: Request,
    ctx: Ctx,
    page: Annotated[LimitOffset, Depends(page_params)],
    f: Annotated[RomFilters, Depends(list_filters)],
    order: Annotated[query.Order, Depends(list_order)],
    with_char_index: bool = True,
    with_filter_values: bool = True,
    with_rom_id_index: bool = True,
    with_total: bool = True,
    with_files: bool = False,
    auth: DeferredAuth = require_deferred(Scope.ROMS_READ),
) -> Response:
    principal = auth.check()
    opts = ListOptions(
        limit=page.limit,
        offset=page.offset,
        with_char_index=with_char_index,
        with_filter_values=with_filter_values,
        with_rom_id_index=with_rom_id_index,
        with_total=with_total,
        with_files=with_files,
    )
    cache = list_cache(ctx)
    with ctx.db.read() as db:
        versions = listing.read_versions(db)
        if versions is not None and listing.etag_cacheable(f):
            hit = not_modified(request, listing.list_etag(versions, principal.user_id, f, order, opts))
            if hit is not None:
                return hit
        result = listing.list_roms(db, f, order, opts, principal.user_id, cache=cache, versions=versions)
    if etag_matches(request.headers.get("if-none-match"), result.etag):
        return Response(status_code=304, headers={"ETag": result.etag})
    return _json(result.body, result.etag)


@router.get("/api/roms/identifiers", response_model=list[int], summary="Ids of every visible ROM, in name order")
def get_rom_identifiers(request: Request, ctx: Ctx, auth: DeferredAuth = require_deferred(Scope.ROMS_READ)) -> Response:
    principal = auth.check()
    with ctx.db.read() as db:
        versions = listing.read_versions(db)
        if versions is not None:
            etag = weak_etag("ids", versions, principal.user_id)
            hit = not_modified(request, etag)
            if hit is not None:
                return hit
            return _json(listing.identifiers(db, principal.user_id, cache=list_cache(ctx), versions=versions), etag)
        return _conditional(request, listing.identifiers(db, principal.user_id))


@router.get("/api/roms/random", response_model=SimpleRomSchema | None, summary="One random matching ROM (or null)")
def get_random_rom(
    ctx: Ctx,
    platform_ids: Annotated[list[int] | None, Query()] = None,
    collection_id: Annotated[int | None, Query(ge=1)] = None,
    virtual_collection_id: str | None = None,
    smart_collection_id: Annotated[int | None, Query(ge=1)] = None,
    auth: DeferredAuth = require_deferred(Scope.ROMS_READ),
) -> Response:
    principal = auth.check()
    f = query.build_filters(
        {
            "platform_ids": platform_ids,
            "collection_id": collection_id,
            "virtual_collection_id": virtual_collection_id,
            "smart_collection_id": smart_collection_id,
        }
    )
    with ctx.db.read() as db:
        ids = query.matching_ids(db, f, principal.user_id).subquery()
        n = db.execute(sa.select(sa.func.count()).select_from(ids)).scalar_one()
        if not n:
            return _json(b"null")
        pick = db.execute(sa.select(ids.c.id).order_by(ids.c.id).offset(random.randrange(n)).limit(1)).scalar_one()
        return _json(render.dumps(service.simple_rom(db, pick, principal.user_id)))


@router.get("/api/roms/by-hash", response_model=DetailedRomSchema, summary="Find a ROM by a ROM or file hash")
def get_rom_by_hash(
    request: Request,
    ctx: Ctx,
    crc_hash: str | None = None,
    md5_hash: str | None = None,
    sha1_hash: str | None = None,
    ra_hash: str | None = None,
    auth: DeferredAuth = require_deferred(Scope.ROMS_READ),
) -> Response:
    principal = auth.check()
    with ctx.db.read() as db:
        rom_id = service.find_by_hash(
            db, principal.user_id, crc_hash=crc_hash, md5_hash=md5_hash, sha1_hash=sha1_hash, ra_hash=ra_hash
        )
        body = render.dumps(service.detailed_rom(db, rom_id, principal.user_id))
    return _conditional(request, body)


@router.get(
    "/api/roms/by-metadata-provider",
    response_model=DetailedRomSchema,
    summary="Find a ROM by any of its metadata provider ids",
)
def get_rom_by_metadata_provider(
    request: Request,
    ctx: Ctx,
    igdb_id: int | None = None,
    moby_id: int | None = None,
    ss_id: int | None = None,
    ra_id: int | None = None,
    launchbox_id: int | None = None,
    hasheous_id: int | None = None,
    tgdb_id: int | None = None,
    flashpoint_id: str | None = None,
    hltb_id: int | None = None,
    auth: DeferredAuth = require_deferred(Scope.ROMS_READ),
) -> Response:
    principal = auth.check()
    ids = {
        "igdb_id": igdb_id,
        "moby_id": moby_id,
        "ss_id": ss_id,
        "ra_id": ra_id,
        "launchbox_id": launchbox_id,
        "hasheous_id": hasheous_id,
        "tgdb_id": tgdb_id,
        "flashpoint_id": flashpoint_id,
        "hltb_id": hltb_id,
    }
    with ctx.db.read() as db:
        rom_id = service.find_by_metadata_ids(db, principal.user_id, ids)
        body = render.dumps(service.detailed_rom(db, rom_id, principal.user_id))
    return _conditional(request, body)


@router.get("/api/roms/filters", response_model=RomFiltersDict, summary="Filter values over the whole library")
def get_rom_filters(request: Request, ctx: Ctx, auth: DeferredAuth = require_deferred(Scope.ROMS_READ)) -> Response:
    principal = auth.check()
    with ctx.db.read() as db:
        versions = listing.read_versions(db)
        body = listing.filter_values_json(db, RomFilters(), principal.user_id, list_cache(ctx), versions)
    return _conditional(request, body)


@router.post("/api/roms/delete", response_model=BulkOperationResponse, summary="Delete ROMs (optionally from disk)")
def delete_roms(
    payload: DeleteRomsRequest, ctx: Ctx, db: Db, _: Principal = require(Scope.ROMS_WRITE)
) -> dict[str, Any]:
    return service.delete_roms(ctx, db, payload.roms, payload.delete_from_fs).as_dict()


_RomId = Annotated[int, Path(ge=1, description="ROM id")]


@router.get("/api/roms/{id}/simple", response_model=SimpleRomSchema, summary="One ROM, list shape")
def get_rom_simple(
    request: Request, id: _RomId, ctx: Ctx, auth: DeferredAuth = require_deferred(Scope.ROMS_READ)
) -> Response:
    principal = auth.check()
    with ctx.db.read() as db:
        body = render.dumps(service.simple_rom(db, id, principal.user_id))
    return _conditional(request, body)


@router.get("/api/roms/{id}/files", response_model=RomFileSchema, summary="One ROM file (id = RomFile id)")
def get_rom_file(
    request: Request,
    id: Annotated[int, Path(ge=1, description="RomFile id")],
    ctx: Ctx,
    auth: DeferredAuth = require_deferred(Scope.ROMS_READ),
) -> Response:
    principal = auth.check()
    with ctx.db.read() as db:
        body = render.dumps(service.rom_file(db, id, principal.user_id))
    return _conditional(request, body)


@router.get("/api/roms/{id}", response_model=DetailedRomSchema, summary="One ROM with the caller's assets")
def get_rom(request: Request, id: _RomId, ctx: Ctx, auth: DeferredAuth = require_deferred(Scope.ROMS_READ)) -> Response:
    principal = auth.check()
    with ctx.db.read() as db:
        body = render.dumps(service.detailed_rom(db, id, principal.user_id))
    return _conditional(request, body)


def _json_fields(body: bytes) -> dict[str, str]:
    """A JSON object body as form fields (a convenience beyond RomM's form): lists and objects
    become JSON text (``genres``, ``raw_*_metadata``), null an empty value."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("The body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("The JSON body must be an object of fields")
    out: dict[str, str] = {}
    for key, value in data.items():
        if value is None:
            out[key] = ""
        elif isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            out[key] = str(value)
        else:
            out[key] = json.dumps(value)
    return out


_UPDATE_FIELDS = [
    "igdb_id",
    "sgdb_id",
    "moby_id",
    "ss_id",
    "ra_id",
    "launchbox_id",
    "hasheous_id",
    "tgdb_id",
    "flashpoint_id",
    "hltb_id",
    "gamelist_id",
    "libretro_id",
    *service.RAW_METADATA_FIELDS,
    "name",
    "name_sort_key",
    "summary",
    "fs_name",
    "slug",
    "url_cover",
    "url_manual",
    *service.MANUAL_LIST_FIELDS,
    *service.MANUAL_TEXT_FIELDS,
    "first_release_date",
]
_UPDATE_BODY = {
    "requestBody": {
        "content": {
            ct: {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{name: {"type": "string"} for name in _UPDATE_FIELDS},
                        "artwork": {"type": "string", "format": "binary", "description": "PNG, JPEG, WebP or GIF"},
                    },
                }
            }
            for ct in ("multipart/form-data", "application/x-www-form-urlencoded")
        }
    }
}


@router.put(
    "/api/roms/{id}",
    response_model=DetailedRomSchema,
    summary="Edit a ROM (form fields; artwork upload; rename on disk)",
    openapi_extra=_UPDATE_BODY,
)
async def update_rom(
    request: Request,
    id: _RomId,
    ctx: Ctx,
    db: Db,
    remove_cover: bool = False,
    unmatch_metadata: bool = False,
    principal: Principal = require(Scope.ROMS_WRITE),
) -> Response:
    content_type = request.headers.get("content-type", "")
    fields: dict[str, str] = {}
    artwork: UploadFile | None = None
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        for key, value in form.multi_items():
            if key == "artwork":
                if isinstance(value, UploadFile) and value.filename is not None:
                    artwork = value
            elif isinstance(value, str):
                fields[key] = value
    elif content_type.startswith(JSON):
        fields = _json_fields(await request.body())
    elif await request.body():
        raise BadRequest("Send the edit as multipart/form-data, application/x-www-form-urlencoded or JSON")
    upd = service.RomUpdate(fields=fields, remove_cover=remove_cover, unmatch_metadata=unmatch_metadata)
    if artwork is not None:
        upd.artwork = await run_in_threadpool(service.read_limited, artwork.file, ctx.settings.cover_max_bytes)
        if not upd.artwork:
            upd.artwork = None

    def work() -> bytes:
        service.update_rom(ctx, db, id, upd)
        db.close()
        with ctx.db.read() as rs:
            return render.dumps(service.detailed_rom(rs, id, principal.user_id))

    return _json(await run_in_threadpool(work))


@router.put(
    "/api/roms/{id}/props",
    response_model=RomUserSchema,
    summary="Update the caller's data for a ROM (rating, status, hidden...)",
    openapi_extra={"requestBody": {"content": {JSON: {"schema": RomUserData.model_json_schema()}}}},
)
def update_rom_props(
    id: _RomId,
    db: Db,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    update_last_played: bool = False,
    remove_last_played: bool = False,
    principal: Principal = require(Scope.ROMS_USER_WRITE),
) -> Response:
    data = body or {}
    if set(data) == {"data"} and isinstance(data["data"], dict):  # RomM 4.x wrapped the fields
        data = data["data"]
    try:
        parsed = RomUserData.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    changes = parsed.model_dump(exclude_unset=True)
    changes = {k: v for k, v in changes.items() if v is not None or k == "status"}
    out = service.update_props(
        db,
        id,
        principal.user_id,
        changes,
        update_last_played=update_last_played,
        remove_last_played=remove_last_played,
    )
    return _json(render.dumps(out))


# --- generated resources (covers) ---------------------------------------------------------------

resources_router = APIRouter(tags=["roms"])


@resources_router.get("/assets/romm/resources/{path:path}", summary="A generated resource (cover image)")
def get_resource(
    request: Request, path: str, ctx: Ctx, auth: DeferredAuth = require_deferred(Scope.ROMS_READ)
) -> Response:
    auth.check()
    try:
        key = safe_key(path)
    except BadRequest:
        raise NotFound("Resource not found") from None
    store = ctx.storages.resources
    st = store.stat(key)
    local = store.local_path(key)
    if st is None or st.is_dir or local is None:
        raise NotFound("Resource not found")
    etag = f'"{int(st.mtime * 1_000_000):x}-{st.size:x}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    return FileResponse(local, media_type=media_type, headers=headers, stat_result=None)


router.include_router(resources_router)


# --- start-up -------------------------------------------------------------------------------------


def _ensure_triggers(ctx: AppContext) -> None:
    with ctx.db.lock("roms-list-triggers", timeout=60), ctx.db.write_engine.begin() as conn:
        triggers.ensure(conn)


def setup(app: FastAPI) -> None:
    app.state.startup_hooks.append(_ensure_triggers)
