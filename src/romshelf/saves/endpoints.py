"""RomM's saves and states API (reference/romm_saves.md §1, §1b): thin HTTP over
:mod:`romshelf.saves.service`.

Upload parameters travel in the query string as RomM's clients send them; the same names are
also accepted as multipart form fields. File parts are streamed into staged uploads
(:mod:`romshelf.saves.forms`) before the service decides and places them.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import Body, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from romshelf.accounts.dependencies import DeferredAuth, Principal, require, require_deferred
from romshelf.accounts.scopes import Scope
from romshelf.core.context import AppContext, app_ctx
from romshelf.core.errors import BadRequest, Forbidden, NotFound, UnprocessableEntity
from romshelf.core.routing import APIRouter
from romshelf.core.schema import Schema
from romshelf.core.streaming import FileSource, serve
from romshelf.devices.models import Device
from romshelf.devices.service import get_owned_device
from romshelf.saves import forms, service, views
from romshelf.saves.models import AssetMixin, Save, Screenshot, State
from romshelf.saves.schemas import SaveSchema, StateSchema

router = APIRouter(tags=["saves"])
Ctx = Annotated[AppContext, Depends(app_ctx)]

SAVE_FILES = {"saveFile": "Save", "screenshotFile": "Screenshot"}
STATE_FILES = {"stateFile": "State", "screenshotFile": "Screenshot"}


class SlotSummarySchema(Schema):
    slot: str | None
    count: int
    latest: SaveSchema


class SaveSummarySchema(Schema):
    total_count: int
    slots: list[SlotSummarySchema]


# --- helpers ---------------------------------------------------------------------------------------
_SAVES_JSON = TypeAdapter(list[SaveSchema])
_STATES_JSON = TypeAdapter(list[StateSchema])


def _json(body: bytes) -> Response:
    """Schemas already built and validated here are encoded once; returning a Response skips
    FastAPI's second validation of ``response_model`` (which still documents the shape)."""
    return Response(content=body, media_type="application/json")


def _saves_json(items: list[SaveSchema]) -> Response:
    return _json(_SAVES_JSON.dump_json(items))


def _states_json(items: list[StateSchema]) -> Response:
    return _json(_STATES_JSON.dump_json(items))


def _device_scope(principal: Principal, device_id: str | None, scope: str) -> None:
    if device_id is not None and not principal.has(scope):
        raise Forbidden()


def _missing(loc: str, name: str) -> UnprocessableEntity:
    return UnprocessableEntity([{"type": "missing", "loc": [loc, name], "msg": "Field required", "input": None}])


