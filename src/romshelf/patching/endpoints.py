"""HTTP surface of the patching domain: ``POST /api/roms/{id}/patch``.

``id`` is the RomFile id of the base ROM. The body is a multipart form (``patch_file_id`` or
the file ``patch_file``, and ``output_file_name``), a urlencoded form, or JSON
(``{"patch_file_id": 28, "output_file_name": "..."}``). The answer is the patched file,
streamed, with ``X-Patch-Validated: true|false`` (and ``X-Patch-Format``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Path, Request
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from romshelf.accounts.dependencies import Principal, require
from romshelf.accounts.scopes import Scope
from romshelf.core.context import AppContext, get_ctx
from romshelf.core.routing import APIRouter
from romshelf.core.streaming import FileSource, serve
from romshelf.patching import service
from romshelf.patching.forms import read_patch_form

router = APIRouter(tags=["patching"])

_FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "patch_file_id": {"type": "integer", "description": "RomFile id of a patch in the library"},
        "patch_file": {"type": "string", "format": "binary", "description": "A patch to upload (not stored)"},
        "output_file_name": {"type": "string", "description": "Name of the patched file (its extension is the ROM's)"},
    },
}
_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "patch_file_id": {"type": "integer"},
        "output_file_name": {"type": "string"},
    },
}


@router.post(
    "/api/roms/{id}/patch",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {"schema": _FORM_SCHEMA},
                "application/json": {"schema": _JSON_SCHEMA},
                "application/x-www-form-urlencoded": {"schema": _JSON_SCHEMA},
            }
        }
    },
    responses={
        200: {
            "description": "The patched file; X-Patch-Validated says whether the patch's checksums matched",
            "content": {"application/octet-stream": {}},
        },
        400: {"description": "Malformed, truncated, hostile or unsupported patch; both or neither patch given"},
        404: {"description": "ROM file or patch file not found"},
    },
)
async def patch_rom(
    request: Request,
    id: Annotated[int, Path(ge=1, description="RomFile id of the ROM to patch")],
    principal: Principal = require(Scope.ROMS_READ),
) -> Response:
    """Apply a patch (IPS, UPS, BPS, PPF, APS, RUP, xdelta/VCDIFF) to a ROM file and download the result."""
    ctx: AppContext = get_ctx(request)
    rom = await run_in_threadpool(service.base_rom, ctx, id)
    work = await run_in_threadpool(service.work_dir, ctx)
    try:
        form = await read_patch_form(request, work, ctx.settings.patch_max_bytes)
        patched = await run_in_threadpool(
            service.apply,
            ctx,
            rom,
            work,
            patch_file_id=form.patch_file_id,
            upload=form.upload,
            upload_name=form.upload_name,
            upload_size=form.upload_size,
            output_file_name=form.output_file_name,
        )
        source = FileSource.stat(ctx.storages.tmp, patched.path.relative_to(ctx.storages.tmp.root).as_posix())
    except BaseException:
        await run_in_threadpool(service.remove_work_dir, work)
        raise
    return serve(
        "POST",
        {},
        source,
        filename=patched.name,
        extra_headers={
            "X-Patch-Validated": "true" if patched.result.validated else "false",
            "X-Patch-Format": patched.result.format,
        },
        background=BackgroundTask(service.remove_work_dir, work),
    )


def setup(app: FastAPI) -> None:
    """Sweep work folders a crash may have left behind."""
    app.state.startup_hooks.append(service.sweep_stale)
