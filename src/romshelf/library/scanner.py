"""Scanning the library folder into the database, at disk speed.

A scan runs in two phases:

1. **Walk** (stat only, nothing read): every platform folder is listed and compared with the
   database state of that platform, loaded in two queries. A ROM whose files all have the size
   and mtime stored for them is unchanged and costs nothing more. This gives the exact number of
   files and bytes to read, so progress has an ETA.
2. **Hash and write**: new and changed ROMs are read once (fingerprint.py) and written in
   batches (bulk INSERT/UPDATE, one short transaction per batch; no transaction is open while
   files are read). A new ROM identical (CRC32+MD5+SHA-1) to exactly one vanished ROM of the
   same platform is the same game renamed or moved: its row is re-associated and keeps its id
   (and with it notes, collections, saves). ROMs no longer on disk are marked
   ``missing_from_fs``, never deleted; they are un-marked when they come back.

Only one scan runs at a time across processes and replicas (``db.lock("library:scan")``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.core.context import AppContext
from romshelf.core.db import LockTimeout, is_unique_violation
from romshelf.core.errors import AppError, Conflict, NotFound
from romshelf.core.storage import Storage
from romshelf.core.timeutil import utcnow
from romshelf.library.fingerprint import FileResult, RomResult, fingerprint
from romshelf.library.layout import FsFile, FsRom, Layout, detect_layout, list_roms, platform_folders
from romshelf.platforms import catalog
from romshelf.platforms import service as platforms
from romshelf.platforms.models import Platform
from romshelf.roms import naming
from romshelf.roms.models import METADATA_BLOBS, Rom, RomFile

log = logging.getLogger("romshelf.library.scan")

SCAN_LOCK = "library:scan"
BATCH_ROMS = 1000  # ROMs per write transaction
BATCH_SECONDS = 2.0  # ...or whatever was hashed in this long, whichever comes first
MTIME_TOLERANCE = 1e-5  # seconds; mtimes round-trip through DOUBLE columns
HASH_WORKERS = 2  # files read at once when they are mid-size
PARALLEL_MIN_AVG_BYTES = 128 * 1024


class ScanBusy(Conflict):
    def default_detail(self) -> str:
        return "A scan is already running; wait for it to finish"


# --- database state of one platform ------------------------------------------------------------
@dataclass(slots=True)
class DbFile:
    id: int
    rom_id: int
    file_path: str
    file_name: str
    size: int
    mtime: float | None
    missing: bool
    crc: str = ""  # hashes: loaded by load_details() for the ROMs that need them
    md5: str = ""
    sha1: str = ""

    @property
    def key(self) -> str:
        return f"{self.file_path}/{self.file_name}"


@dataclass(slots=True)
class DbRom:
    id: int
    fs_name: str
    fs_path: str
    missing: bool
    files: dict[str, DbFile] = field(default_factory=dict)
    detailed: bool = False  # the fields below are loaded (load_details)
    crc: str = ""
    md5: str = ""
    sha1: str = ""
    name: str = ""
    fs_name_no_tags: str = ""
    name_sort_key: str = ""

    @property
    def hash_key(self) -> tuple[str, str, str] | None:
        return (self.crc, self.md5, self.sha1) if self.crc and self.md5 and self.sha1 else None


def load_platform_state(session: Session, platform_id: int, fs_name: str | None = None) -> dict[str, DbRom]:
    """Every ROM of a platform (or the one named ``fs_name``) with its files, by fs_name.

    What an incremental rescan compares - names, sizes, mtimes, flags - in one query returning
    tuples (no ORM objects). It is lean on purpose: a single-file ROM's file has the ROM's folder
    and name, so those come back as NULL (cheap to transfer and parse, which matters with a
    pure-Python driver); hashes and names are loaded later for the few ROMs that changed or
    vanished (:func:`load_details`).
    """
    where = [Rom.platform_id == platform_id]
    if fs_name is not None:
        where.append(Rom.fs_name == fs_name)
    same_path = RomFile.file_path == Rom.fs_path
    same_name = RomFile.file_name == Rom.fs_name
    q = (
        sa.select(
            Rom.id,
            Rom.fs_name,
            Rom.fs_path,
            Rom.missing_from_fs,
            RomFile.id,
            sa.case((same_path, sa.null()), else_=RomFile.file_path),
            sa.case((same_name, sa.null()), else_=RomFile.file_name),
            RomFile.file_size_bytes,
            RomFile.last_modified,
            RomFile.missing_from_fs,
        )
        .outerjoin(RomFile, RomFile.rom_id == Rom.id)
        .where(*where)
    )
    roms: dict[int, DbRom] = {}
    for rid, name, path, missing, fid, fpath, fname, size, mtime, fmissing in session.execute(q):
        rom = roms.get(rid)
        if rom is None:
            rom = roms[rid] = DbRom(rid, name, path, bool(missing))
        if fid is not None:
            f = DbFile(
                fid,
                rid,
                path if fpath is None else fpath,
                name if fname is None else fname,
                size,
                mtime,
                bool(fmissing),
            )
            rom.files[f.key] = f
    return {r.fs_name: r for r in roms.values()}


def load_details(session: Session, roms: Iterable[DbRom]) -> None:
    """Fill in hashes and names of these ROMs and the hashes of their files (rename detection,
    re-associating files by content), a few hundred ids per query."""
    todo = {r.id: r for r in roms if not r.detailed}
    ids = list(todo)
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        for rid, crc, md5, sha1, name, no_tags, sort_key in session.execute(
            sa.select(
                Rom.id, Rom.crc_hash, Rom.md5_hash, Rom.sha1_hash, Rom.name, Rom.fs_name_no_tags, Rom.name_sort_key
            ).where(Rom.id.in_(part))
        ):
            r = todo[rid]
            r.crc, r.md5, r.sha1, r.name, r.fs_name_no_tags, r.name_sort_key = crc, md5, sha1, name, no_tags, sort_key
            r.detailed = True
        by_id = {f.id: f for rid in part for f in todo[rid].files.values()}
        if not by_id:
            continue
        for fid, crc, md5, sha1 in session.execute(
            sa.select(RomFile.id, RomFile.crc_hash, RomFile.md5_hash, RomFile.sha1_hash).where(RomFile.rom_id.in_(part))
        ):
            f = by_id.get(fid)
            if f is not None:
                f.crc, f.md5, f.sha1 = crc, md5, sha1


def _same_stat(fs: FsFile, db: DbFile) -> bool:
    return fs.size == db.size and db.mtime is not None and abs(fs.mtime - db.mtime) <= MTIME_TOLERANCE


# --- rows ---------------------------------------------------------------------------------------
def _cut(value: str, n: int) -> str:
    return value if len(value) <= n else value[:n]


def name_columns(fs_name: str) -> dict[str, Any]:
    """Rom columns derived from the file name: name parts, display name, sort key, tags."""
    no_ext, ext = naming.split_extension(fs_name)
    no_tags = naming.name_no_tags(fs_name)
    parsed = naming.parse_tags(fs_name)
    name = _cut(no_tags, 350)
    return {
        "fs_name": fs_name,
        "fs_name_no_ext": _cut(no_ext, 450),
        "fs_name_no_tags": _cut(no_tags, 450),
        "fs_extension": _cut(ext, 100),
        "name": name,
        "name_sort_key": naming.name_sort_key(name),
        "regions": [_cut(r, 100) for r in parsed.regions],
        "languages": parsed.languages,
        "tags": parsed.tags,
        "revision": _cut(parsed.revision, 100),
        "version": _cut(parsed.version, 100),
    }


def new_rom_row(platform_id: int, result: RomResult, now: Any) -> dict[str, Any]:
    rom = result.rom
    return {
        "platform_id": platform_id,
        **name_columns(rom.fs_name),
        "fs_path": rom.fs_path,
        "fs_size_bytes": rom.size,
        **result.digests.columns(),
        "ra_hash": "",
        "missing_from_fs": False,
        "created_at": now,
        "updated_at": now,
    }


def file_row(fr: FileResult, now: Any) -> dict[str, Any]:
    f = fr.file
    return {
        "file_name": f.file_name,
        "file_path": f.file_path,
        "file_size_bytes": f.size,
        "last_modified": f.mtime,
        "category": f.category,
        "missing_from_fs": False,
        "ra_hash": "",
        **fr.columns(),
        "updated_at": now,
    }


@dataclass
class Changes:
    """Pending writes for one platform, flushed in one transaction."""

    platform_id: int
    new_roms: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)
    rom_updates: list[dict[str, Any]] = field(default_factory=list)
    file_updates: list[dict[str, Any]] = field(default_factory=list)
    file_inserts: list[dict[str, Any]] = field(default_factory=list)
    file_deletes: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.new_roms) + len(self.rom_updates) + len(self.file_updates) + len(self.file_inserts)

    def add_file_update(self, row: dict[str, Any]) -> None:
        self.file_updates.append(row)


def sync_files(rom_id: int, db_files: dict[str, DbFile], results: list[FileResult], changes: Changes, now: Any) -> None:
    """Bring a ROM's RomFile rows in line with its files on disk, keeping row ids: same path
    first, then same content (a file moved inside the ROM or the ROM renamed)."""
    unmatched_db = dict(db_files)
    leftovers: list[FileResult] = []
    for fr in results:
        db = unmatched_db.pop(fr.file.key, None)
        if db is None:
            leftovers.append(fr)
        elif fr.hashed:
            changes.add_file_update({"id": db.id, **file_row(fr, now)})
        elif db.missing or not _same_stat(fr.file, db):
            f = fr.file
            changes.add_file_update(
                {
                    "id": db.id,
                    "file_size_bytes": f.size,
                    "last_modified": f.mtime,
                    "missing_from_fs": False,
                    "updated_at": now,
                }
            )
    by_content: dict[tuple[str, str, str], list[DbFile]] = {}
    for db in unmatched_db.values():
        if db.crc and db.md5 and db.sha1:
            by_content.setdefault((db.crc, db.md5, db.sha1), []).append(db)
    for fr in leftovers:
        d = fr.digests
        candidates = by_content.get((d.crc, d.md5, d.sha1)) if not d.empty else None
        if candidates:
            db = candidates.pop(0)
            unmatched_db.pop(db.key, None)
            changes.add_file_update({"id": db.id, **file_row(fr, now)})
        else:
            changes.file_inserts.append({"rom_id": rom_id, **file_row(fr, now), "created_at": now})
    changes.file_deletes.extend(db.id for db in unmatched_db.values())


def update_rom(changes: Changes, db: DbRom, result: RomResult, now: Any, *, rename: bool) -> None:
    """Pending writes that make an existing ROM row (and its files) match what was read."""
    fs = result.rom
    row: dict[str, Any] = {
        "id": db.id,
        "fs_path": fs.fs_path,
        "fs_size_bytes": fs.size,
        "missing_from_fs": False,
        "updated_at": now,
    }
    if result.complete:
        # (A folder ROM of which only nested files were re-read keeps its ROM hash.)
        row.update(result.digests.columns())
    if rename:
        cols = name_columns(fs.fs_name)
        if db.name and db.name != db.fs_name_no_tags:
            # A name someone chose (or matched metadata) stays; its sort key too.
            cols.pop("name")
            cols.pop("name_sort_key")
        elif db.name_sort_key != naming.name_sort_key(db.name):
            cols.pop("name_sort_key")  # a custom sort key stays
        row.update(cols)
    changes.rom_updates.append(row)
    sync_files(db.id, db.files, result.files, changes, now)


# Columns every new ROM starts with empty: written as SQL literals in the INSERT statement, so
# bulk inserts do not JSON-encode twelve empty values per row.
_EMPTY_JSON_COLUMNS = (*METADATA_BLOBS, "path_screenshots", "url_screenshots")


def _rom_insert(dialect: str) -> sa.Insert:
    values: dict[str, Any] = {}
    for col in _EMPTY_JSON_COLUMNS:
        empty = "[]" if col.endswith("screenshots") else "{}"
        if dialect == "mysql":
            # PyMySQL batches an executemany into one multi-row INSERT only when every value is a
            # placeholder: bind the empty JSON as a plain string (MariaDB's JSON is text).
            values[col] = sa.bindparam(f"empty_{col}", empty, type_=sa.String())
        else:
            values[col] = sa.literal_column(f"'{empty}'")
    return Rom.__table__.insert().values(**values)  # type: ignore[attr-defined, no-any-return]


def flush(session: Session, changes: Changes) -> dict[str, int]:
    """Write pending changes (caller commits). Returns the ids of inserted ROMs by fs_name.

    Inserts are Core executemany statements (no ORM unit of work): thousands of rows per batch.
    Raises IntegrityError if a ROM appeared meanwhile (an upload); see :func:`flush_safely`.
    """
    ids: dict[str, int] = {}
    conn = session.connection()
    if changes.new_roms:
        conn.execute(_rom_insert(conn.dialect.name), [r for r, _ in changes.new_roms])
        names = [r["fs_name"] for r, _ in changes.new_roms]
        for i in range(0, len(names), 500):
            part = names[i : i + 500]
            ids.update(
                conn.execute(
                    sa.select(Rom.fs_name, Rom.id).where(Rom.platform_id == changes.platform_id, Rom.fs_name.in_(part))
                ).all()
            )
        rows = []
        for r, files in changes.new_roms:
            rom_id = ids[r["fs_name"]]
            for f in files:
                rows.append({**f, "rom_id": rom_id})
        if rows:
            conn.execute(RomFile.__table__.insert(), rows)  # type: ignore[attr-defined]
    if changes.file_inserts:
        conn.execute(RomFile.__table__.insert(), changes.file_inserts)  # type: ignore[attr-defined]
    if changes.rom_updates:
        _bulk_update(session, Rom, changes.rom_updates)
    if changes.file_updates:
        _bulk_update(session, RomFile, changes.file_updates)
    if changes.file_deletes:
        for i in range(0, len(changes.file_deletes), 500):
            conn.execute(sa.delete(RomFile).where(RomFile.id.in_(changes.file_deletes[i : i + 500])))
    return ids


def _bulk_update(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    # Group rows by their key set: each group is one executemany UPDATE ... WHERE id = ?.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        session.execute(sa.update(model), group)


def flush_safely(ctx: AppContext, changes: Changes) -> tuple[dict[str, int], list[str]]:
    """Flush in one transaction; if a new ROM's name was taken meanwhile (a concurrent upload
    created it), retry without the ROMs that now exist. Returns (inserted ids, skipped names)."""
    try:
        with ctx.db.transaction() as s:
            return flush(s, changes), []
    except IntegrityError as e:
        if not is_unique_violation(e):
            raise
    with ctx.db.read() as s:
        names = [r["fs_name"] for r, _ in changes.new_roms]
        taken = set(
            s.scalars(sa.select(Rom.fs_name).where(Rom.platform_id == changes.platform_id, Rom.fs_name.in_(names)))
        )
    changes.new_roms = [(r, f) for r, f in changes.new_roms if r["fs_name"] not in taken]
    with ctx.db.transaction() as s:
        return flush(s, changes), sorted(taken)


# --- the scan -----------------------------------------------------------------------------------
@dataclass
class ScanStats:
    total_platforms: int = 0
    scanned_platforms: int = 0
    new_platforms: int = 0
    missing_platforms: int = 0
    total_roms: int = 0  # ROMs found on disk
    scanned_roms: int = 0  # ROMs looked at (on disk)
    new_roms: int = 0
    changed_roms: int = 0  # existing ROMs re-read because their files changed
    renamed_roms: int = 0  # new files re-associated with a vanished ROM (same content)
    missing_roms: int = 0  # newly marked missing_from_fs
    restored_roms: int = 0  # were missing, are back
    unchanged_roms: int = 0
    files_total: int = 0  # files to read
    files_done: int = 0
    bytes_total: int = 0  # bytes to read
    bytes_done: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}


@dataclass
class _Work:
    fs: FsRom
    db: DbRom | None  # None: new
    only: set[str] | None = None  # files to read (None: all)
    files: int = 0
    bytes: int = 0


@dataclass
class _PlatformPlan:
    platform: Platform
    fs_slug: str
    fs_path: str
    hashable: bool
    state: dict[str, DbRom]
    work: list[_Work] = field(default_factory=list)
    restore: list[DbRom] = field(default_factory=list)  # unchanged but flagged missing
    vanished: list[DbRom] = field(default_factory=list)


Report = Callable[[dict[str, Any]], None]


class Scanner:
    def __init__(
        self,
        ctx: AppContext,
        *,
        full: bool = False,
        report: Report | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.storage: Storage = ctx.storages.library
        self.full = full
        self._report = report
        self._check = check
        self.stats = ScanStats()
        self._start = time.monotonic()
        self._phase = "walking"
        self._platform = ""
        self._current = ""
        self._lock = threading.Lock()

    # progress ------------------------------------------------------------------------------
    def report(self) -> None:
        if self._report is None:
            return
        st = self.stats
        elapsed = max(time.monotonic() - self._start, 1e-6)
        hash_elapsed = max(time.monotonic() - getattr(self, "_hash_start", self._start), 1e-6)
        rate = st.bytes_done / hash_elapsed if st.bytes_done else 0.0
        left = st.bytes_total - st.bytes_done
        eta = (left / rate) if rate > 0 else None
        self._report(
            {
                "phase": self._phase,
                "platform": self._platform,
                "current": self._current,
                "platforms_total": st.total_platforms,
                "platforms_done": st.scanned_platforms,
                "roms_total": st.total_roms,
                "files_total": st.files_total,
                "files_done": st.files_done,
                "bytes_total": st.bytes_total,
                "bytes_done": st.bytes_done,
                "rate_bytes_per_s": round(rate, 1),
                "files_per_s": round(st.files_done / hash_elapsed, 1) if st.files_done else 0.0,
                "eta_seconds": None if eta is None else round(eta, 1),
                "elapsed_seconds": round(elapsed, 3),
                "stats": st.as_dict(),
            }
        )

    def _bytes(self, n: int) -> None:
        with self._lock:
            self.stats.bytes_done += n
        if n >= 1024 * 1024:
            self.report()

    def _fingerprint(self, plan: _PlatformPlan, work: _Work) -> RomResult | BaseException:
        try:
            return fingerprint(self.storage, work.fs, hashable=plan.hashable, only=work.only, progress=self._bytes)
        except (OSError, AppError) as e:
            return e

    def _fingerprints(self, plan: _PlatformPlan) -> Iterator[tuple[_Work, RomResult | BaseException]]:
        """Read the plan's ROMs in order. Mid-size files are read two at a time (hashlib and
        zlib release the GIL, so both cores hash); tiny files are cheaper on one thread, and big
        ones already hash MD5 on a helper thread."""
        files = sum(w.files for w in plan.work)
        size = sum(w.bytes for w in plan.work)
        parallel = plan.hashable and len(plan.work) >= 4 and files and size / files >= PARALLEL_MIN_AVG_BYTES
        if not parallel:
            for work in plan.work:
                if self._check is not None:
                    self._check()
                self._current = work.fs.fs_name
                yield work, self._fingerprint(plan, work)
            return
        with ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix="romshelf-hash") as pool:
            pending: deque[tuple[_Work, Future[RomResult | BaseException]]] = deque()
            queue = iter(plan.work)
            try:
                for work in queue:
                    pending.append((work, pool.submit(self._fingerprint, plan, work)))
                    if len(pending) >= HASH_WORKERS * 2:
                        break
                while pending:
                    if self._check is not None:
                        self._check()
                    work, future = pending.popleft()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.append((nxt, pool.submit(self._fingerprint, plan, nxt)))
                    self._current = work.fs.fs_name
                    yield work, future.result()
            finally:
                for _work, future in pending:
                    future.cancel()

    # walk ----------------------------------------------------------------------------------
    def plan(self, layout: Layout, fs_slug: str) -> _PlatformPlan | None:
        fs_path = layout.platform_path(fs_slug)
        try:
            with self.ctx.db.transaction() as s:
                existed = s.scalar(sa.select(Platform.id).where(Platform.fs_slug == fs_slug)) is not None
                platform = platforms.get_or_create(s, fs_slug)
                if platform.missing_from_fs:
                    platform.missing_from_fs = False
        except AppError as e:
            self.stats.errors.append(f"{fs_slug}: {e.detail}")
            return None
        if not existed:
            self.stats.new_platforms += 1
        with self.ctx.db.read() as s:
            state = load_platform_state(s, platform.id)
        hashable = platform.slug not in catalog.NON_HASHABLE_SLUGS
        plan = _PlatformPlan(platform, fs_slug, fs_path, hashable, state)
        try:
            found = list_roms(self.storage, fs_path)
        except OSError as e:
            # Never read an unreadable folder as an empty one: that would mark it all missing.
            self.stats.errors.append(f"{fs_path}: cannot list the folder ({e.strerror or e}); platform skipped")
            return None
        seen: set[str] = set()
        for fs in found:
            seen.add(fs.fs_name)
            if fs.error is not None:
                self.stats.errors.append(f"{fs.key}: {fs.error}; left as it was")
                continue
            if not self._valid(fs):
                continue
            self.stats.total_roms += 1
            db = state.get(fs.fs_name)
            if db is None:
                plan.work.append(self._work(_Work(fs, None), hashable))
                continue
            work = self._compare(fs, db)
            if work is None:
                self.stats.unchanged_roms += 1
                if db.missing or any(f.missing for f in db.files.values()):
                    plan.restore.append(db)
            else:
                plan.work.append(self._work(work, hashable))
        plan.vanished = [db for name, db in state.items() if name not in seen]
        return plan

    def _valid(self, fs: FsRom) -> bool:
        if len(fs.fs_name) > 450 or any(len(f.file_path) > 1000 or len(f.file_name) > 450 for f in fs.files):
            self.stats.errors.append(f"{fs.key}: name or path too long, skipped")
            return False
        return True

    def _work(self, work: _Work, hashable: bool) -> _Work:
        if hashable:
            files = [f for f in work.fs.files if work.only is None or f.key in work.only]
            work.files = len(files)
            work.bytes = sum(f.size for f in files)
            self.stats.files_total += work.files
            self.stats.bytes_total += work.bytes
        return work

    def _compare(self, fs: FsRom, db: DbRom) -> _Work | None:
        """None if nothing changed, else the work to bring the row up to date."""
        if self.full:
            return _Work(fs, db)
        changed: set[str] = set()
        top_changed = fs.fs_path != db.fs_path or not fs.is_dir
        keys = set()
        for f in fs.files:
            keys.add(f.key)
            dbf = db.files.get(f.key)
            if dbf is None or not _same_stat(f, dbf):
                changed.add(f.key)
                if f.top_level:
                    top_changed = True
        removed = [k for k in db.files if k not in keys]
        if not changed and not removed and fs.fs_path == db.fs_path:
            return None
        if any(db.files[k].file_path == f"{fs.fs_path}/{fs.fs_name}" for k in removed):
            top_changed = True  # a top-level file went away: the ROM hash changes
        if not fs.is_dir:
            return _Work(fs, db)
        only = set(changed)
        if top_changed:
            only.update(f.key for f in fs.files if f.top_level)
        return _Work(fs, db, only)

    # hash and write --------------------------------------------------------------------------
    def execute(self, plan: _PlatformPlan) -> None:
        st = self.stats
        self._platform = plan.fs_slug
        pid = plan.platform.id
        changes = Changes(pid)
        now = utcnow()
        for db in plan.restore:
            st.restored_roms += 1 if db.missing else 0
            changes.rom_updates.append({"id": db.id, "missing_from_fs": False, "updated_at": now})
            for f in db.files.values():
                if f.missing:
                    changes.file_updates.append({"id": f.id, "missing_from_fs": False, "updated_at": now})
        need = [*plan.vanished, *(w.db for w in plan.work if w.db is not None)]
        if need:
            with self.ctx.db.read() as s:
                load_details(s, need)
        # Vanished ROMs with hashes may be the old names of new files (renames).
        by_hash: dict[tuple[str, str, str], list[DbRom]] = {}
        for db in plan.vanished:
            if db.hash_key is not None:
                by_hash.setdefault(db.hash_key, []).append(db)
        renamed: set[int] = set()
        last_flush = time.monotonic()
        for work, outcome in self._fingerprints(plan):
            if isinstance(outcome, BaseException):
                # Vanished or unreadable between walk and read: leave it for the next scan.
                st.errors.append(f"{work.fs.key}: {outcome}")
                continue
            result = outcome
            st.files_done += work.files
            st.scanned_roms += 1
            now = utcnow()
            if work.db is None:
                match = by_hash.get(result.digests.hash_key) if not result.digests.empty else None
                candidates = [c for c in (match or []) if c.id not in renamed]
                if len(candidates) == 1:
                    old = candidates[0]
                    renamed.add(old.id)
                    update_rom(changes, old, result, now, rename=True)
                    st.renamed_roms += 1
                else:
                    changes.new_roms.append(
                        (
                            new_rom_row(pid, result, now),
                            [{**file_row(fr, now), "created_at": now} for fr in result.files],
                        )
                    )
                    st.new_roms += 1
            else:
                update_rom(changes, work.db, result, now, rename=False)
                st.changed_roms += 1
            if len(changes) >= BATCH_ROMS or time.monotonic() - last_flush >= BATCH_SECONDS:
                self._flush(changes)
                changes = Changes(pid)
                last_flush = time.monotonic()
            self.report()
        now = utcnow()
        for db in plan.vanished:
            if db.id in renamed:
                continue
            if not db.missing:
                st.missing_roms += 1
                changes.rom_updates.append({"id": db.id, "missing_from_fs": True, "updated_at": now})
            for f in db.files.values():
                if not f.missing:
                    changes.file_updates.append({"id": f.id, "missing_from_fs": True, "updated_at": now})
        self._flush(changes)
        st.scanned_platforms += 1
        self.report()

    def _flush(self, changes: Changes) -> None:
        if not len(changes) and not changes.file_deletes:
            return
        _ids, skipped = flush_safely(self.ctx, changes)
        for name in skipped:
            self.stats.new_roms -= 1
            log.info("scan: %s was added meanwhile (upload); kept that row", name)

    def mark_platform_missing(self, platform: Platform) -> None:
        """A platform folder that vanished: its ROMs and files are missing."""
        now = utcnow()
        with self.ctx.db.transaction() as s:
            n = s.execute(
                sa.update(Rom)
                .where(Rom.platform_id == platform.id, Rom.missing_from_fs.is_(False))
                .values(missing_from_fs=True, updated_at=now)
            ).rowcount
            s.execute(
                sa.update(RomFile)
                .where(
                    RomFile.rom_id.in_(sa.select(Rom.id).where(Rom.platform_id == platform.id)),
                    RomFile.missing_from_fs.is_(False),
                )
                .values(missing_from_fs=True, updated_at=now)
            )
            s.execute(
                sa.update(Platform).where(Platform.id == platform.id).values(missing_from_fs=True, updated_at=now)
            )
        self.stats.missing_roms += n or 0
        self.stats.missing_platforms += 1

    def _has_roms(self) -> bool:
        with self.ctx.db.read() as s:
            return s.scalar(sa.select(Rom.id).where(Rom.missing_from_fs.is_(False)).limit(1)) is not None

    def run(self, only_platforms: Iterable[str] | None = None) -> ScanStats:
        layout = detect_layout(self.storage)
        folders = platform_folders(self.storage, layout)
        wanted = list(dict.fromkeys(only_platforms)) if only_platforms else None
        with self.ctx.db.read() as s:
            known = {p.fs_slug: p for p in s.scalars(sa.select(Platform))}
        if not folders and any(not p.missing_from_fs for p in known.values()) and self._has_roms():
            # An empty or missing library root while the database knows ROMs: most likely an
            # unmounted disk. Refuse rather than mark the whole library missing.
            raise Conflict(
                f"The library folder {self.storage.local_path('') or ''} has no platform folders but the database "
                "has ROMs; is the library mounted? Nothing was changed"
            )
        if wanted is not None:
            unknown = [w for w in wanted if w not in folders and w not in known]
            if unknown:
                raise NotFound(f"No platform folder named {', '.join(unknown)} in the library")
            selected = [w for w in wanted if w in folders]
            gone = [known[w] for w in wanted if w not in folders]
        else:
            selected = folders
            gone = [p for slug, p in known.items() if slug not in folders]
        self.stats.total_platforms = len(selected)
        self.report()
        plans = []
        for fs_slug in selected:
            if self._check is not None:
                self._check()
            self._platform = fs_slug
            plan = self.plan(layout, fs_slug)
            if plan is not None:
                plans.append(plan)
            self.report()
        self._phase = "hashing"
        self._hash_start = time.monotonic()
        self.report()
        for plan in plans:
            self.execute(plan)
        for platform in gone:
            self.mark_platform_missing(platform)
        self._phase = "done"
        self._current = ""
        self.report()
        return self.stats


def scan(
    ctx: AppContext,
    *,
    platforms: Iterable[str] | None = None,
    full: bool = False,
    report: Report | None = None,
    check: Callable[[], None] | None = None,
) -> ScanStats:
    """Scan the library (or the named platform folders) into the database; see module docs.

    Raises :class:`ScanBusy` (409) if another scan holds the lock, anywhere.
    """
    try:
        with ctx.db.lock(SCAN_LOCK, timeout=0):
            stats = Scanner(ctx, full=full, report=report, check=check).run(platforms)
    except LockTimeout:
        raise ScanBusy() from None
    log.info("scan finished", extra=stats.as_dict())
    return stats


def scan_is_running(ctx: AppContext) -> bool:
    """True if some process holds the scan lock right now."""
    try:
        with ctx.db.lock(SCAN_LOCK, timeout=0):
            return False
    except LockTimeout:
        return True
