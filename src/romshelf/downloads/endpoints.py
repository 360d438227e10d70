"""HTTP surface of the downloads domain: ROM content, single files, bulk zips (GET and HEAD).

All three honour Range / If-Range (206, multi-range, 416) and If-None-Match (304), on plain
files and on zips alike (see :mod:`romshelf.downloads.ziplayout`). The plan is made in a short
read transaction by :mod:`romshelf.downloads.service`; bytes stream afterwards.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from starlette.responses import Response

from romshelf.accounts.dependencies import Principal, require
from romshelf.accounts.scopes import Scope
from romshelf.core.context import get_ctx
from romshelf.core.routing import APIRouter
from romshelf.core.streaming import serve
from romshelf.downloads import service
from romshelf.downloads.service import Download, Selector

router = APIRouter(tags=["downloads"])

FILE_RESPONSES = {
    200: {"description": "The bytes (a zip for several files)", "content": {"application/octet-stream": {}}},
    206: {"description": "Partial content (Range)"},
    304: {"description": "Not modified (If-None-Match)"},
    404: {"description": "Not found"},
    416: {"description": "Range not satisfiable"},
}


def _respond(request: Request, d: Download) -> Response:
    return serve(
        request.method,
        request.headers,
        d.source,
        filename=d.filename,
        media_type=d.media_type,
        disposition=d.disposition,
        etag=d.etag,
        last_modified=d.last_modified,
        extra_headers=d.headers,
    )


@router.get("/api/roms/download", responses=FILE_RESPONSES, response_class=Response)
@router.head("/api/roms/download", response_class=Response, include_in_schema=False)
def download_roms(
    request: Request,
    rom_ids: Annotated[str | None, Query(description="Comma-separated ROM ids (e.g. 1,2,3)")] = None,
    platform_id: Annotated[int | None, Query()] = None,
    collection_id: Annotated[int | None, Query()] = None,
    virtual_collection_id: Annotated[str | None, Query()] = None,
    smart_collection_id: Annotated[int | None, Query()] = None,
    filename: Annotated[str | None, Query(description="Name of the zip file")] = None,
    principal: Principal = require(Scope.ROMS_READ),
) -> Response:
    """Several ROMs as one zip, streamed (resumable with Range)."""
    selector = Selector(
        rom_ids=service.parse_id_list(rom_ids, "Invalid ROM ID format. Must be comma-separated integers."),
        platform_id=platform_id,
        collection_id=collection_id,
        smart_collection_id=smart_collection_id,
        virtual_collection_id=virtual_collection_id,
    )
    return _respond(request, service.bulk(get_ctx(request), principal, selector, filename))


@router.get("/api/roms/{id}/content/{file_name:path}", responses=FILE_RESPONSES, response_class=Response)
@router.head("/api/roms/{id}/content/{file_name:path}", response_class=Response)
def rom_content(
    request: Request,
    id: Annotated[int, Path(ge=1, description="ROM id")],
    file_name: Annotated[str, Path(description="Name for the download (the bytes come from the database)")],
    file_ids: Annotated[str | None, Query(description="Comma-separated file ids (a subset of the ROM's files)")] = None,
    hidden_folder: Annotated[bool, Query(description="Put a zip's entries under .hidden/")] = False,
    principal: Principal = require(Scope.ROMS_READ),
) -> Response:
    """A ROM's file, or its files as a zip (with an .m3u for multi-disc games)."""
    d = service.rom_content(get_ctx(request), id, file_name, file_ids=file_ids, hidden_folder=hidden_folder)
    return _respond(request, d)


@router.get("/api/roms/{id}/files/content/{file_name:path}", responses=FILE_RESPONSES, response_class=Response)
@router.head("/api/roms/{id}/files/content/{file_name:path}", response_class=Response, include_in_schema=False)
def rom_file_content(
    request: Request,
    id: Annotated[int, Path(ge=1, description="RomFile id")],
    file_name: Annotated[str, Path(description="Ignored; the name comes from the database")],
    principal: Principal = require(Scope.ROMS_READ),
) -> Response:
    """One file of a ROM, by its RomFile id."""
    return _respond(request, service.file_content(get_ctx(request), id))
