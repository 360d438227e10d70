"""Library rules callable without HTTP: ingest a ROM, start a scan job.

:func:`ingest` is the one way bytes enter the library outside a scan (chunked and single
uploads here; other domains may use it too, e.g. pkmnapi's "add to library"): the file is
written atomically into the platform's folder while it is hashed in the same pass, and its
Rom/RomFile rows exist when the call returns - no scan needed.
"""

from __future__ import annotations

import errno
import io
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from romshelf.core.context import AppContext
from romshelf.core.db import is_unique_violation
from romshelf.core.errors import AppError, BadRequest, Conflict
from romshelf.core.hashing import READ_SIZE
from romshelf.core.jobs import Job, jobs_of
from romshelf.core.paths import check_plain_filename
from romshelf.core.storage import TMP_PREFIX, FileExists, Storage
from romshelf.core.timeutil import utcnow
from romshelf.library import archives
from romshelf.library.fingerprint import FileResult, RomResult, fingerprint, hash_file, read_stream
from romshelf.library.layout import FsFile, FsRom, detect_layout, is_excluded_dir, is_excluded_file, read_rom_at
from romshelf.library.scanner import (
    SCAN_LOCK,
    Changes,
    file_row,
    flush,
    load_details,
    load_platform_state,
    new_rom_row,
    scan_is_running,
    update_rom,
)
from romshelf.platforms import catalog
from romshelf.platforms import service as platforms
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom

Source = bytes | BinaryIO | Iterable[bytes] | Path
FolderSource = Mapping[str, bytes | BinaryIO | Path]

SCAN_JOB = "scan"


class InsufficientStorage(AppError):
    status_code = 507

    def default_detail(self) -> str:
        return "Not enough free disk space"


class NameTaken(BadRequest):
    """400 "File {name} already exists" (RomM's status and words): the name is taken on disk."""


def disk_full(e: OSError) -> AppError | None:
    """507 for a full disk (or quota), None for any other OS error."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("Not enough free disk space to store the file")
    return None  # romshelf.library.tasks.SCAN


# --- ingest -----------------------------------------------------------------------------------
class _IterReader:
    """``readinto`` over an iterable of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readinto(self, buffer: Any) -> int:
        while not self._buf:
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf = bytes(nxt)
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        buf = bytearray(size if size > 0 else READ_SIZE)
        n = self.readinto(buf)
        return bytes(buf[:n])

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


