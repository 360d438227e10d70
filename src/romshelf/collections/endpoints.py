"""/api/collections: standard, smart and virtual collections (RomM's shapes and parameters)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from romshelf.accounts.dependencies import Principal, require
from romshelf.accounts.scopes import Scope
from romshelf.collections import service
from romshelf.collections.models import Collection, SmartCollection
from romshelf.collections.schemas import (
    CollectionRomsPayload,
    CollectionSchema,
    SmartCollectionSchema,
    VirtualCollectionSchema,
)
from romshelf.core.context import AppContext, app_ctx, get_db
from romshelf.core.errors import BadRequest
from romshelf.core.routing import APIRouter
from romshelf.roms.service import read_limited

router = APIRouter(prefix="/api/collections", tags=["collections"])
Db = Annotated[Session, Depends(get_db)]
Ctx = Annotated[AppContext, Depends(app_ctx)]
_Id = Annotated[int, Path(ge=1)]
_UpdatedAfter = Annotated[
    dt.datetime | None, Query(description="Only collections updated after this ISO 8601 date-time")
]


def _form_body(fields: dict[str, str], artwork: bool = True) -> dict[str, Any]:
    props: dict[str, Any] = {name: {"type": "string"} for name in fields}
    if artwork:
        props["artwork"] = {"type": "string", "format": "binary", "description": "PNG, JPEG, WebP or GIF"}
    schema = {"type": "object", "properties": props}
    return {
        "requestBody": {
            "content": {ct: {"schema": schema} for ct in ("multipart/form-data", "application/x-www-form-urlencoded")}
        }
    }


async def _read_form(request: Request, ctx: AppContext) -> tuple[dict[str, str], bytes | None]:
    """Text fields and the optional ``artwork`` file of a multipart or urlencoded body."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        if await request.body():
            raise BadRequest("Send the collection as multipart/form-data or application/x-www-form-urlencoded")
        return {}, None
    form = await request.form()
    fields: dict[str, str] = {}
    artwork: bytes | None = None
    for key, value in form.multi_items():
        if key == "artwork":
            if isinstance(value, UploadFile) and value.filename is not None:
                artwork = await run_in_threadpool(read_limited, value.file, ctx.settings.cover_max_bytes) or None
        elif isinstance(value, str):
            fields[key] = value
    return fields, artwork


def _one(session: Session, c: Collection) -> dict[str, Any]:
    return service.collection_dicts(session, [c])[0]


def _one_smart(session: Session, c: SmartCollection, user_id: int) -> dict[str, Any]:
    return service.smart_dicts(session, [c], user_id)[0]


# --- standard ------------------------------------------------------------------------------------


@router.get("", response_model=list[CollectionSchema], summary="Own and public collections")
def get_collections(
    db: Db, updated_after: _UpdatedAfter = None, principal: Principal = require(Scope.COLLECTIONS_READ)
) -> list[dict[str, Any]]:
    return service.collection_dicts(db, service.list_collections(db, principal.user_id, updated_after))


@router.post(
    "",
    response_model=CollectionSchema,
    summary="Create a collection",
    openapi_extra=_form_body({"name": "", "description": "", "url_cover": ""}),
)
async def add_collection(
    request: Request,
    ctx: Ctx,
    db: Db,
    is_public: bool | None = None,
    is_favorite: bool | None = None,
    principal: Principal = require(Scope.COLLECTIONS_WRITE),
) -> dict[str, Any]:
    fields, artwork = await _read_form(request, ctx)

    def work() -> dict[str, Any]:
        c = service.create_collection(
            ctx,
            db,
            principal.user_id,
            name=fields.get("name", ""),
            description=fields.get("description", ""),
            url_cover=fields.get("url_cover", ""),
            is_public=bool(is_public),
            is_favorite=bool(is_favorite),
            artwork=artwork,
        )
        return _one(db, c)

    return await run_in_threadpool(work)


@router.get("/identifiers", response_model=list[int], summary="Ids of own and public collections")
def get_collection_identifiers(db: Db, principal: Principal = require(Scope.COLLECTIONS_READ)) -> list[int]:
    return [c.id for c in service.list_collections(db, principal.user_id)]


# --- smart ---------------------------------------------------------------------------------------


@router.get("/smart", response_model=list[SmartCollectionSchema], summary="Own and public smart collections")
def get_smart_collections(
    db: Db, updated_after: _UpdatedAfter = None, principal: Principal = require(Scope.COLLECTIONS_READ)
) -> list[dict[str, Any]]:
    return service.smart_dicts(db, service.list_smart(db, principal.user_id, updated_after), principal.user_id)


@router.post(
    "/smart",
    response_model=SmartCollectionSchema,
    summary="Create a smart collection (saved GET /api/roms filters)",
    openapi_extra=_form_body({"name": "", "description": "", "filter_criteria": ""}, artwork=False),
)
async def add_smart_collection(
    request: Request,
    ctx: Ctx,
    db: Db,
    is_public: bool | None = None,
    principal: Principal = require(Scope.COLLECTIONS_WRITE),
) -> dict[str, Any]:
    fields, _ = await _read_form(request, ctx)
    criteria = service.parse_criteria(fields.get("filter_criteria"))

    def work() -> dict[str, Any]:
        c = service.create_smart(
            db,
            principal.user_id,
            name=fields.get("name", ""),
            description=fields.get("description", ""),
            criteria=criteria,
            is_public=bool(is_public),
        )
        return _one_smart(db, c, principal.user_id)

    return await run_in_threadpool(work)


