"""Server-side patching: apply a library patch file or an uploaded one to a ROM file.

Behaviour follows reference/romm_roms.md §7: ``id`` is the RomFile id of the base ROM; exactly
one of ``patch_file_id`` (a RomFile in the library) or an uploaded ``patch_file``; the output is
named ``{output_file_name stem}{rom extension}`` or ``{rom stem} (patched-{patch stem}){rom
extension}``; ``X-Patch-Validated`` says whether the patch's source checks matched. Unlike
RomM, the format comes from the patch's magic bytes (never its extension), and a malformed
patch is a 400 that says what is wrong, never a 500.

Work happens in a private folder under the tmp store (``patching/<uuid>``): the uploaded patch,
the output, nothing else. It is removed when the response has been sent, or on any error;
leftovers of a crash are swept at start-up. No database transaction is open while patching or
streaming; at most ``patch_max_concurrency`` patches run at once per process.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from romshelf.core.context import AppContext
from romshelf.core.errors import BadRequest, NotFound
from romshelf.core.paths import sanitize_filename
from romshelf.core.storage import Storage
from romshelf.patching.binio import PatchResult
from romshelf.patching.engine import apply_patch
from romshelf.roms.models import RomFile
from romshelf.roms.naming import split_extension

log = logging.getLogger("romshelf.patching")

WORK_PREFIX = "patching"
STALE_AFTER = 24 * 3600


@dataclass
class StoredFile:
    id: int
    name: str
    key: str
    size: int


@dataclass
class Patched:
    path: Path
    name: str
    result: PatchResult
    work_dir: Path


def work_dir(ctx: AppContext) -> Path:
    """A fresh private folder for one patch request."""
    path = ctx.storages.tmp.path(f"{WORK_PREFIX}/{uuid.uuid4().hex}")
    path.mkdir(parents=True, mode=0o700)
    return path


def remove_work_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def sweep_stale(ctx: AppContext, older_than: float = STALE_AFTER) -> int:
    """Remove work folders a crash left behind (called at start-up)."""
    root = ctx.storages.tmp.path(WORK_PREFIX)
    if not root.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for child in root.iterdir():
        with contextlib.suppress(OSError):
            if child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
    return removed


def _library_file(ctx: AppContext, file_id: int, what: str) -> StoredFile:
    with ctx.db.read() as s:
        rf = s.get(RomFile, file_id)
        if rf is None:
            raise NotFound(f"{what} with id {file_id} not found")
        found = StoredFile(rf.id, rf.file_name, rf.full_path, rf.file_size_bytes)
        missing = rf.missing_from_fs
    st = None if missing else _stat(ctx.storages.library, found.key)
    if st is None:
        raise NotFound(f"{what} '{found.name}' is missing from filesystem")
    found.size = st
    return found


def _stat(storage: Storage, key: str) -> int | None:
    try:
        st = storage.stat(key)
    except Exception:
        return None
    return None if st is None or st.is_dir else st.size


def base_rom(ctx: AppContext, file_id: int) -> StoredFile:
    rom = _library_file(ctx, file_id, "ROM file")
    limit = ctx.settings.patch_max_bytes
    if rom.size > limit:
        raise BadRequest(f"ROM file is too large to patch ({rom.size} bytes, max {limit})")
    return rom


def library_patch(ctx: AppContext, patch_file_id: int) -> StoredFile:
    patch = _library_file(ctx, patch_file_id, "Patch file")
    limit = ctx.settings.patch_max_bytes
    if patch.size > limit:
        raise BadRequest(f"Patch file is too large ({patch.size} bytes, max {limit})")
    return patch


def output_name(rom_name: str, patch_name: str, requested: str | None) -> str:
    rom_stem, rom_ext = split_extension(rom_name)
    ext = f".{rom_ext}" if rom_ext else ""
    if requested and requested.strip():
        stem = Path(sanitize_filename(requested, what="output_file_name")).stem or "patched"
        return f"{stem}{ext}"
    patch_stem = split_extension(patch_name)[0] or "patch"
    return sanitize_filename(f"{rom_stem} (patched-{patch_stem}){ext}", what="output file name")


def _local(storage: Storage, key: str, work: Path, name: str) -> Path:
    """A local path for a stored file (copied into the work folder if the store is remote)."""
    path = storage.local_path(key)
    if path is not None:
        return path
    target = work / name
    with storage.open(key) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
    return target


def _semaphore(ctx: AppContext) -> threading.BoundedSemaphore:
    sem = ctx.extras.get("patch_semaphore")
    if sem is None:
        sem = ctx.extras.setdefault("patch_semaphore", threading.BoundedSemaphore(ctx.settings.patch_max_concurrency))
    return sem  # type: ignore[no-any-return]


def apply(
    ctx: AppContext,
    rom: StoredFile,
    work: Path,
    *,
    patch_file_id: int | None,
    upload: Path | None,
    upload_name: str | None,
    upload_size: int = 0,
    output_file_name: str | None,
) -> Patched:
    """Apply one patch (from the library or uploaded into ``work``) to ``rom``."""
    if (patch_file_id is None) == (upload is None):
        raise BadRequest("Provide exactly one of a library patch file or an uploaded patch file")
    if upload is not None:
        if upload_size == 0:
            raise BadRequest("Uploaded patch file is empty")
        patch_path, patch_name = upload, upload_name or "patch"
    else:
        assert patch_file_id is not None
        patch = library_patch(ctx, patch_file_id)
        patch_path = _local(ctx.storages.library, patch.key, work, "patch")
        patch_name = patch.name
    name = output_name(rom.name, patch_name, output_file_name)
    rom_path = _local(ctx.storages.library, rom.key, work, "rom")
    out = work / "output"
    settings = ctx.settings
    with _semaphore(ctx):
        started = time.perf_counter()
        result = apply_patch(
            rom_path,
            patch_path,
            out,
            max_bytes=settings.patch_max_bytes,
            xdelta3=settings.xdelta3_path,
            timeout=settings.patch_timeout_seconds,
        )
    log.info(
        "patched %s with %s",
        rom.name,
        patch_name,
        extra={
            "format": result.format,
            "validated": result.validated,
            "bytes": result.size,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return Patched(out, name, result, work)
