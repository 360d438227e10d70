"""What a download sends: one stored file, or a zip of several, planned from the database.

Every function here reads what it needs in one short read transaction, stats the files, and
returns a :class:`Download` (a byte source plus its name, type and validators). Nothing is
streamed here and no transaction stays open while bytes flow: the endpoints hand the plan to
:func:`romshelf.core.streaming.serve`.

Rules decided here (reference/romm_roms.md §1.2, §8, and what RomM delegates to nginx):

* ``GET /api/roms/{id}/content/{file_name}``: the ROM's files (optionally the ``file_ids``
  subset), sorted by name. One file -> that file, named ``file_name``. Several -> a zip
  ``{file_name}.zip`` whose entries are paths relative to the ROM folder (``.hidden/...`` with
  ``hidden_folder``), plus ``{file_name}.m3u`` when none of the files is an ``.m3u``: the
  ``.cue`` files if there are any, else the game files (files in category folders such as
  ``manual/`` are left out of the playlist: an emulator cannot load them as discs).
* ``GET /api/roms/download``: every file of every selected ROM, entries named by their
  library-relative path, sorted by ROM (name sort key, id) then file name; ROMs the caller hid
  (``rom_user.hidden``) are left out. Default name ``"{n} ROMs ({crc32 of the file list}).zip"``.
* Member CRC32s come from ``rom_files.crc_hash`` when the row still describes the file on disk
  (same size and mtime); otherwise they are computed from the file when first needed (see
  :mod:`romshelf.downloads.crc`). Sizes always come from the disk, so ``Content-Length`` is
  exact even if the library changed since the last scan.
* Single files get a strong ETag from the stored hash (SHA-1, else MD5, else CRC32+size) when the
  row describes the file on disk, else one from its size and mtime.
"""

from __future__ import annotations

import logging
import mimetypes
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf.accounts.dependencies import Principal
from romshelf.collections.models import Collection, CollectionRom
from romshelf.core.context import AppContext
from romshelf.core.errors import BadRequest, NotFound
from romshelf.core.storage import FileStat, Storage
from romshelf.core.streaming import ByteSource, FileSource
from romshelf.downloads import crc as crc_cache
from romshelf.downloads.ziplayout import ZipError, ZipLayout, ZipMember
from romshelf.roms.models import Rom, RomFile, RomUser

log = logging.getLogger("romshelf.downloads")

MTIME_TOLERANCE = 1.0  # seconds; a scan may have stored a rounded mtime
INLINE_CATEGORIES = {"soundtrack"}


@dataclass
class Download:
    source: ByteSource
    filename: str
    media_type: str = "application/octet-stream"
    disposition: str = "attachment"
    etag: str | None = None
    last_modified: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


# --- parameters --------------------------------------------------------------------------------


def parse_id_list(value: str | None, message: str) -> list[int] | None:
    """``"1,2, 3"`` -> ``[1, 2, 3]`` (order kept, duplicates dropped); None if absent."""
    if value is None:
        return None
    out: list[int] = []
    seen: set[int] = set()
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or not item.isascii() or len(item) > 18:
            raise BadRequest(message)
        n = int(item)
        if n not in seen:
            seen.add(n)
            out.append(n)
    if not out:
        raise BadRequest(message)
    return out


def download_name(requested: str | None, fallback: str) -> str:
    """The client's name for the download (only ever used in a header), or ``fallback``."""
    if requested:
        cleaned = "".join(ch for ch in requested if ch >= " " and ch != "\x7f")
        cleaned = cleaned.replace("\\", "/").rsplit("/", 1)[-1].strip()
        if cleaned and cleaned not in (".", ".."):
            return cleaned[:450]
    return fallback


# --- files on disk vs rows ---------------------------------------------------------------------


def row_describes(rf: RomFile, st: FileStat) -> bool:
    """True if the scan's row (size, mtime) still matches the file on disk."""
    if rf.file_size_bytes != st.size:
        return False
    return rf.last_modified is None or abs(float(rf.last_modified) - st.mtime) < MTIME_TOLERANCE


def parse_crc(value: str | None) -> int | None:
    if not value:
        return None
    try:
        n = int(value.strip(), 16)
    except ValueError:
        return None
    return n if 0 <= n <= 0xFFFFFFFF else None


def _stat(storage: Storage, key: str) -> FileStat | None:
    try:
        st = storage.stat(key)
    except Exception:  # an unusable key from the database is a missing file, never a 500
        log.warning("cannot stat %s", key, exc_info=True)
        return None
    return None if st is None or st.is_dir else st


def _member(storage: Storage, rf: RomFile, name: str, st: FileStat) -> ZipMember:
    name = name.replace("\\", "_")  # a backslash in a Linux file name is a folder to Windows unzip
    m = ZipMember(name=name, size=st.size, mtime=st.mtime, storage=storage, key=rf.full_path)
    crc = crc_cache.cached(m)
    if crc is None and row_describes(rf, st):
        crc = parse_crc(rf.crc_hash)
    return ZipMember(name=name, size=st.size, mtime=st.mtime, crc=crc, storage=storage, key=rf.full_path)


