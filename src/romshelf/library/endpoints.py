"""HTTP surface of the library: RomM's chunked upload protocol, a single-request upload, scans
as background jobs, job status, and RomM's task API.

Scopes: uploads need ``roms.write`` (as in RomM). Starting a scan and reading jobs/tasks need
``tasks.run`` (RomM's scan trigger and task endpoints use it; admins have it).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import unquote

import anyio
import sqlalchemy as sa
from fastapi import Body, Depends, FastAPI, Header, Request, Response, status
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from romshelf.accounts.dependencies import Principal, require
from romshelf.accounts.scopes import Scope
from romshelf.core import jobs, multipart
from romshelf.core.context import AppContext, app_ctx
from romshelf.core.errors import BadRequest, NotFound, PayloadTooLarge
from romshelf.core.multipart import PartHandler, client_file_name
from romshelf.core.routing import APIRouter
from romshelf.library import service, tasks, uploads
from romshelf.library.schemas import (
    ChunkReceived,
    JobSchema,
    ScanRequest,
    TaskExecution,
    TaskInfo,
    TaskStatus,
    UploadedRom,
    UploadStarted,
)
from romshelf.platforms.models import Platform

router = APIRouter(tags=["library"])
Ctx = Annotated[AppContext, Depends(app_ctx)]
WRITE_PIECE = 1024 * 1024  # request bytes are handed to the file writer in pieces of this size

_PCT = re.compile(r"%[0-9A-Fa-f]{2}")


def header_filename(value: str) -> str:
    """A file name from a header: HTTP headers are Latin-1, so a client sending UTF-8 bytes raw
    arrives garbled; clients that percent-encode (``encodeURIComponent``) are decoded too.
    The result is checked like any client name afterwards (``..``, slashes, NUL: 400)."""
    try:
        value = value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    if _PCT.search(value):
        try:
            value = unquote(value, errors="strict")
        except UnicodeDecodeError:
            pass  # not percent-encoding after all: keep the name as sent
    return value


# --- chunked uploads (RomM) -------------------------------------------------------------------------
@router.post("/api/roms/upload/start", status_code=status.HTTP_201_CREATED, response_model=UploadStarted)
def start_chunked_upload(
    ctx: Ctx,
    x_upload_platform: Annotated[int, Header(ge=1)],
    x_upload_filename: Annotated[str, Header()],
    x_upload_total_size: Annotated[int, Header(ge=1)],
    x_upload_total_chunks: Annotated[int, Header(ge=1)],
    principal: Principal = require(Scope.ROMS_WRITE),
) -> UploadStarted:
    """Open a chunked upload session for one ROM file."""
    upload = uploads.start(
        ctx,
        user_id=principal.user_id,
        platform_id=x_upload_platform,
        file_name=header_filename(x_upload_filename),
        total_size=x_upload_total_size,
        total_chunks=x_upload_total_chunks,
    )
    return UploadStarted(upload_id=upload.id)


@router.put("/api/roms/upload/{upload_id}", response_model=ChunkReceived)
async def upload_chunk(
    upload_id: str,
    request: Request,
    ctx: Ctx,
    x_chunk_index: Annotated[int, Header(ge=0)],
    principal: Principal = require(Scope.ROMS_WRITE),
) -> ChunkReceived:
    """Store one chunk (raw body), streamed to disk; a re-sent chunk replaces the earlier one."""
    length = _content_length(request)
    target = await run_in_threadpool(
        uploads.prepare_chunk,
        ctx,
        user_id=principal.user_id,
        upload_id=upload_id,
        index=x_chunk_index,
        content_length=length,
    )
    tmp = ctx.storages.tmp
    writer = await run_in_threadpool(tmp.writer, target.key, overwrite=True, max_bytes=target.max_bytes)
    try:
        async for piece in _pieces(request):
            await run_in_threadpool(writer.write, piece)
        stored = await run_in_threadpool(writer.commit)
    except PayloadTooLarge:
        writer.abort()
        raise PayloadTooLarge("Chunk exceeds maximum allowed size") from None
    except FileNotFoundError:
        writer.abort()  # the session was canceled (its folder removed) while the chunk streamed
        raise NotFound("Upload session not found or expired") from None
    except OSError as e:
        writer.abort()
        full = service.disk_full(e)
        if full is not None:
            raise full from None
        raise
    except BaseException:
        writer.abort()
        raise
    received, total = await run_in_threadpool(
        uploads.record_chunk, ctx, user_id=principal.user_id, target=target, size=stored.size
    )
    return ChunkReceived(received=received, total=total)


@router.post("/api/roms/upload/{upload_id}/complete", status_code=status.HTTP_201_CREATED, response_model=UploadedRom)
def complete_chunked_upload(upload_id: str, ctx: Ctx, principal: Principal = require(Scope.ROMS_WRITE)) -> UploadedRom:
    """Assemble the chunks into the library (streamed, hashed in the same pass); the ROM exists
    when this returns."""
    rom = uploads.complete(ctx, user_id=principal.user_id, upload_id=upload_id)
    return UploadedRom.model_validate(rom)


@router.post("/api/roms/upload/{upload_id}/cancel", status_code=status.HTTP_204_NO_CONTENT)
def cancel_chunked_upload(upload_id: str, ctx: Ctx, principal: Principal = require(Scope.ROMS_WRITE)) -> Response:
    """Cancel a chunked upload and remove its chunks (204 also if the session is gone)."""
    uploads.cancel(ctx, user_id=principal.user_id, upload_id=upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- single-request upload --------------------------------------------------------------------------
@router.post("/api/roms/upload", status_code=status.HTTP_201_CREATED, response_model=UploadedRom)
async def upload_rom(
    request: Request,
    ctx: Ctx,
    x_upload_platform: Annotated[int, Header(ge=1)],
    x_upload_filename: Annotated[str | None, Header()] = None,
    principal: Principal = require(Scope.ROMS_WRITE),
) -> UploadedRom:
    """Upload a small ROM in one request: the raw body (any content type), or a
    ``multipart/form-data`` body with one file. Streamed into the library and hashed on the way;
    limited to ``single_upload_max_bytes`` (use the chunked protocol beyond)."""
    limit = ctx.settings.single_upload_max_bytes
    length = _content_length(request)
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    is_multipart = content_type == b"multipart/form-data"
    if length is not None and length > limit and not is_multipart:
        raise PayloadTooLarge(f"File exceeds the maximum allowed size of {limit} bytes; use the chunked upload")
    fs_slug = await run_in_threadpool(_platform_fs_slug, ctx, x_upload_platform)
    if fs_slug is None:
        raise BadRequest("Platform not found")
    boundary = params.get(b"boundary")
    if is_multipart and not boundary:
        raise BadRequest("Invalid multipart body: no boundary in the Content-Type header")
    body = _BodyReader(request, boundary if is_multipart else None)
    await body.prime()
    name = header_filename(x_upload_filename) if x_upload_filename else body.part_filename
    if not name:
        raise BadRequest("Missing file name: send the x-upload-filename header (or a multipart file with a name)")
    size = None if is_multipart else length
    rom = await run_in_threadpool(service.ingest, ctx, fs_slug, body, name, size=size, max_bytes=limit)
    return UploadedRom.model_validate(rom)


def _platform_fs_slug(ctx: AppContext, platform_id: int) -> str | None:
    with ctx.db.read() as s:
        platform = s.get(Platform, platform_id)
        return platform.fs_slug if platform else None


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("Invalid Content-Length header") from None
    if value < 0:
        raise BadRequest("Invalid Content-Length header")
    return value


async def _pieces(request: Request) -> AsyncIterator[bytes]:
    """The request body in pieces of about WRITE_PIECE bytes (fewer thread hops per byte)."""
    buf = bytearray()
    try:
        async for data in request.stream():
            buf += data
            if len(buf) >= WRITE_PIECE:
                yield bytes(buf)
                buf.clear()
    except ClientDisconnect:
        raise BadRequest("Upload interrupted: the client closed the connection") from None
    if buf:
        yield bytes(buf)


class _BodyReader:
    """A request body as a blocking ``readinto`` stream for a worker thread (the thread pulls
    pieces from the event loop), optionally unwrapping the first file of a multipart body."""

    def __init__(self, request: Request, boundary: bytes | None) -> None:
        self._source = _pieces(request).__aiter__()
        self._pending = bytearray()
        self._eof = False
        self.part_filename: str | None = None
        self._parser: MultipartParser | None = None
        if boundary is not None:
            self._setup_multipart(boundary)

    def _setup_multipart(self, boundary: bytes) -> None:
        self._part = 0  # 0: before any file part, 1: in the file part, 2: after it
        reader = self

        class FirstFile(PartHandler):
            def begin_file(self, name: str, filename: bytes) -> bool:
                if reader._part != 0:
                    return False
                reader._part = 1
                reader.part_filename = client_file_name(filename)
                return True

            def file_data(self, data: bytes) -> None:
                reader._pending += data

            def end_file(self) -> None:
                reader._part = 2

        self._handler = FirstFile()
        self._parser = self._handler.parser(boundary)

    async def _fill(self) -> None:
        """Get more body bytes (the file part's, for multipart) into the pending buffer."""
        while not self._pending and not self._eof:
            try:
                data = await self._source.__anext__()
            except StopAsyncIteration:
                self._eof = True
                if self._parser is not None:
                    self._parser.finalize()
                    if self._part == 0:
                        raise BadRequest("The multipart body holds no file") from None
                return
            if self._parser is None:
                self._pending += data
            else:
                multipart.write(self._parser, self._handler, data)
                if self._part == 2 and not self._pending:
                    self._eof = True  # the file part is over; ignore the rest

    async def prime(self) -> None:
        """Read until the first file bytes (or the end): the multipart file name is known then."""
        await self._fill()

    def readinto(self, buffer: Any) -> int:
        if not self._pending and not self._eof:
            anyio.from_thread.run(self._fill)
        n = min(len(buffer), len(self._pending))
        if n:
            buffer[:n] = self._pending[:n]
            del self._pending[:n]
        return n

    def read(self, size: int = -1) -> bytes:
        buf = bytearray(size if size > 0 else WRITE_PIECE)
        n = self.readinto(buf)
        return bytes(buf[:n])


# --- scans and jobs ---------------------------------------------------------------------------------
def _platform_slugs(ctx: AppContext, wanted: list[int | str]) -> list[str]:
    ids = [p for p in wanted if isinstance(p, int)]
    names = [p for p in wanted if isinstance(p, str)]
    if ids:
        with ctx.db.read() as s:
            found = dict(s.execute(sa.select(Platform.id, Platform.fs_slug).where(Platform.id.in_(ids))).all())
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise NotFound(f"Platform with id '{unknown[0]}' not found")
        names += [found[i] for i in ids]
    return list(dict.fromkeys(names))


@router.post("/api/scan", status_code=status.HTTP_202_ACCEPTED, response_model=JobSchema, tags=["tasks"])
def start_scan(
    ctx: Ctx,
    payload: Annotated[ScanRequest | None, Body()] = None,
    principal: Principal = require(Scope.TASKS_RUN),
) -> JobSchema:
    """Start a library scan in the background (409 if one is queued or running). Poll
    ``GET /api/jobs/{id}`` for progress: files and bytes done/total, rate, ETA."""
    payload = payload or ScanRequest()
    job = service.start_scan(
        ctx, platforms=_platform_slugs(ctx, payload.platforms), full=payload.full, user_id=principal.user_id
    )
    return JobSchema.of(job)


@router.get("/api/scan", response_model=JobSchema, tags=["tasks"])
def latest_scan(ctx: Ctx, _: Principal = require(Scope.TASKS_RUN)) -> JobSchema:
    """The current or most recent scan."""
    found = jobs.jobs_of(ctx).list(kind_name=tasks.SCAN, limit=1)
    if not found:
        raise NotFound("No scan has run yet")
    return JobSchema.of(found[0])


@router.get("/api/jobs", response_model=list[JobSchema], tags=["tasks"])
def list_jobs(ctx: Ctx, kind: str | None = None, _: Principal = require(Scope.TASKS_RUN)) -> list[JobSchema]:
    """Recent background jobs, newest first (100 at most)."""
    return [JobSchema.of(j) for j in jobs.jobs_of(ctx).list(kind_name=kind)]


@router.get("/api/jobs/{job_id}", response_model=JobSchema, tags=["tasks"])
def get_job(job_id: str, ctx: Ctx, _: Principal = require(Scope.TASKS_RUN)) -> JobSchema:
    return JobSchema.of(jobs.jobs_of(ctx).get(job_id))


@router.post("/api/jobs/{job_id}/cancel", response_model=JobSchema, tags=["tasks"])
def cancel_job(job_id: str, ctx: Ctx, _: Principal = require(Scope.TASKS_RUN)) -> JobSchema:
    """Cancel a queued job, or ask a running one to stop (it stops at its next file)."""
    return JobSchema.of(jobs.jobs_of(ctx).cancel(job_id))


# RomM's task API -------------------------------------------------------------------------------
@router.get("/api/tasks", response_model=dict[str, list[TaskInfo]], tags=["tasks"])
def list_tasks(_: Principal = require(Scope.TASKS_RUN)) -> dict[str, list[TaskInfo]]:
    manual = [
        TaskInfo(
            name=k.name,
            type=k.task_type,
            manual_run=True,
            title=k.title,
            description=k.description,
            enabled=True,
            cron_string="",
        )
        for k in sorted(jobs.kinds().values(), key=lambda k: k.name)
    ]
    return {"scheduled": [], "manual": manual, "watcher": []}


@router.get("/api/tasks/status", response_model=list[TaskStatus], tags=["tasks"])
def tasks_status(ctx: Ctx, _: Principal = require(Scope.TASKS_RUN)) -> list[TaskStatus]:
    return [TaskStatus.of(j) for j in jobs.jobs_of(ctx).list()]


@router.post("/api/tasks/run/{task_name}", response_model=TaskExecution, tags=["tasks"])
def run_task(
    task_name: str,
    ctx: Ctx,
    task_kwargs: Annotated[dict[str, Any] | None, Body()] = None,
    principal: Principal = require(Scope.TASKS_RUN),
) -> TaskExecution:
    name = tasks.ALIASES.get(task_name, task_name)
    if jobs.kind(name) is None:
        raise NotFound(f"Task '{task_name}' not found")
    kwargs = task_kwargs or {}
    if name == tasks.SCAN:
        payload = ScanRequest.model_validate(kwargs)
        job = service.start_scan(
            ctx, platforms=_platform_slugs(ctx, payload.platforms), full=payload.full, user_id=principal.user_id
        )
    else:
        job = jobs.jobs_of(ctx).enqueue(name, kwargs, user_id=principal.user_id)
    st = TaskStatus.of(job)
    return TaskExecution(
        task_name=task_name, task_id=st.task_id, status=st.status, created_at=st.created_at, enqueued_at=st.enqueued_at
    )


@router.get("/api/tasks/{task_id}", response_model=TaskStatus, tags=["tasks"])
def get_task(task_id: str, ctx: Ctx, _: Principal = require(Scope.TASKS_RUN)) -> TaskStatus:
    return TaskStatus.of(jobs.jobs_of(ctx).get(task_id))


# --- start-up / shut-down ---------------------------------------------------------------------------
def _startup(ctx: AppContext) -> None:
    queue = jobs.jobs_of(ctx)
    jobs.run_housekeeping(ctx)
    queue.start_consumer(ctx.settings.jobs_workers)


def _shutdown(ctx: AppContext) -> None:
    queue = ctx.extras.get("jobs")
    if queue is not None:
        queue.stop_consumer()


def setup(app: FastAPI) -> None:
    app.state.startup_hooks.append(_startup)
    app.state.shutdown_hooks.append(_shutdown)