def _int_field(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise UnprocessableEntity(
            [{"type": "int_parsing", "loc": ["body", name], "msg": "Input should be a valid integer", "input": value}]
        ) from None


def _bool_field(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on", "t", "y"):
        return True
    if v in ("0", "false", "no", "off", "f", "n"):
        return False
    raise UnprocessableEntity(
        [{"type": "bool_parsing", "loc": ["body", name], "msg": "Input should be a valid boolean", "input": value}]
    )


def _save_out(ctx: AppContext, save: Save, device: Device | None = None) -> Response:
    with ctx.db.read() as s:
        return _json(views.save_schemas(s, [save], device)[0].model_dump_json())


def _state_out(ctx: AppContext, state: State) -> Response:
    with ctx.db.read() as s:
        return _json(views.state_schemas(s, [state])[0].model_dump_json())


def _precheck(ctx: AppContext, user_id: int, rom_id: int | None, device_id: str | None, *, visible: bool) -> None:
    """Before reading the body: unknown device or ROM is a 404 without staging any bytes."""
    with ctx.db.read() as s:
        if device_id is not None:
            get_owned_device(s, user_id, device_id)
        if rom_id is not None:
            service.check_rom(s, rom_id, user_id, visible=visible)


def _serve_asset(request: Request, ctx: AppContext, asset: AssetMixin, label: str, *, inline_images: bool) -> Response:
    storage = ctx.storages.assets
    key = asset.full_path
    try:
        st = storage.stat(key)
    except Exception:
        raise NotFound(f"{label} file not found") from None
    if st is None or st.is_dir:
        raise NotFound(f"{label} file not found on disk")
    media = mimetypes.guess_type(asset.file_name)[0] or "application/octet-stream"
    disposition = "attachment"
    if inline_images:  # states: images inline, anything else as opaque bytes
        if media.startswith("image/"):
            disposition = "inline"
        else:
            media = "application/octet-stream"
    return serve(
        request.method,
        request.headers,
        FileSource(storage, key, st.size, st.mtime),
        filename=asset.file_name,
        media_type=media,
        disposition=disposition,
        etag=f'"{asset.id}-{int(asset.updated_at.timestamp() * 1_000_000)}-{st.size}"',
        last_modified=st.mtime,
    )


# --- saves -----------------------------------------------------------------------------------------
@router.post("/api/saves", response_model=SaveSchema)
async def add_save(
    request: Request,
    ctx: Ctx,
    rom_id: Annotated[int | None, Query()] = None,
    emulator: Annotated[str | None, Query()] = None,
    slot: Annotated[str | None, Query()] = None,
    device_id: Annotated[str | None, Query()] = None,
    session_id: Annotated[int | None, Query()] = None,
    overwrite: Annotated[bool | None, Query()] = None,
    autocleanup: Annotated[bool | None, Query()] = None,
    autocleanup_limit: Annotated[int | None, Query()] = None,
    auth: DeferredAuth = require_deferred(Scope.ASSETS_WRITE),
) -> SaveSchema:
    """Upload a save (multipart ``saveFile``, optional ``screenshotFile``). ``session_id`` is
    accepted and ignored (no sync sessions yet)."""

    def checks() -> Principal:
        """What comes before the body, in this order: credentials, size, device scope."""
        principal = auth.check()
        forms.check_request_size(ctx, request)
        _device_scope(principal, device_id, Scope.DEVICES_WRITE)
        return principal

    small = forms.is_small(request)
    checked: Principal | None = None
    if not small:
        # Unknown device or ROM: 404 before staging a large body (one thread hop for both).
        def prechecks() -> Principal:
            principal = checks()
            _precheck(ctx, principal.user_id, rom_id, device_id, visible=False)
            return principal

        checked = await run_in_threadpool(prechecks)
    try:
        # A small body is only held in memory here (staged in store(), after the checks): the
        # credential check runs in store()'s thread hop rather than a hop of its own.
        form = await forms.read_asset_form(ctx, request, SAVE_FILES, defer=small)
    except Exception:
        if small:  # a bad body answers only once the caller is known to be allowed to send one
            await run_in_threadpool(checks)
        raise

    def store() -> Response:
        nonlocal rom_id, emulator, slot, device_id, overwrite, autocleanup, autocleanup_limit
        principal = checked
        try:
            if principal is None:
                principal = checks()
            f = form.fields
            rom_id = rom_id if rom_id is not None else _int_field(f.get("rom_id"), "rom_id")
            if rom_id is None:
                raise _missing("query", "rom_id")
            emulator = emulator if emulator is not None else (f.get("emulator") or None)
            slot = slot if slot is not None else (f.get("slot") or None)
            if device_id is None and f.get("device_id"):
                device_id = f["device_id"]
                _device_scope(principal, device_id, Scope.DEVICES_WRITE)
            if overwrite is None:
                overwrite = _bool_field(f.get("overwrite"), "overwrite")
            if autocleanup is None:
                autocleanup = _bool_field(f.get("autocleanup"), "autocleanup")
            if autocleanup_limit is None:
                autocleanup_limit = _int_field(f.get("autocleanup_limit"), "autocleanup_limit")
            if "saveFile" not in form.file_names:
                raise _missing("body", "saveFile")
            form.complete()
            upload = form.files.pop("saveFile")
            shot = form.files.pop("screenshotFile", None)
            result = service.store_save(
                ctx,
                user_id=principal.user_id,
                rom_id=rom_id,
                upload=upload,
                emulator=emulator,
                slot=slot,
                device_id=device_id,
                overwrite=bool(overwrite),
                autocleanup=bool(autocleanup),
                autocleanup_limit=service.DEFAULT_AUTOCLEANUP_LIMIT if autocleanup_limit is None else autocleanup_limit,
                screenshot=shot,
                with_schema=True,
            )
        except (BadRequest, UnprocessableEntity):
            if small and principal is not None:  # an unknown device or ROM answers 404 before
                # anything else, as for large bodies
                _precheck(ctx, principal.user_id, rom_id, device_id, visible=False)
            raise
        finally:
            form.discard(ctx)
        assert result.schema is not None
        return _json(result.schema.model_dump_json())

    return await run_in_threadpool(store)  # type: ignore[return-value]


@router.get("/api/saves", response_model=list[SaveSchema])
def get_saves(
    ctx: Ctx,
    rom_id: int | None = None,
    platform_id: int | None = None,
    device_id: str | None = None,
    slot: str | None = None,
    principal: Principal = require(Scope.ASSETS_READ),
) -> list[SaveSchema]:
    """The caller's own saves (by id)."""
    _device_scope(principal, device_id, Scope.DEVICES_READ)
    with ctx.db.read() as s:
        device = get_owned_device(s, principal.user_id, device_id) if device_id is not None else None
        saves = service.list_saves(s, principal.user_id, rom_id=rom_id, platform_id=platform_id, slot=slot)
        return _saves_json(views.save_schemas(s, saves, device))  # type: ignore[return-value]


@router.get("/api/saves/identifiers", response_model=list[int])
def get_save_identifiers(ctx: Ctx, principal: Principal = require(Scope.ASSETS_READ)) -> list[int]:
    with ctx.db.read() as s:
        return [x.id for x in service.list_saves(s, principal.user_id)]


@router.get("/api/saves/summary", response_model=SaveSummarySchema)
def get_saves_summary(
    ctx: Ctx, rom_id: Annotated[int, Query()], principal: Principal = require(Scope.ASSETS_READ)
) -> SaveSummarySchema:
    """Per slot (``null`` is its own group): count and newest save; groups newest first."""
    with ctx.db.read() as s:
        saves = sorted(
            service.list_saves(s, principal.user_id, rom_id=rom_id) if rom_id else [],
            key=lambda x: (x.updated_at, x.id),
            reverse=True,
        )
        groups: dict[str | None, list[Save]] = {}
        for sv in saves:
            groups.setdefault(sv.slot, []).append(sv)
        latest = views.save_schemas(s, [g[0] for g in groups.values()])
        return SaveSummarySchema(
            total_count=len(saves),
            slots=[
                SlotSummarySchema(slot=slot_, count=len(g), latest=lt)
                for (slot_, g), lt in zip(groups.items(), latest, strict=True)
            ],
        )


@router.get("/api/saves/{save_id}", response_model=SaveSchema)
def get_save(
    save_id: int, ctx: Ctx, device_id: str | None = None, principal: Principal = require(Scope.ASSETS_READ)
) -> SaveSchema:
    _device_scope(principal, device_id, Scope.DEVICES_READ)
    with ctx.db.read() as s:
        device = get_owned_device(s, principal.user_id, device_id) if device_id is not None else None
        save = service.get_owned_save(s, principal.user_id, save_id)
        return views.save_schemas(s, [save], device)[0]


@router.get("/api/saves/{save_id}/content", response_class=Response)
@router.head("/api/saves/{save_id}/content", response_class=Response, include_in_schema=False)
def get_save_content(
    save_id: int,
    request: Request,
    ctx: Ctx,
    device_id: str | None = None,
    session_id: int | None = None,
    optimistic: bool = True,
    principal: Principal = require(Scope.ASSETS_READ),
) -> Response:
    """The save's bytes: the owner's, or anyone's public save (on a ROM the caller sees)."""
    _device_scope(principal, device_id, Scope.DEVICES_READ)
    with ctx.db.read() as s:
        device = get_owned_device(s, principal.user_id, device_id) if device_id is not None else None
        save = service.readable_asset(s, Save, save_id, principal.user_id)
    response = _serve_asset(request, ctx, save, "Save", inline_images=False)
    if device is not None and optimistic and save.user_id == principal.user_id and request.method == "GET":
        service.record_download(ctx, principal.user_id, save, device)  # type: ignore[arg-type]
    return response


class _DeviceBody(BaseModel):
    device_id: str


@router.post("/api/saves/{save_id}/downloaded", response_model=SaveSchema)
def save_downloaded(
    save_id: int,
    ctx: Ctx,
    device_id: Annotated[str, Body(embed=True)],
    principal: Principal = require(Scope.DEVICES_WRITE),
) -> SaveSchema:
    save, device = service.mark_downloaded(ctx, principal.user_id, save_id, device_id)
    return _save_out(ctx, save, device)


@router.post("/api/saves/{save_id}/track", response_model=SaveSchema)
def track_save(
    save_id: int,
    ctx: Ctx,
    device_id: Annotated[str, Body(embed=True)],
    principal: Principal = require(Scope.DEVICES_WRITE),
) -> SaveSchema:
    save, device = service.set_untracked(ctx, principal.user_id, save_id, device_id, False)
    return _save_out(ctx, save, device)


@router.post("/api/saves/{save_id}/untrack", response_model=SaveSchema)
def untrack_save(
    save_id: int,
    ctx: Ctx,
    device_id: Annotated[str, Body(embed=True)],
    principal: Principal = require(Scope.DEVICES_WRITE),
) -> SaveSchema:
    save, device = service.set_untracked(ctx, principal.user_id, save_id, device_id, True)
    return _save_out(ctx, save, device)


@router.put("/api/saves/{save_id}", response_model=SaveSchema)
async def update_save(
    save_id: int,
    request: Request,
    ctx: Ctx,
    device_id: Annotated[str | None, Query()] = None,
    overwrite: Annotated[bool, Query()] = False,
    principal: Principal = require(Scope.ASSETS_WRITE),
) -> SaveSchema:
    """New content in place (``saveFile``) and/or a new ``screenshotFile``. With a
    ``device_id`` that is behind the save: 409 unless ``overwrite``."""
    forms.check_request_size(ctx, request)
    _device_scope(principal, device_id, Scope.DEVICES_WRITE)
    await run_in_threadpool(_precheck, ctx, principal.user_id, None, device_id, visible=False)
    form = await forms.read_asset_form(ctx, request, SAVE_FILES)
    upload, shot = form.files.pop("saveFile", None), form.files.pop("screenshotFile", None)
    form.discard(ctx)
    result = await run_in_threadpool(
        lambda: service.replace_save(
            ctx,
            user_id=principal.user_id,
            save_id=save_id,
            upload=upload,
            screenshot=shot,
            device_id=device_id,
            overwrite=overwrite,
        )
    )
    return await run_in_threadpool(_save_out, ctx, result.save, result.device)


@router.put("/api/saves/{save_id}/visibility", response_model=SaveSchema)
def save_visibility(
    save_id: int,
    ctx: Ctx,
    is_public: Annotated[bool, Body(embed=True)],
    principal: Principal = require(Scope.ASSETS_WRITE),
) -> SaveSchema:
    save = service.set_visibility(ctx, principal.user_id, Save, save_id, is_public)
    assert isinstance(save, Save)
    return _save_out(ctx, save)


@router.post("/api/saves/delete", response_model=list[int])
def delete_saves(
    ctx: Ctx,
    saves: Annotated[list[int], Body(embed=True)],
    principal: Principal = require(Scope.ASSETS_WRITE),
) -> list[int]:
    """Delete saves with their files and screenshots: all of them, or none (404 for an id that
    is not the caller's)."""
    return service.delete_saves(ctx, principal.user_id, saves)


# --- states ----------------------------------------------------------------------------------------
@router.post("/api/states", response_model=StateSchema)
async def add_state(
    request: Request,
    ctx: Ctx,
    rom_id: Annotated[int | None, Query()] = None,
    emulator: Annotated[str | None, Query()] = None,
    principal: Principal = require(Scope.ASSETS_WRITE),
) -> StateSchema:
    """Upload a state (multipart ``stateFile``, optional ``screenshotFile``)."""
    forms.check_request_size(ctx, request)
    small = forms.is_small(request)
    if not small:  # unknown or hidden ROM: 404 before staging a large body
        await run_in_threadpool(_precheck, ctx, principal.user_id, rom_id, None, visible=True)
    form = await forms.read_asset_form(ctx, request, STATE_FILES, defer=small)

    def store() -> Response:
        nonlocal rom_id, emulator
        try:
            f = form.fields
            rom_id = rom_id if rom_id is not None else _int_field(f.get("rom_id"), "rom_id")
            if rom_id is None:
                raise _missing("query", "rom_id")
            emulator = emulator if emulator is not None else (f.get("emulator") or None)
            if "stateFile" not in form.file_names:
                raise _missing("body", "stateFile")
            form.complete()
            upload = form.files.pop("stateFile")
            shot = form.files.pop("screenshotFile", None)
            result = service.store_state(
                ctx, user_id=principal.user_id, rom_id=rom_id, upload=upload, emulator=emulator, screenshot=shot
            )
        except (BadRequest, UnprocessableEntity):
            if small:  # an unknown or hidden ROM answers 404 before anything else
                _precheck(ctx, principal.user_id, rom_id, None, visible=True)
            raise
        finally:
            form.discard(ctx)
        return _state_out(ctx, result.state)

    return await run_in_threadpool(store)  # type: ignore[return-value]


@router.get("/api/states", response_model=list[StateSchema])
def get_states(
    ctx: Ctx,
    rom_id: int | None = None,
    platform_id: int | None = None,
    principal: Principal = require(Scope.ASSETS_READ),
) -> list[StateSchema]:
    with ctx.db.read() as s:
        states = service.list_states(s, principal.user_id, rom_id=rom_id, platform_id=platform_id)
        return _states_json(views.state_schemas(s, states))  # type: ignore[return-value]


@router.get("/api/states/identifiers", response_model=list[int])
def get_state_identifiers(ctx: Ctx, principal: Principal = require(Scope.ASSETS_READ)) -> list[int]:
    with ctx.db.read() as s:
        return [x.id for x in service.list_states(s, principal.user_id)]


@router.get("/api/states/{state_id}", response_model=StateSchema)
def get_state(state_id: int, ctx: Ctx, principal: Principal = require(Scope.ASSETS_READ)) -> StateSchema:
    with ctx.db.read() as s:
        return views.state_schemas(s, [service.get_owned_state(s, principal.user_id, state_id)])[0]


@router.get("/api/states/{state_id}/content", response_class=Response)
@router.head("/api/states/{state_id}/content", response_class=Response, include_in_schema=False)
def get_state_content(
    state_id: int, request: Request, ctx: Ctx, principal: Principal = require(Scope.ASSETS_READ)
) -> Response:
    with ctx.db.read() as s:
        state = service.readable_asset(s, State, state_id, principal.user_id)
    return _serve_asset(request, ctx, state, "State", inline_images=True)


@router.put("/api/states/{state_id}", response_model=StateSchema)
async def update_state(
    state_id: int, request: Request, ctx: Ctx, principal: Principal = require(Scope.ASSETS_WRITE)
) -> StateSchema:
    forms.check_request_size(ctx, request)
    form = await forms.read_asset_form(ctx, request, STATE_FILES)
    upload, shot = form.files.pop("stateFile", None), form.files.pop("screenshotFile", None)
    form.discard(ctx)
    result = await run_in_threadpool(
        lambda: service.replace_state(ctx, user_id=principal.user_id, state_id=state_id, upload=upload, screenshot=shot)
    )
    return await run_in_threadpool(_state_out, ctx, result.state)


@router.put("/api/states/{state_id}/visibility", response_model=StateSchema)
def state_visibility(
    state_id: int,
    ctx: Ctx,
    is_public: Annotated[bool, Body(embed=True)],
    principal: Principal = require(Scope.ASSETS_WRITE),
) -> StateSchema:
    state = service.set_visibility(ctx, principal.user_id, State, state_id, is_public)
    assert isinstance(state, State)
    return _state_out(ctx, state)


@router.post("/api/states/delete", response_model=list[int])
def delete_states(
    ctx: Ctx,
    states: Annotated[list[int], Body(embed=True)],
    principal: Principal = require(Scope.ASSETS_WRITE),
) -> list[int]:
    return service.delete_states(ctx, principal.user_id, states)


# --- screenshots attached to saves/states (their download_path) --------------------------------------
@router.get("/api/screenshots/{screenshot_id}/content", response_class=Response)
@router.head("/api/screenshots/{screenshot_id}/content", response_class=Response, include_in_schema=False)
def get_screenshot_content(
    screenshot_id: int, request: Request, ctx: Ctx, principal: Principal = require(Scope.ASSETS_READ)
) -> Response:
    """The owner's screenshot, or anyone's public one (on a ROM the caller sees)."""
    with ctx.db.read() as s:
        shot = service.readable_asset(s, Screenshot, screenshot_id, principal.user_id)
    return _serve_asset(request, ctx, shot, "Screenshot", inline_images=True)


@router.delete("/api/screenshots/{screenshot_id}", status_code=204, response_class=Response)
def delete_screenshot(screenshot_id: int, ctx: Ctx, principal: Principal = require(Scope.ASSETS_WRITE)) -> Response:
    service.delete_screenshot(ctx, principal.user_id, screenshot_id)
    return Response(status_code=204)