def zip_layout(members: Sequence[ZipMember]) -> ZipLayout:
    try:
        return ZipLayout(members, crc_of=crc_cache.crc_of, on_crc_mismatch=crc_cache.remember)
    except ZipError as e:
        raise BadRequest(f"Cannot build the zip: {e}") from None


def file_etag(rf: RomFile, st: FileStat) -> str:
    if row_describes(rf, st):
        if rf.sha1_hash:
            return f'"{rf.sha1_hash.lower()}"'
        if rf.md5_hash:
            return f'"{rf.md5_hash.lower()}"'
        crc = parse_crc(rf.crc_hash)
        if crc is not None:
            return f'"{crc:08x}-{st.size:x}"'
    return f'"{st.size:x}-{int(st.mtime * 1_000_000):x}"'


def single_file(storage: Storage, rf: RomFile, st: FileStat, filename: str, **kw: str) -> Download:
    return Download(
        source=FileSource(storage, rf.full_path, st.size, st.mtime),
        filename=filename,
        etag=file_etag(rf, st),
        last_modified=st.mtime,
        **kw,  # type: ignore[arg-type]
    )


# --- GET /api/roms/{id}/content/{file_name} ----------------------------------------------------


def rom_content(
    ctx: AppContext, rom_id: int, file_name: str, *, file_ids: str | None = None, hidden_folder: bool = False
) -> Download:
    ids = parse_id_list(file_ids, "Invalid file ID format. Must be comma-separated integers.")
    with ctx.db.read() as s:
        rom = s.get(Rom, rom_id)
        if rom is None:
            raise NotFound(f"Rom with id '{rom_id}' not found")
        q = sa.select(RomFile).where(RomFile.rom_id == rom_id).order_by(RomFile.file_name, RomFile.id)
        if ids is not None:
            q = q.where(RomFile.id.in_(ids))
        files = list(s.scalars(q))
        rom_full_path = rom.full_path
        fs_name = rom.fs_name
    if not files:
        raise NotFound(f"No files found for ROM {rom_id}")
    lib = ctx.storages.library
    stats = []
    for rf in files:
        st = _stat(lib, rf.full_path)
        if st is None:
            raise NotFound(f"File {rf.file_name} not found on disk for ROM {rom_id}")
        stats.append(st)
    name = download_name(file_name, fs_name)
    if len(files) == 1:
        return single_file(lib, files[0], stats[0], name)

    base = name[:-4] if name.lower().endswith(".zip") and len(name) > 4 else name
    prefix = ".hidden/" if hidden_folder else ""
    members = []
    entries: list[tuple[RomFile, str]] = []
    for rf, st in zip(files, stats, strict=True):
        inside = rf.full_path.startswith(rom_full_path + "/")
        rel = rf.full_path.removeprefix(rom_full_path + "/") if inside else rf.file_name
        entries.append((rf, prefix + rel))
        members.append(_member(lib, rf, prefix + rel, st))
    playlist = m3u_playlist(entries)
    if playlist is not None:
        m3u_name = f"{base}.m3u"
        if m3u_name not in {m.name for m in members} and "/" not in m3u_name:
            mtime = max(m.mtime for m in members)
            members.append(ZipMember.from_bytes(m3u_name, playlist, mtime))
    layout = zip_layout(members)
    return Download(
        source=layout,
        filename=f"{base}.zip",
        media_type="application/zip",
        etag=layout.etag(),
        last_modified=layout.last_modified,
    )


def m3u_playlist(entries: Sequence[tuple[RomFile, str]]) -> bytes | None:
    """The ``.m3u`` for a multi-file ROM, or None if it brings its own (reference §1.2)."""
    if any(name.lower().endswith(".m3u") for _rf, name in entries):
        return None
    cues = [name for _rf, name in entries if name.lower().endswith(".cue")]
    lines = cues or [name for rf, name in entries if rf.category in (None, "game")]
    if not lines:
        return None
    return "\n".join(lines).encode("utf-8")


# --- GET /api/roms/{id}/files/content/{file_name} ----------------------------------------------


def _file_type(rf: RomFile) -> tuple[str, str]:
    name = rf.file_name.lower()
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if rf.category == "soundtrack" and guessed and guessed.startswith("audio/"):
        return guessed, "inline"
    if rf.category == "manual":
        if name.endswith(".pdf"):
            return "application/pdf", "inline"
        if name.endswith(".md"):
            return "text/markdown; charset=utf-8", "inline"
    if guessed and (guessed.startswith("image/") or guessed.startswith("video/")):
        return guessed, "inline"
    return "application/octet-stream", "attachment"


def file_content(ctx: AppContext, file_id: int) -> Download:
    with ctx.db.read() as s:
        rf = s.get(RomFile, file_id)
        if rf is None:
            raise NotFound("File not found")
        s.expunge(rf)
    st = _stat(ctx.storages.library, rf.full_path)
    if st is None:
        raise NotFound("File not found")
    media_type, disposition = _file_type(rf)
    extra = {"X-Content-Type-Options": "nosniff"} if disposition == "inline" else {}
    d = single_file(ctx.storages.library, rf, st, rf.file_name)
    d.media_type, d.disposition, d.headers = media_type, disposition, extra
    return d