def _reader(source: Source) -> tuple[Any, int | None]:
    """A readinto-capable reader for a source and its size if it can be known up front."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), len(source)
    if isinstance(source, Path):
        fh = open(source, "rb")  # noqa: SIM115 - closed by the caller
        return fh, os.fstat(fh.fileno()).st_size
    if hasattr(source, "read"):
        size = None
        try:
            size = os.fstat(source.fileno()).st_size - source.tell()  # type: ignore[union-attr]
        except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
            try:
                pos = source.tell()  # type: ignore[union-attr]
                size = source.seek(0, io.SEEK_END) - pos  # type: ignore[union-attr]
                source.seek(pos)  # type: ignore[union-attr]
            except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
                size = None
        if not hasattr(source, "readinto"):
            return _IterReader(iter(lambda: source.read(READ_SIZE), b"")), size  # type: ignore[union-attr]
        return source, size
    return _IterReader(source), None  # type: ignore[arg-type]


def check_rom_name(name: str, *, folder: bool = False) -> str:
    """A client-given ROM file/folder name: plain (no path, NUL, ``..``) and one the scanner
    would not skip."""
    name = check_plain_filename(name, what="file name")
    if (is_excluded_dir(name) if folder else is_excluded_file(name)) or name.startswith(TMP_PREFIX):
        raise BadRequest(f"Invalid file name: {name!r} is a hidden, temporary or system file the library ignores")
    return name


def platform_fs_path(ctx: AppContext, fs_slug: str) -> str:
    """The library-relative folder where a platform's ROMs live (in the library's layout)."""
    return detect_layout(ctx.storages.library).platform_path(fs_slug)


def ensure_name_free(ctx: AppContext, platform: Platform, name: str) -> str:
    """The storage key for ``name`` in the platform's folder; 400 "File {name} already exists"
    (RomM's words) if a file or folder of that name is there."""
    key = f"{platform_fs_path(ctx, platform.fs_slug)}/{name}"
    if ctx.storages.library.stat(key) is not None:
        raise NameTaken(f"File {name} already exists")
    return key


def _platform(ctx: AppContext, fs_slug: str) -> Platform:
    with ctx.db.transaction() as s:
        return platforms.get_or_create(s, fs_slug)


def record_rom(ctx: AppContext, platform_id: int, result: RomResult) -> int:
    """Create (or bring up to date) the Rom and RomFile rows for a ROM just read; its id.

    A row of that name may exist already: a ROM marked missing whose file came back, or one a
    concurrent scan created a moment ago. It is updated in place and keeps its id.
    """
    fs_name = result.rom.fs_name
    for _attempt in range(3):
        now = utcnow()
        with ctx.db.read() as s:
            existing = load_platform_state(s, platform_id, fs_name).get(fs_name)
            if existing is not None:
                load_details(s, [existing])
        changes = Changes(platform_id)
        if existing is None:
            files = [{**file_row(fr, now), "created_at": now} for fr in result.files]
            changes.new_roms.append((new_rom_row(platform_id, result, now), files))
        else:
            update_rom(changes, existing, result, now, rename=False)
        try:
            with ctx.db.transaction() as s:
                ids = flush(s, changes)
        except IntegrityError as e:
            if not is_unique_violation(e):
                raise
            continue  # created meanwhile: update it on the next round
        return ids[fs_name] if existing is None else existing.id
    raise Conflict(f"File {fs_name} was changed concurrently; try again")


def load_rom(ctx: AppContext, rom_id: int) -> Rom:
    with ctx.db.read() as s:
        return s.scalars(sa.select(Rom).options(selectinload(Rom.files)).where(Rom.id == rom_id)).one()


def ingest(
    ctx: AppContext,
    platform_fs_slug: str,
    source: Source | FolderSource,
    name: str,
    *,
    size: int | None = None,
    max_bytes: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Rom:
    """Put one ROM into the library and create its rows at once; returns the Rom (files loaded).

    ``source``: the bytes of a single-file ROM (bytes, a binary file object, an iterable of
    chunks, or a local file ``Path``), or a folder ROM (a mapping of relative paths to such
    sources, or a local directory ``Path``). ``size`` (if known) lets hashing run in the same
    pass as the write and is checked. The platform folder is created if needed.

    Raises 400 for a bad name, 400 "File {name} already exists" if the name is taken on disk,
    413 beyond ``max_bytes``. Whatever fails, nothing is left behind in the library.
    """
    is_folder = isinstance(source, Mapping) or (isinstance(source, Path) and source.is_dir())
    name = check_rom_name(name, folder=is_folder)
    platform = _platform(ctx, platform_fs_slug)
    key = ensure_name_free(ctx, platform, name)
    fs_path = key.rsplit("/", 1)[0]
    hashable = platform.slug not in catalog.NON_HASHABLE_SLUGS
    storage = ctx.storages.library
    if is_folder:
        result = _write_folder(storage, fs_path, name, source, hashable, max_bytes)  # type: ignore[arg-type]
    else:
        result = _write_file(storage, fs_path, name, source, size, hashable, max_bytes, progress)  # type: ignore[arg-type]
    try:
        rom_id = record_rom(ctx, platform.id, result)
    except BaseException:
        storage.delete_tree(key)
        raise
    return load_rom(ctx, rom_id)


def _write_file(
    storage: Storage,
    fs_path: str,
    name: str,
    source: Source,
    size: int | None,
    hashable: bool,
    max_bytes: int | None,
    progress: Callable[[int], None] | None,
) -> RomResult:
    reader, known = _reader(source)
    size = size if size is not None else known
    if max_bytes is not None and size is not None and size > max_bytes:
        raise _too_large(max_bytes)
    file = FsFile(fs_path, name, size or 0, 0.0)
    archive = archives.archive_kind(name) is not None
    one_pass = hashable and size is not None and not archive
    result: FileResult | None = None
    try:
        writer = storage.writer(file.key, overwrite=False, max_bytes=max_bytes)
    except FileExists:
        raise NameTaken(f"File {name} already exists") from None
    try:
        try:
            if one_pass:
                result, n = read_stream(reader, file, hooks=[writer.write], progress=progress)
            else:
                n = _copy(reader, writer.write, progress)
        finally:
            close = getattr(reader, "close", None)
            if close is not None and not isinstance(source, (bytes, bytearray, memoryview)):
                close()
        if n == 0:
            raise BadRequest("Empty file")
        if size is not None and n != size:
            raise BadRequest(f"Size mismatch: received {n} bytes, expected {size}")
        try:
            stored = writer.commit()
        except FileExists:
            raise NameTaken(f"File {name} already exists") from None
    except OSError as e:
        writer.abort()
        full = disk_full(e)
        if full is not None:
            raise full from None
        raise
    except BaseException:
        writer.abort()
        raise
    file.size, file.mtime = stored.size, stored.mtime
    try:
        if result is None:
            result = hash_file(storage, file, archive=archive) if hashable else FileResult(file, hashed=True)
    except BaseException:
        storage.delete(file.key)
        raise
    return RomResult(FsRom(fs_path, name, False, [file]), result.digests, [result])


def _copy(reader: Any, write: Callable[[Any], None], progress: Callable[[int], None] | None) -> int:
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    total = 0
    while True:
        n = reader.readinto(buf)
        if not n:
            return total
        write(view[:n])
        total += n
        if progress is not None:
            progress(n)


def _too_large(max_bytes: int) -> Exception:
    from romshelf.core.errors import PayloadTooLarge

    return PayloadTooLarge(f"File exceeds the maximum allowed size of {max_bytes} bytes")


def _folder_items(source: FolderSource | Path) -> list[tuple[str, bytes | BinaryIO | Path]]:
    if isinstance(source, Path):
        items: list[tuple[str, bytes | BinaryIO | Path]] = []
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames[:] = sorted(d for d in dirnames if not is_excluded_dir(d))
            for fname in sorted(filenames):
                if is_excluded_file(fname):
                    continue
                full = Path(dirpath) / fname
                items.append((full.relative_to(source).as_posix(), full))
        return items
    return sorted(source.items(), key=lambda kv: kv[0])


def _write_folder(
    storage: Storage, fs_path: str, name: str, source: FolderSource | Path, hashable: bool, max_bytes: int | None
) -> RomResult:
    items = _folder_items(source)
    if not items:
        raise BadRequest("A folder ROM needs at least one file")
    for rel, _src in items:
        parts = rel.split("/")
        for part in parts[:-1]:
            check_rom_name(part, folder=True)
        check_rom_name(parts[-1])
    staging = f"{fs_path}/{TMP_PREFIX}{uuid.uuid4().hex}"
    key = f"{fs_path}/{name}"
    total = 0
    try:
        for rel, src in items:
            data: Any = src
            if isinstance(src, Path):
                data = open(src, "rb")  # noqa: SIM115
            try:
                stored = storage.write(
                    f"{staging}/{rel}",
                    data,
                    overwrite=False,
                    max_bytes=None if max_bytes is None else max_bytes - total,
                )
            finally:
                if isinstance(src, Path):
                    data.close()
            total += stored.size
        try:
            storage.move(staging, key)
        except FileExists:
            raise NameTaken(f"File {name} already exists") from None
    except BaseException:
        storage.delete_tree(staging)
        raise
    try:
        rom = read_rom_at(storage, fs_path, name)
        assert rom is not None
        return fingerprint(storage, rom, hashable=hashable)
    except BaseException:
        storage.delete_tree(key)
        raise


# --- scans ------------------------------------------------------------------------------------
def start_scan(
    ctx: AppContext, *, platforms: list[str] | None = None, full: bool = False, user_id: int | None = None
) -> Job:
    """Queue a scan job; 409 if a scan is queued or running anywhere."""
    queue = jobs_of(ctx)
    with ctx.db.lock(f"{SCAN_LOCK}:enqueue", timeout=10):
        active = queue.active(SCAN_JOB)
        if active is not None:
            raise Conflict(
                f"A scan is already {'running' if active.status == 'started' else 'queued'} (task {active.id})"
            )
        if scan_is_running(ctx):
            raise Conflict("A scan is already running")
        job = queue.create(SCAN_JOB, {"platforms": platforms or [], "full": full}, user_id=user_id)
    queue.send(job)
    return queue.get(job.id)


__all__ = ["ensure_name_free", "ingest", "record_rom", "start_scan"]