@router.get("/smart/identifiers", response_model=list[int], summary="Ids of own and public smart collections")
def get_smart_collection_identifiers(db: Db, principal: Principal = require(Scope.COLLECTIONS_READ)) -> list[int]:
    return [c.id for c in service.list_smart(db, principal.user_id)]


@router.get("/smart/{id}", response_model=SmartCollectionSchema, summary="One smart collection, evaluated now")
def get_smart_collection(id: _Id, db: Db, principal: Principal = require(Scope.COLLECTIONS_READ)) -> dict[str, Any]:
    return _one_smart(db, service.visible_smart(db, id, principal.user_id), principal.user_id)


@router.put(
    "/smart/{id}",
    response_model=SmartCollectionSchema,
    summary="Edit a smart collection",
    openapi_extra=_form_body({"name": "", "description": "", "filter_criteria": ""}, artwork=False),
)
async def update_smart_collection(
    request: Request,
    id: _Id,
    ctx: Ctx,
    db: Db,
    is_public: bool | None = None,
    principal: Principal = require(Scope.COLLECTIONS_WRITE),
) -> dict[str, Any]:
    fields, _ = await _read_form(request, ctx)
    criteria = service.parse_criteria(fields["filter_criteria"]) if "filter_criteria" in fields else None

    def work() -> dict[str, Any]:
        c = service.update_smart(
            db,
            id,
            principal.user_id,
            name=fields.get("name"),
            description=fields.get("description"),
            criteria=criteria,
            is_public=is_public,
        )
        return _one_smart(db, c, principal.user_id)

    return await run_in_threadpool(work)


@router.delete("/smart/{id}", summary="Delete a smart collection")
def delete_smart_collection(id: _Id, db: Db, principal: Principal = require(Scope.COLLECTIONS_WRITE)) -> dict[str, str]:
    name = service.delete_smart(db, id, principal.user_id)
    return {"msg": f"Smart collection '{name}' deleted successfully"}


# --- virtual -----------------------------------------------------------------------------------------


@router.get(
    "/virtual",
    response_model=list[VirtualCollectionSchema],
    summary="Automatic collections by genre, franchise, company, IGDB collection or game mode",
)
def get_virtual_collections(
    db: Db,
    type: Annotated[str, Query(description="all, collection, franchise, genre, company or mode")] = "all",
    limit: Annotated[int | None, Query(ge=0)] = None,
    principal: Principal = require(Scope.COLLECTIONS_READ),
) -> list[dict[str, Any]]:
    return service.virtual_collections(db, type, principal.user_id, limit)


@router.get("/virtual/identifiers", response_model=list[str], summary="Ids of the virtual collections")
def get_virtual_collection_identifiers(db: Db, principal: Principal = require(Scope.COLLECTIONS_READ)) -> list[str]:
    return [c["id"] for c in service.virtual_collections(db, "all", principal.user_id)]


@router.get("/virtual/{id}", response_model=VirtualCollectionSchema, summary="One virtual collection")
def get_virtual_collection(id: str, db: Db, principal: Principal = require(Scope.COLLECTIONS_READ)) -> dict[str, Any]:
    return service.virtual_collection(db, id, principal.user_id)


# --- one standard collection (after the static paths) ---------------------------------------------


@router.get("/{id}", response_model=CollectionSchema, summary="One collection")
def get_collection(id: _Id, db: Db, principal: Principal = require(Scope.COLLECTIONS_READ)) -> dict[str, Any]:
    return _one(db, service.visible(db, id, principal.user_id))


@router.put(
    "/{id}",
    response_model=CollectionSchema,
    summary="Edit a collection (rom_ids as a JSON array string replaces its ROMs)",
    openapi_extra=_form_body({"rom_ids": "", "name": "", "description": "", "url_cover": ""}),
)
async def update_collection(
    request: Request,
    id: _Id,
    ctx: Ctx,
    db: Db,
    remove_cover: bool = False,
    is_public: bool | None = None,
    principal: Principal = require(Scope.COLLECTIONS_WRITE),
) -> dict[str, Any]:
    fields, artwork = await _read_form(request, ctx)

    def work() -> dict[str, Any]:
        c = service.update_collection(
            ctx,
            db,
            id,
            principal.user_id,
            fields=fields,
            is_public=is_public,
            remove_cover=remove_cover,
            artwork=artwork,
        )
        return _one(db, c)

    return await run_in_threadpool(work)


@router.delete("/{id}", summary="Delete a collection (its ROMs stay)")
def delete_collection(
    id: _Id, ctx: Ctx, db: Db, principal: Principal = require(Scope.COLLECTIONS_WRITE)
) -> dict[str, str]:
    name = service.delete_collection(ctx, db, id, principal.user_id)
    return {"msg": f"Collection '{name}' deleted successfully"}


@router.post("/{id}/roms", response_model=CollectionSchema, summary="Add ROMs to a collection")
def add_roms_to_collection(
    id: _Id, payload: CollectionRomsPayload, db: Db, principal: Principal = require(Scope.COLLECTIONS_WRITE)
) -> dict[str, Any]:
    return _one(db, service.add_roms(db, id, principal.user_id, payload.rom_ids))


@router.delete("/{id}/roms", response_model=CollectionSchema, summary="Remove ROMs from a collection")
def remove_roms_from_collection(
    id: _Id, payload: CollectionRomsPayload, db: Db, principal: Principal = require(Scope.COLLECTIONS_WRITE)
) -> dict[str, Any]:
    return _one(db, service.remove_roms(db, id, principal.user_id, payload.rom_ids))