# --- GET /api/roms/download --------------------------------------------------------------------


@dataclass
class Selector:
    rom_ids: list[int] | None = None
    platform_id: int | None = None
    collection_id: int | None = None
    smart_collection_id: int | None = None
    virtual_collection_id: str | None = None

    @property
    def empty(self) -> bool:
        return (
            self.rom_ids is None
            and self.platform_id is None
            and self.collection_id is None
            and self.smart_collection_id is None
            and not self.virtual_collection_id
        )


def selected_roms(session: Session, principal: Principal, sel: Selector) -> sa.Select[tuple[int]]:
    """The ids of the ROMs a bulk download selects, as a query (the one place selectors resolve).

    All given selectors apply together (intersection). ROMs the caller hid are left out.
    Smart and virtual collections are resolved by the collections domain:
    ``smart_collection_rom_ids(session, id, user_id)`` / ``virtual_collection_rom_ids(...)``.
    """
    q = sa.select(Rom.id).where(Rom.missing_from_fs.is_(False))
    if sel.rom_ids is not None:
        q = q.where(Rom.id.in_(sel.rom_ids))
    if sel.platform_id is not None:
        q = q.where(Rom.platform_id == sel.platform_id)
    if sel.collection_id is not None:
        coll = session.get(Collection, sel.collection_id)
        if coll is None or (coll.user_id != principal.user_id and not coll.is_public):
            raise NotFound(f"Collection with id {sel.collection_id} not found")
        q = q.where(Rom.id.in_(sa.select(CollectionRom.rom_id).where(CollectionRom.collection_id == coll.id)))
    if sel.smart_collection_id is not None:
        ids = _collections_hook("smart_collection_rom_ids", session, principal, sel.smart_collection_id)
        q = q.where(Rom.id.in_(ids))
    if sel.virtual_collection_id:
        ids = _collections_hook("virtual_collection_rom_ids", session, principal, sel.virtual_collection_id)
        q = q.where(Rom.id.in_(ids))
    hidden = sa.select(RomUser.rom_id).where(
        RomUser.rom_id == Rom.id, RomUser.user_id == principal.user_id, RomUser.hidden.is_(True)
    )
    return q.where(~sa.exists(hidden))


def _collections_hook(name: str, session: Session, principal: Principal, ident: object) -> list[int]:
    """Ask the collections domain (issue 4) for the ROM ids of a smart / virtual collection."""
    import importlib

    try:
        collections_service = importlib.import_module("romshelf.collections.service")
    except ModuleNotFoundError:
        collections_service = None
    fn = getattr(collections_service, name, None)
    if fn is None:
        raise BadRequest(f"Downloading by {name.split('_rom_ids')[0].replace('_', ' ')} is not supported yet")
    return list(fn(session, ident, principal.user_id))


def bulk(ctx: AppContext, principal: Principal, sel: Selector, filename: str | None) -> Download:
    if sel.empty:
        raise BadRequest("No ROM IDs or platform/collection selector provided")
    with ctx.db.read() as s:
        rom_ids = selected_roms(s, principal, sel).subquery()
        rows = s.execute(
            sa.select(RomFile, Rom.id)
            .join(Rom, Rom.id == RomFile.rom_id)
            .where(Rom.id.in_(sa.select(rom_ids.c.id)))
            .order_by(Rom.name_sort_key, Rom.id, RomFile.file_name, RomFile.id)
        ).all()
        for rf, _rid in rows:
            s.expunge(rf)
    if not rows:
        if sel.rom_ids is not None:
            raise NotFound("No ROMs found with the provided IDs")
        raise NotFound("No ROMs found to download")
    lib = ctx.storages.library
    members: list[ZipMember] = []
    names: set[str] = set()
    roms: set[int] = set()
    skipped = 0
    for rf, rid in rows:
        name = rf.full_path
        if name in names:
            continue
        st = None if rf.missing_from_fs else _stat(lib, rf.full_path)
        if st is None:
            skipped += 1
            log.warning("bulk download: skipping %s (not on disk)", rf.full_path)
            continue
        names.add(name)
        roms.add(rid)
        members.append(_member(lib, rf, name, st))
    if not members:
        raise NotFound("No ROMs found to download")
    summary = "\n".join(f"{m.key}:{m.size}" for m in members)
    default = f"{len(roms)} ROMs ({zlib.crc32(summary.encode('utf-8')) & 0xFFFFFFFF:08x}).zip"
    name = download_name(filename, default)
    if not name.lower().endswith(".zip"):
        name += ".zip"
    layout = zip_layout(members)
    headers = {"X-Romshelf-Skipped-Files": str(skipped)} if skipped else {}
    return Download(
        source=layout,
        filename=name,
        media_type="application/zip",
        etag=layout.etag(),
        last_modified=layout.last_modified,
        headers=headers,
    )
