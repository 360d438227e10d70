"""Chunked ROM uploads, RomM's protocol (reference/romm_roms.md §1.1, §8), done safely.

``start`` opens a session (a database row, so any replica can take any chunk); each chunk is
streamed to ``tmp/uploads/{id}/{index:05d}`` (atomically: a retried chunk replaces the old one
whole); ``complete`` checks every chunk is there and the sizes add up, then streams the chunks
into the library through :func:`romshelf.library.service.ingest` - written atomically, hashed
in the same pass, Rom row created - and removes the session. ``cancel`` removes everything.

Sessions expire ``upload_ttl_seconds`` after their last activity; expired ones are removed when
touched and by the periodic housekeeping (with any chunk folder no session owns). A failed
completion removes the session and its chunks: nothing is left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.core.context import AppContext
from romshelf.core.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from romshelf.core.hashing import ConcatReader
from romshelf.core.timeutil import utcnow
from romshelf.library import service
from romshelf.library.models import UPLOAD_ASSEMBLING, UPLOAD_OPEN, UploadChunk, UploadSession
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom

log = logging.getLogger("romshelf.library.uploads")

UPLOADS_DIR = "uploads"
ORPHAN_AFTER = dt.timedelta(hours=1)


InsufficientStorage = service.InsufficientStorage


def chunk_key(upload_id: str, index: int) -> str:
    return f"{UPLOADS_DIR}/{upload_id}/{index:05d}"


def parse_upload_id(upload_id: str) -> str:
    try:
        return str(uuid.UUID(upload_id))
    except (ValueError, AttributeError, TypeError):
        raise BadRequest("Invalid upload ID") from None


def _expiry(ctx: AppContext) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=ctx.settings.upload_ttl_seconds)


def _remove(ctx: AppContext, upload_id: str) -> None:
    """Delete a session row (chunks cascade) and its chunk files."""
    with ctx.db.transaction() as s:
        s.execute(sa.delete(UploadChunk).where(UploadChunk.upload_id == upload_id))
        s.execute(sa.delete(UploadSession).where(UploadSession.id == upload_id))
    ctx.storages.tmp.delete_tree(f"{UPLOADS_DIR}/{upload_id}")


def _load(ctx: AppContext, s: Session, upload_id: str, user_id: int) -> UploadSession:
    """The caller's live session: 404 if unknown or expired (an expired one is removed), 403 if
    it belongs to someone else."""
    upload = s.get(UploadSession, upload_id)
    if upload is None:
        raise NotFound("Upload session not found or expired")
    if upload.expires_at <= utcnow() and upload.status == UPLOAD_OPEN:
        s.rollback()
        _remove(ctx, upload_id)
        raise NotFound("Upload session not found or expired")
    if upload.user_id != user_id:
        raise Forbidden()
    return upload


def _check_free_space(ctx: AppContext, needed: int) -> None:
    for storage in (ctx.storages.tmp, ctx.storages.library):
        path = storage.local_path("")
        if path is None:
            continue
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            continue
        if free < needed:
            raise InsufficientStorage(
                f"Not enough free disk space for this upload ({needed} bytes needed, {free} free)"
            )


# --- start ----------------------------------------------------------------------------------------
def start(
    ctx: AppContext, *, user_id: int, platform_id: int, file_name: str, total_size: int, total_chunks: int
) -> UploadSession:
    name = service.check_rom_name(file_name)
    if total_size < 1 or total_chunks < 1:
        raise BadRequest("x-upload-total-size and x-upload-total-chunks must be at least 1")
    if total_chunks > total_size:
        raise BadRequest("x-upload-total-chunks cannot be larger than x-upload-total-size")
    limit = ctx.settings.upload_max_chunk_bytes
    smallest = math.ceil(total_size / total_chunks)  # the largest chunk when all are equal
    if smallest > limit:
        raise BadRequest(
            f"Chunks of {smallest} bytes exceed the server maximum of {limit} bytes; "
            f"use at least {math.ceil(total_size / limit)} chunks"
        )
    # Clients pick their own chunk size (RomM's web UI sends 10 MiB chunks and a smaller last
    # one), so a chunk may be anything up to the server maximum that leaves at least one byte
    # for each other chunk; complete checks they add up to the total.
    chunk_size = min(limit, total_size - (total_chunks - 1))
    with ctx.db.read() as s:
        platform = s.get(Platform, platform_id)
        if platform is None:
            raise BadRequest("Platform not found")
        taken = s.scalar(
            sa.select(Rom.id).where(Rom.platform_id == platform_id, Rom.fs_name == name, Rom.missing_from_fs.is_(False))
        )
    if taken is not None:
        raise service.NameTaken(f"File {name} already exists")
    service.ensure_name_free(ctx, platform, name)
    _check_free_space(ctx, total_size)
    now = utcnow()
    upload = UploadSession(
        id=str(uuid.uuid4()),
        user_id=user_id,
        platform_id=platform_id,
        file_name=name,
        total_size=total_size,
        total_chunks=total_chunks,
        chunk_size=chunk_size,
        status=UPLOAD_OPEN,
        expires_at=_expiry(ctx),
        created_at=now,
        updated_at=now,
    )
    with ctx.db.transaction() as s:
        s.add(upload)
    return upload


# --- chunks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChunkTarget:
    upload_id: str
    index: int
    key: str
    max_bytes: int
    total_chunks: int


def prepare_chunk(
    ctx: AppContext, *, user_id: int, upload_id: str, index: int, content_length: int | None
) -> ChunkTarget:
    """Validate a chunk before its bytes are read: where it goes and how big it may be."""
    upload_id = parse_upload_id(upload_id)
    with ctx.db.read() as s:
        upload = _load(ctx, s, upload_id, user_id)
        if upload.status != UPLOAD_OPEN:
            raise Conflict("Upload is already being assembled or has already completed")
        if index < 0 or index >= upload.total_chunks:
            raise BadRequest(f"Chunk index {index} out of range (0 to {upload.total_chunks - 1})")
        allowed = upload.chunk_size
        total_chunks = upload.total_chunks
    server_max = ctx.settings.upload_max_chunk_bytes
    if content_length is not None:
        if content_length > server_max:
            raise PayloadTooLarge("Chunk size exceeds server maximum")
        if content_length > allowed:
            raise PayloadTooLarge("Chunk exceeds maximum allowed size")
    return ChunkTarget(upload_id, index, chunk_key(upload_id, index), min(allowed, server_max), total_chunks)


def record_chunk(ctx: AppContext, *, user_id: int, target: ChunkTarget, size: int) -> tuple[int, int]:
    """Note a stored chunk; returns (chunks received, total chunks)."""
    if size < 1:
        ctx.storages.tmp.delete(target.key)
        raise BadRequest("Empty chunk")
    now = utcnow()
    for _attempt in range(3):
        try:
            with ctx.db.transaction() as s:
                upload = s.get(UploadSession, target.upload_id)
                if upload is None or upload.user_id != user_id or upload.status != UPLOAD_OPEN:
                    # Canceled or completed while the chunk was on its way: drop it.
                    ctx.storages.tmp.delete(target.key)
                    raise NotFound("Upload session not found or expired")
                upload.expires_at = _expiry(ctx)
                upload.updated_at = now
                chunk = s.get(UploadChunk, (target.upload_id, target.index))
                if chunk is None:
                    s.add(UploadChunk(upload_id=target.upload_id, chunk_index=target.index, size=size, received_at=now))
                else:
                    chunk.size = size
                    chunk.received_at = now
                s.flush()
                received = s.scalar(
                    sa.select(sa.func.count()).select_from(UploadChunk).where(UploadChunk.upload_id == target.upload_id)
                )
            return int(received or 0), target.total_chunks
        except IntegrityError:
            continue  # the same chunk index raced in twice: the other row is there now
    raise Conflict("Chunk was uploaded concurrently; try again")


# --- complete / cancel ----------------------------------------------------------------------------
def complete(ctx: AppContext, *, user_id: int, upload_id: str) -> Rom:
    upload_id = parse_upload_id(upload_id)
    with ctx.db.transaction() as s:
        upload = _load(ctx, s, upload_id, user_id)
        if upload.status != UPLOAD_OPEN:
            raise Conflict("Upload is already being assembled or has already completed")
        chunks = {
            c.chunk_index: c.size for c in s.scalars(sa.select(UploadChunk).where(UploadChunk.upload_id == upload_id))
        }
        missing = [i for i in range(upload.total_chunks) if i not in chunks]
        if missing:
            raise BadRequest(f"Missing chunks: {missing}")
        received = sum(chunks.values())
        if received != upload.total_size:
            raise BadRequest(f"Size mismatch: received {received} bytes, expected {upload.total_size}")
        claimed = s.execute(
            sa.update(UploadSession)
            .where(UploadSession.id == upload_id, UploadSession.status == UPLOAD_OPEN)
            .values(status=UPLOAD_ASSEMBLING, updated_at=utcnow())
        ).rowcount
        if not claimed:
            raise Conflict("Upload is already being assembled or has already completed")
        platform = s.get(Platform, upload.platform_id)
        file_name, total_size, total_chunks = upload.file_name, upload.total_size, upload.total_chunks
    try:
        if platform is None:
            raise BadRequest("Platform not found")
        tmp = ctx.storages.tmp
        openers = [lambda i=i: tmp.open(chunk_key(upload_id, i)) for i in range(total_chunks)]
        with ConcatReader(openers) as reader:
            rom = service.ingest(ctx, platform.fs_slug, reader, file_name, size=total_size)  # type: ignore[arg-type]
    finally:
        # Done or failed, the session and its chunks go: a failed upload leaves nothing behind.
        _remove(ctx, upload_id)
    return rom


def cancel(ctx: AppContext, *, user_id: int, upload_id: str) -> None:
    upload_id = parse_upload_id(upload_id)
    with ctx.db.read() as s:
        upload = s.get(UploadSession, upload_id)
        if upload is None:
            return
        if upload.user_id != user_id:
            raise Forbidden()
        if upload.status == UPLOAD_ASSEMBLING:
            raise Conflict("Upload is being assembled and can no longer be canceled")
    _remove(ctx, upload_id)


# --- housekeeping ---------------------------------------------------------------------------------
def cleanup_expired(ctx: AppContext) -> int:
    """Remove expired sessions (and sessions stuck assembling past their expiry), their chunks,
    and chunk folders that belong to no session. Returns the number of sessions removed."""
    now = utcnow()
    with ctx.db.read() as s:
        expired = list(s.scalars(sa.select(UploadSession.id).where(UploadSession.expires_at <= now)))
        live = set(s.scalars(sa.select(UploadSession.id)))
    for upload_id in expired:
        _remove(ctx, upload_id)
    tmp = ctx.storages.tmp
    cutoff = (now - ORPHAN_AFTER).timestamp()
    for entry in tmp.list(UPLOADS_DIR):
        if entry.name not in live and entry.mtime < cutoff:
            tmp.delete_tree(entry.key)
    tmp.cleanup_temp_files(UPLOADS_DIR) if tmp.stat(UPLOADS_DIR) else None
    if expired:
        log.info("removed %d expired upload sessions", len(expired))
    return len(expired)
