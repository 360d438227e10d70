"""Saves, states and their screenshots: storing, replacing, deleting, syncing. No HTTP here.

Callable from the HTTP layer, the CLI (export/import) and benchmarks alike. Every function takes
the :class:`~romshelf.core.context.AppContext` and a ``user_id`` (the owner); anything the user
does not own is a 404, never a 403.

How an upload is stored (nothing lost, ever)
-------------------------------------------
1. **Stage**: the bytes are streamed to ``.incoming/<uuid>`` in the assets store (atomic writer;
   MD5 on the way; size limit enforced while streaming) by :func:`stage` or
   :class:`IncomingWriter`. Nothing is visible yet and no lock or transaction is held.
2. **Decide and place** under the named lock ``assets:<user>:<rom>`` (``Database.lock``: one
   writer per user and ROM across threads, processes and replicas): one short transaction looks
   up rows, applies the 409 rules, dedup, quota, picks the final name, flushes the row changes,
   then renames the staged file into place (create-if-absent for new names; an existing file
   being replaced is first renamed aside). Files to remove (autocleanup, moved paths) are
   renamed into ``.trash/`` first.
3. **Commit**. If anything fails before the commit returns, every rename is undone: the staged
   file is deleted, replaced files come back, trashed files are restored, the rows roll back.
   After the commit the trash is emptied. A crash can leave files under ``.incoming/`` or
   ``.trash/`` only; :func:`cleanup_stale_files` removes them (housekeeping).

Public API (everything else is private)
--------------------------------------
* staging: :func:`stage`, :class:`IncomingWriter`, :func:`discard`, :class:`Upload`
* saves: :func:`store_save`, :func:`store_save_stream`, :func:`replace_save`,
  :func:`delete_saves`, :func:`set_visibility`, :func:`list_saves`, :func:`get_owned_save`
* states: :func:`store_state`, :func:`store_state_stream`, :func:`replace_state`,
  :func:`delete_states`, :func:`list_states`, :func:`get_owned_state`
* sync records: :func:`mark_downloaded`, :func:`set_untracked`, :func:`record_download`,
  :func:`upsert_sync`
* helpers: :func:`content_hash`, :func:`asset_dir`, :func:`user_folder`, :func:`usage_bytes`,
  :func:`readable_asset`, :func:`cleanup_stale_files`
Read a stored file with ``ctx.storages.assets.open(row.full_path)``.

Slot uploads get RomM's UTC tag ``name [YYYY-MM-DD_HH-MM-SS].ext``; when that name is already
taken (two uploads in the same second) the new one becomes ``name [tag] (2).ext`` and so on, so
every accepted upload keeps its own row and file (a restore passes ``keep_name`` to keep the tag
the save already has). Identical content to the same slot returns
the existing row (the staged copy is dropped; no file a row points to is ever deleted).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.core import jobs
from romshelf.core.context import AppContext
from romshelf.core.db import LockTimeout, is_unique_violation
from romshelf.core.errors import AppError, BadRequest, Conflict, NotFound, PayloadTooLarge
from romshelf.core.paths import UnsafePath, sanitize_filename
from romshelf.core.storage import CHUNK, FileExists, LocalStorage, _chunks
from romshelf.core.timeutil import to_utc, utcnow
from romshelf.devices.models import Device
from romshelf.devices.service import get_owned_device, touch_last_seen
from romshelf.platforms.models import Platform
from romshelf.roms import naming
from romshelf.roms.models import Rom, RomUser
from romshelf.roms.service import is_hidden_for, rom_not_found
from romshelf.saves.models import AssetMixin, DeviceSaveSync, Save, Screenshot, State
from romshelf.saves.schemas import SaveSchema
from romshelf.saves.views import linked_screenshots, save_schemas

log = logging.getLogger("romshelf.saves")
T = TypeVar("T")

INCOMING = ".incoming"
TRASH = ".trash"
LOCK_TIMEOUT = 60.0
DEFAULT_AUTOCLEANUP_LIMIT = 10
MAX_NAME_BYTES = 255 - len(" [YYYY-MM-DD_HH-MM-SS]") - len(" (9999)")

DATETIME_TAG = re.compile(r" \[\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}\]")
# A tag plus the " (n)" romshelf adds to keep same-second uploads apart: stripped as one.
_TAG_AND_COUNTER = re.compile(r" \[\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}\](?: \(\d+\))?")

SLOT_CONFLICT = "Slot has a newer save since your last sync"
SAVE_CONFLICT = "Save has been updated since your last sync"


def _now() -> dt.datetime:
    """The clock used for slot tags (tests patch it to force same-second uploads)."""
    return utcnow()


class ServiceUnavailable(AppError):
    status_code = 503


def save_not_found(save_id: int) -> NotFound:
    return NotFound(f"Save with ID {save_id} not found")


def state_not_found(state_id: int) -> NotFound:
    return NotFound(f"State with ID {state_id} not found")


def screenshot_not_found(screenshot_id: int) -> NotFound:
    return NotFound(f"Screenshot with ID {screenshot_id} not found")


# --- paths ---------------------------------------------------------------------------------------
def user_folder(user_id: int) -> str:
    """RomM's per-user folder name: hex of ``User:<id>`` (user 1 -> ``557365723a31``)."""
    return f"User:{user_id}".encode().hex()


def _segment(value: str, what: str) -> str:
    try:
        clean = sanitize_filename(value, what=what)
    except UnsafePath as e:
        raise BadRequest(str(e.detail)) from None
    if len(clean.encode()) > 255:
        raise BadRequest(f"Invalid {what}: longer than 255 bytes")
    return clean


def asset_dir(kind: str, user_id: int, platform_dir: str, rom_id: int, emulator: str | None = None) -> str:
    """``users/<hex>/<kind>/<platform>/<rom_id>[/<emulator>]`` (the stored ``file_path``)."""
    parts = ["users", user_folder(user_id), kind, _segment(platform_dir, "platform"), str(rom_id)]
    if emulator:
        parts.append(_segment(emulator, "emulator"))
    return "/".join(parts)


def clean_name(name: str | None, label: str) -> str:
    """RomM's sanitisation of a client file name; 400 ``"<label> has no filename"`` when empty,
    400 ``"Invalid <label> filename: ..."`` when unusable (``.``/``..``, over 450 characters)."""
    if not name:
        raise BadRequest(f"{label.capitalize()} file has no filename")
    try:
        clean = sanitize_filename(name, what=f"{label} filename")
    except UnsafePath as e:
        raise BadRequest(str(e.detail)) from None
    if len(clean.encode()) > MAX_NAME_BYTES:
        # File systems hold 255 bytes per name; leave room for the slot tag and a " (n)".
        raise BadRequest(f"Invalid {label} filename: longer than {MAX_NAME_BYTES} bytes")
    return clean


def apply_datetime_tag(file_name: str, when: dt.datetime | None = None) -> str:
    """``name [YYYY-MM-DD_HH-MM-SS].ext`` (UTC); any earlier tag (and a ``(n)`` after it) goes."""
    stem, ext = os.path.splitext(file_name)
    stem = _TAG_AND_COUNTER.sub("", stem)
    stamp = to_utc(when or _now()).strftime("%Y-%m-%d_%H-%M-%S")
    return f"{stem} [{stamp}]{ext}"


def _numbered(file_name: str, n: int) -> str:
    if n < 2:
        return file_name
    stem, ext = os.path.splitext(file_name)
    return f"{stem} ({n}){ext}"


# --- content hash --------------------------------------------------------------------------------
def zip_content_hash(fh: BinaryIO) -> str:
    """RomM's hash of a zip: MD5 over ``"name:md5(entry)"`` lines of the sorted entry names
    (directory entries skipped), joined with ``\\n``. Entries are read streamed."""
    with zipfile.ZipFile(fh) as zf:
        lines = []
        for name in sorted(n for n in zf.namelist() if not n.endswith("/")):
            h = hashlib.md5(usedforsecurity=False)
            with zf.open(name) as entry:
                while data := entry.read(CHUNK):
                    h.update(data)
            lines.append(f"{name}:{h.hexdigest()}")
    return hashlib.md5("\n".join(lines).encode(), usedforsecurity=False).hexdigest()


def content_hash(storage: LocalStorage, key: str, plain_md5: str | None = None) -> str | None:
    """RomM's ``content_hash`` of a stored file: the zip rule for zip files, else the plain MD5
    (``plain_md5`` if already computed while streaming). None if the file cannot be read."""
    try:
        with storage.open(key) as fh:
            if zipfile.is_zipfile(fh):
                fh.seek(0)
                return zip_content_hash(fh)
            if plain_md5 is not None:
                return plain_md5
            fh.seek(0)
            h = hashlib.md5(usedforsecurity=False)
            while data := fh.read(CHUNK):
                h.update(data)
            return h.hexdigest()
    except Exception:
        log.warning("could not hash %s", key, exc_info=True)
        return None


# --- staging ---------------------------------------------------------------------------------------
@dataclass
class Upload:
    """A staged upload in the assets store (``.incoming/...``), not yet anyone's file."""

    key: str
    size: int
    md5: str
    filename: str


class IncomingWriter:
    """Stream one uploaded file into ``.incoming/`` (atomically), hashing it and enforcing the
    size limit. ``finish()`` gives the :class:`Upload`; ``abort()`` leaves nothing behind.
    Blocking: call ``write`` from a worker thread in async code."""

    def __init__(self, ctx: AppContext, filename: str | None, *, label: str = "Save", max_bytes: int | None = None):
        self.filename = filename or ""
        self.label = label
        if max_bytes is None:
            max_bytes = ctx.settings.max_asset_upload_bytes or None  # 0 = no limit
        self.max_bytes = max_bytes
        self.key = f"{INCOMING}/{uuid.uuid4().hex}"
        # A fresh uuid name: nothing to clobber, and the folder entry need not be durable (the
        # move into place syncs the destination folder).
        self._writer = ctx.storages.assets.writer(self.key, overwrite=True, staging=True)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.max_bytes and self.size > self.max_bytes:
            self.abort()
            raise too_large(f"{self.label} file", self.max_bytes)
        self._writer.write(data)
        self._md5.update(data)

    def finish(self) -> Upload:
        self._writer.commit()
        return Upload(self.key, self.size, self._md5.hexdigest(), self.filename)

    def abort(self) -> None:
        self._writer.abort()


def too_large(label: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{label} exceeds the maximum allowed size of {limit} bytes")


def stage(
    ctx: AppContext,
    source: bytes | BinaryIO | Iterable[bytes],
    filename: str,
    *,
    label: str = "Save",
    max_bytes: int | None = None,
) -> Upload:
    """Stage bytes (bytes, a binary file or an iterable of chunks) for :func:`store_save` /
    :func:`store_state`. ``max_bytes`` defaults to ``ROMSHELF_MAX_ASSET_UPLOAD_BYTES``."""
    w = IncomingWriter(ctx, filename, label=label, max_bytes=max_bytes)
    try:
        for chunk in _chunks(source):
            if chunk:
                w.write(chunk)
        return w.finish()
    except BaseException:
        w.abort()
        raise


def discard(ctx: AppContext, *uploads: Upload | None) -> None:
    """Remove staged uploads (safe to call twice)."""
    for u in uploads:
        if u is not None:
            ctx.storages.assets.delete(u.key)


# --- file operations undone on failure -----------------------------------------------------------
@dataclass
class _FileOps:
    """Renames done inside a transaction, undone if it does not commit."""

    storage: LocalStorage
    _undo: list[tuple[str, str, str]] = field(default_factory=list)  # (op, a, b)
    _trash: list[str] = field(default_factory=list)

    def place_new(self, staged: str, key: str) -> None:
        """Staged file -> ``key``, which must not exist (FileExists otherwise)."""
        self.storage.move(staged, key, overwrite=False, sync_source=False)
        self._undo.append(("unplace", key, staged))

    def place_replace(self, staged: str, key: str) -> None:
        """Staged file -> ``key``; an existing file there is set aside until the commit."""
        if self.storage.exists(key):
            self.remove(key)
        self.place_new(staged, key)

    def remove(self, key: str) -> None:
        """Take ``key`` away now (into the trash); deleted for good by :meth:`finish`."""
        if not self.storage.exists(key):
            return
        trash = f"{TRASH}/{uuid.uuid4().hex}"
        self.storage.move(key, trash, overwrite=False)
        self._undo.append(("untrash", trash, key))
        self._trash.append(trash)

    def rollback(self) -> None:
        for op, a, b in reversed(self._undo):
            try:
                if op == "unplace":
                    self.storage.move(a, b, overwrite=True)  # back to staging (discarded by the caller)
                else:
                    self.storage.move(a, b, overwrite=True)
            except Exception:
                log.exception("could not undo %s %s -> %s", op, a, b)
        self._undo.clear()
        self._trash.clear()

    def finish(self) -> None:
        for key in self._trash:
            try:
                self.storage.delete(key)
            except Exception:
                log.warning("could not delete %s", key, exc_info=True)
        self._undo.clear()
        self._trash.clear()


_process_locks: dict[str, list[object]] = {}  # name -> [threading.Lock, waiters]
_process_guard = threading.Lock()


@contextlib.contextmanager
def _process_lock(name: str, timeout: float) -> Iterator[None]:
    """Threads of this process queue here before the database lock, so a waiter holds no
    database connection (on PostgreSQL/MariaDB the named lock is held on a connection)."""
    with _process_guard:
        entry = _process_locks.setdefault(name, [threading.Lock(), 0])
        entry[1] = int(entry[1]) + 1  # type: ignore[call-overload]
    lock: threading.Lock = entry[0]  # type: ignore[assignment]
    try:
        if not lock.acquire(timeout=timeout):
            raise LockTimeout(name)
        try:
            yield
        finally:
            lock.release()
    finally:
        with _process_guard:
            entry[1] = int(entry[1]) - 1  # type: ignore[call-overload]
            if entry[1] == 0:
                _process_locks.pop(name, None)


def _gate(ctx: AppContext) -> threading.Semaphore | None:
    """At most pool-size asset locks held at once per process on the server engines: a holder
    uses two connections (the lock's and its transaction's), so the pool cannot run dry."""
    if ctx.db.is_sqlite:
        return None
    with _process_guard:
        gate = ctx.extras.get("saves.lock_gate")
        if gate is None:
            size = getattr(ctx.db.write_engine.pool, "size", lambda: 5)()
            gate = ctx.extras["saves.lock_gate"] = threading.BoundedSemaphore(max(1, int(size)))
    return gate  # type: ignore[no-any-return]


@contextlib.contextmanager
def _asset_lock(ctx: AppContext, user_id: int, rom_id: int) -> Iterator[None]:
    """One writer per (user, ROM) for saves, states and their screenshots, on every replica."""
    name = f"assets:{user_id}:{rom_id}"
    deadline = time.monotonic() + LOCK_TIMEOUT
    gate = _gate(ctx)
    try:
        with _process_lock(name, LOCK_TIMEOUT):
            if gate is not None and not gate.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise LockTimeout(name)
            try:
                if ctx.db.engine_name == "sqlite":
                    # SQLite's write transaction (BEGIN IMMEDIATE, which every decision below
                    # runs in) already excludes every other writer on this host; the file lock
                    # would add a lock file per user and ROM for nothing.
                    yield
                else:
                    with ctx.db.lock(name, timeout=max(1.0, deadline - time.monotonic())):
                        yield
            finally:
                if gate is not None:
                    gate.release()
    except LockTimeout:
        raise ServiceUnavailable("The server is busy with other uploads for this game; try again") from None


@contextlib.contextmanager
def _writing(ctx: AppContext, *staged: Upload | None) -> Iterator[tuple[Session, _FileOps]]:
    """A write transaction plus file renames that commit or roll back together. Staged uploads
    that were not placed are discarded either way."""
    ops = _FileOps(ctx.storages.assets)
    try:
        with ctx.db.transaction() as s:
            yield s, ops
    except BaseException:
        ops.rollback()
        raise
    finally:
        discard(ctx, *staged)
    ops.finish()


# --- lookups ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RomInfo:
    id: int
    fs_slug: str
    slug: str


# The lookups every upload runs are built once, with bound parameters: building a statement
# (operators, coercions) costs as much CPU as executing it on SQLite. Core columns, not ORM
# entities, where only values are needed (no ORM compile state, no identity map).
_ROM_INFO = (
    sa.select(Rom.id, Platform.fs_slug, Platform.slug)
    .join(Platform, Platform.id == Rom.platform_id)
    .where(Rom.id == sa.bindparam("rom_id"))
)
_SAVES = Save.__table__.c
_SAME_CONTENT_IN_SLOT = (
    sa.select(_SAVES.id)
    .where(
        _SAVES.user_id == sa.bindparam("user_id"),
        _SAVES.rom_id == sa.bindparam("rom_id"),
        _SAVES.slot == sa.bindparam("slot"),
        _SAVES.content_hash == sa.bindparam("hash"),
    )
    .order_by(_SAVES.updated_at.desc(), _SAVES.id.desc())
    .limit(1)
)
# Names in a folder that start with a prefix (``prefix``: a LIKE pattern, see _like_prefix).
_NAMES_WITH_PREFIX = sa.select(_SAVES.file_name).where(
    _SAVES.user_id == sa.bindparam("user_id"),
    _SAVES.rom_id == sa.bindparam("rom_id"),
    _SAVES.file_path == sa.bindparam("folder"),
    _SAVES.file_name.like(sa.bindparam("prefix"), escape="/"),
)


def _like_prefix(text: str) -> str:
    """A LIKE pattern (escape character ``/``) matching strings that start with ``text``."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


_ROM_USER = RomUser.__table__.c
_TOUCH_ROM_USER = (
    sa.update(RomUser.__table__)
    .where(_ROM_USER.rom_id == sa.bindparam("b_rom_id"), _ROM_USER.user_id == sa.bindparam("b_user_id"))
    .values(last_played=sa.bindparam("now"), updated_at=sa.bindparam("now"))
)


def rom_info(session: Session, rom_id: int) -> RomInfo:
    """The ROM's platform folders, or 404 ``"Rom with id '<id>' not found"``."""
    row = session.execute(_ROM_INFO, {"rom_id": rom_id}).first()
    if row is None:
        raise rom_not_found(rom_id)
    return RomInfo(row[0], row[1], row[2] or row[1])


def check_rom(session: Session, rom_id: int, user_id: int, *, visible: bool = False) -> RomInfo:
    """:func:`rom_info`; with ``visible`` a ROM the user hid is also a 404."""
    info = rom_info(session, rom_id)
    if visible and is_hidden_for(session, rom_id, user_id):
        raise rom_not_found(rom_id)
    return info


def get_owned_save(session: Session, user_id: int, save_id: int) -> Save:
    save = session.get(Save, save_id)
    if save is None or save.user_id != user_id:
        raise save_not_found(save_id)
    return save


def get_owned_state(session: Session, user_id: int, state_id: int) -> State:
    state = session.get(State, state_id)
    if state is None or state.user_id != user_id:
        raise state_not_found(state_id)
    return state


def usage_bytes(session: Session, user_id: int) -> int:
    """Bytes the user's saves, states and screenshots take."""
    total = 0
    for model in (Save, State, Screenshot):
        total += int(
            session.scalar(
                sa.select(sa.func.coalesce(sa.func.sum(model.file_size_bytes), 0)).where(model.user_id == user_id)
            )
            or 0
        )
    return total


def check_quota(ctx: AppContext, session: Session, user_id: int, incoming: int) -> None:
    """413 if ``incoming`` more bytes would take the user past ``ROMSHELF_USER_QUOTA_BYTES``."""
    quota = ctx.settings.user_quota_bytes
    if not quota:
        return
    used = usage_bytes(session, user_id)
    if used + incoming > quota:
        raise PayloadTooLarge(
            f"Storage quota exceeded: {used} of {quota} bytes used, this upload needs {incoming} more"
        )


def _touch_rom_user(session: Session, user_id: int, rom_id: int) -> None:
    """``rom_user.last_played = now`` (row created if missing); runs under the asset lock."""
    now = utcnow()
    done = session.execute(_TOUCH_ROM_USER, {"b_rom_id": rom_id, "b_user_id": user_id, "now": now})
    if not done.rowcount:  # type: ignore[attr-defined]
        session.add(RomUser(rom_id=rom_id, user_id=user_id, last_played=now))


# --- device sync records ---------------------------------------------------------------------------
def upsert_sync(session: Session, device: Device, save: Save, synced_at: dt.datetime | None = None) -> DeviceSaveSync:
    """Record that ``device`` holds ``save`` as of ``synced_at`` (default now); re-tracks it."""
    when = synced_at or utcnow()
    row = session.get(DeviceSaveSync, (device.id, save.id))
    if row is None:
        row = DeviceSaveSync(device_id=device.id, save_id=save.id, last_synced_at=when, is_untracked=False)
        session.add(row)
    else:
        row.last_synced_at = when
        row.is_untracked = False
    return row


def _get_sync(session: Session, device_id: str, save_id: int) -> DeviceSaveSync | None:
    return session.get(DeviceSaveSync, (device_id, save_id))


# --- screenshots -----------------------------------------------------------------------------------
def _screenshot_name(asset_file_name: str, upload: Upload) -> str:
    """Named after the save/state's stem (so it links even after a slot tag), keeping the
    screenshot's own extension: ``pokemon [2026-..].srm`` + ``shot.png`` -> ``pokemon [2026-..].png``."""
    _stem, ext = os.path.splitext(upload.filename)
    ext = ext if ext and len(ext) <= 16 else ".png"
    stem = naming.split_extension(asset_file_name)[0] or os.path.splitext(asset_file_name)[0]
    return sanitize_filename(f"{stem}{ext}", what="screenshot filename")


def _store_screenshot(
    session: Session, ops: _FileOps, user_id: int, rom: RomInfo, asset: AssetMixin, upload: Upload
) -> Screenshot:
    folder = asset_dir("screenshots", user_id, rom.slug, rom.id)
    name = _screenshot_name(asset.file_name, upload)
    shot = session.scalar(
        sa.select(Screenshot).where(
            Screenshot.user_id == user_id,
            Screenshot.rom_id == rom.id,
            Screenshot.file_path == folder,
            Screenshot.file_name == name,
        )
    )
    if shot is None:
        shot = Screenshot(
            rom_id=rom.id,
            user_id=user_id,
            file_name=name,
            file_path=folder,
            is_gallery=False,
            is_public=asset.is_public,
        )
        session.add(shot)
    shot.file_size_bytes = upload.size
    shot.updated_at = utcnow()
    session.flush()
    ops.place_replace(upload.key, f"{folder}/{name}")
    return shot


def _delete_asset_files(session: Session, ops: _FileOps, asset: AssetMixin, model: type[AssetMixin]) -> None:
    """Delete the row, its file (unless another row of the same table points at it) and its
    linked screenshot (row and file)."""
    shot = linked_screenshots(session, [asset]).get(asset.id)
    key = asset.full_path
    session.delete(asset)
    session.flush()
    others = session.scalar(
        sa.select(sa.func.count())
        .select_from(model)
        .where(model.file_path == asset.file_path, model.file_name == asset.file_name)
    )
    if not others:
        ops.remove(key)
    if shot is not None:
        session.delete(shot)
        ops.remove(shot.full_path)


# --- saves -----------------------------------------------------------------------------------------
@dataclass
class StoredSave:
    save: Save
    device: Device | None
    deduplicated: bool = False
    removed_ids: list[int] = field(default_factory=list)
    schema: SaveSchema | None = None  # with ``with_schema=True``: the response, as committed


def clamp_autocleanup(ctx: AppContext, limit: int | None) -> int:
    return max(1, min(DEFAULT_AUTOCLEANUP_LIMIT if limit is None else limit, ctx.settings.max_autocleanup_limit))


def store_save(
    ctx: AppContext,
    *,
    user_id: int,
    rom_id: int,
    upload: Upload,
    emulator: str | None = None,
    slot: str | None = None,
    device_id: str | None = None,
    overwrite: bool = False,
    autocleanup: bool = False,
    autocleanup_limit: int | None = DEFAULT_AUTOCLEANUP_LIMIT,
    screenshot: Upload | None = None,
    keep_name: bool = False,
    with_schema: bool = False,
) -> StoredSave:
    """Store a staged save (``POST /api/saves``); consumes ``upload`` and ``screenshot``.

    * 404 for an unknown ROM or device (not the user's), 400 for an empty upload or bad names.
    * With a ``device_id`` and without ``overwrite``: 409 when the device is behind (RomM's rules,
      notes §2.3: the newest save of the slot, or the same-name slotless row).
    * ``slot``: the name gets the UTC tag (made unique within the second); identical content
      already in the slot returns that row (``deduplicated``), unless ``overwrite``; with
      ``autocleanup`` only the newest ``autocleanup_limit`` (1..max) saves of the slot stay,
      the rest are deleted with their screenshots.
    * Without ``slot``: the same name updates the existing slotless row (file replaced).
    * 413 when the user's quota would be exceeded. The device's sync record and last-seen, and
      ``rom_user.last_played``, are updated.
    """
    try:
        if upload.size == 0:
            raise BadRequest("Save file is empty")
        name = clean_name(upload.filename, "save")
        if screenshot is not None:
            clean_name(screenshot.filename, "screenshot")
            if screenshot.size == 0:
                raise BadRequest("Screenshot file is empty")
        limit = clamp_autocleanup(ctx, autocleanup_limit)
        hash_ = content_hash(ctx.storages.assets, upload.key, upload.md5)
        with _asset_lock(ctx, user_id, rom_id), _writing(ctx, upload, screenshot) as (s, ops):
            rom = check_rom(s, rom_id, user_id)
            device = get_owned_device(s, user_id, device_id) if device_id else None
            folder = asset_dir("saves", user_id, rom.fs_slug, rom.id, emulator)
            result = _store_save_locked(
                ctx,
                s,
                ops,
                user_id,
                rom,
                upload,
                name,
                folder,
                emulator,
                slot,
                device,
                overwrite,
                hash_,
                screenshot,
                keep_name,
            )
            if slot is not None and autocleanup and not result.deduplicated:
                result.removed_ids = _autocleanup(s, ops, user_id, rom.id, slot, limit)
            _touch_rom_user(s, user_id, rom.id)
            if with_schema:  # rendered in this transaction: no second session for the response
                s.flush()
                result.schema = save_schemas(s, [result.save], result.device)[0]
        return result
    finally:
        discard(ctx, upload, screenshot)


def _store_save_locked(
    ctx: AppContext,
    s: Session,
    ops: _FileOps,
    user_id: int,
    rom: RomInfo,
    upload: Upload,
    name: str,
    folder: str,
    emulator: str | None,
    slot: str | None,
    device: Device | None,
    overwrite: bool,
    hash_: str | None,
    screenshot: Upload | None,
    keep_name: bool = False,
) -> StoredSave:
    existing: Save | None = None
    if slot is None:
        existing = s.scalar(
            sa.select(Save)
            .where(Save.user_id == user_id, Save.rom_id == rom.id, Save.file_name == name, Save.slot.is_(None))
            .order_by(Save.id)
            .limit(1)
        )
    # --- 409 ---
    if device is not None and not overwrite:
        if slot is not None:
            latest = s.scalar(
                sa.select(Save)
                .where(Save.user_id == user_id, Save.rom_id == rom.id, Save.slot == slot)
                .order_by(Save.updated_at.desc(), Save.id.desc())
                .limit(1)
            )
            if latest is not None:
                sync = _get_sync(s, device.id, latest.id)
                if sync is None or to_utc(sync.last_synced_at) < to_utc(latest.updated_at):
                    raise Conflict(SLOT_CONFLICT)
        elif existing is not None:
            sync = _get_sync(s, device.id, existing.id)
            if sync is not None and to_utc(sync.last_synced_at) < to_utc(existing.updated_at):
                raise Conflict(SAVE_CONFLICT)
    # --- dedup: the same bytes already in this slot ---
    if slot is not None and hash_ is not None and not overwrite:
        same_id = s.scalar(_SAME_CONTENT_IN_SLOT, {"user_id": user_id, "rom_id": rom.id, "slot": slot, "hash": hash_})
        same = s.get(Save, same_id) if same_id is not None else None  # (rare: load the row only then)
        if same is not None:
            if not ctx.storages.assets.exists(same.full_path):
                # The row's file went missing: these are its bytes (same hash), put them back.
                ops.place_new(upload.key, same.full_path)
            if device is not None:
                upsert_sync(s, device, same, same.updated_at)
                touch_last_seen(s, device)
            if screenshot is not None:
                check_quota(ctx, s, user_id, screenshot.size)
                _store_screenshot(s, ops, user_id, rom, same, screenshot)
            return StoredSave(same, device, deduplicated=True)
    if slot is None and existing is None:
        # A slotless name that is a (slotted) row's file on disk: refresh that row in place.
        existing = s.scalar(
            sa.select(Save)
            .where(Save.user_id == user_id, Save.rom_id == rom.id, Save.file_path == folder, Save.file_name == name)
            .order_by(Save.id)
            .limit(1)
        )
    replaced = existing.file_size_bytes if slot is None and existing is not None else 0
    check_quota(ctx, s, user_id, max(0, upload.size - replaced) + (screenshot.size if screenshot else 0))
    now = utcnow()
    if slot is not None:
        save = _new_slot_save(s, ops, user_id, rom, upload, name, folder, emulator, slot, device, keep_name)
    else:
        if existing is None:
            save = Save(
                rom_id=rom.id,
                user_id=user_id,
                file_name=name,
                file_path=folder,
                emulator=emulator,
                slot=None,
                origin_device_id=device.id if device else None,
            )
            s.add(save)
            save.file_size_bytes = upload.size
            save.content_hash = hash_
            s.flush()
            ops.place_replace(upload.key, save.full_path)
        else:
            save = existing
            old_key = save.full_path
            save.file_path = folder
            save.emulator = emulator
            save.file_size_bytes = upload.size
            save.content_hash = hash_
            save.updated_at = now
            s.flush()
            ops.place_replace(upload.key, save.full_path)
            if old_key != save.full_path:
                old_path, old_name = old_key.rsplit("/", 1)
                refs = s.scalar(
                    sa.select(sa.func.count())
                    .select_from(Save)
                    .where(Save.id != save.id, Save.file_path == old_path, Save.file_name == old_name)
                )
                if not refs:
                    ops.remove(old_key)
    save.file_size_bytes = upload.size
    save.content_hash = hash_
    s.flush()
    if device is not None:
        upsert_sync(s, device, save, save.updated_at)
        touch_last_seen(s, device)
    if screenshot is not None:
        _store_screenshot(s, ops, user_id, rom, save, screenshot)
    return StoredSave(save, device)


def _new_slot_save(
    s: Session,
    ops: _FileOps,
    user_id: int,
    rom: RomInfo,
    upload: Upload,
    name: str,
    folder: str,
    emulator: str | None,
    slot: str,
    device: Device | None,
    keep_name: bool = False,
) -> Save:
    """A new row and file for a slot upload under the first free ``name [tag] (n).ext``
    (``name (n).ext`` with ``keep_name``)."""
    tagged = name if keep_name else apply_datetime_tag(name)
    # Every candidate (``tagged`` and ``stem (n).ext``) starts with the stem: one query finds the
    # names already taken in the folder, instead of one query per candidate (uploads in the same
    # second to a slot would otherwise cost a query each). LIKE may match more (SQLite's is
    # case-insensitive); only exact names count.
    stem = os.path.splitext(tagged)[0]
    taken = set(
        s.scalars(
            _NAMES_WITH_PREFIX, {"user_id": user_id, "rom_id": rom.id, "folder": folder, "prefix": _like_prefix(stem)}
        )
    )
    for n in range(1, 10_000):
        candidate = _numbered(tagged, n)
        if len(candidate) > 450:
            break
        if candidate in taken:
            continue
        save = Save(
            rom_id=rom.id,
            user_id=user_id,
            file_name=candidate,
            file_path=folder,
            emulator=emulator,
            slot=slot,
            origin_device_id=device.id if device else None,
            file_size_bytes=upload.size,
        )
        try:
            ops.place_new(upload.key, save.full_path)
        except FileExists:
            continue  # a file without a row (left by hand): never overwrite it
        s.add(save)
        return save
    raise Conflict("Could not find a free file name for this save")


def _autocleanup(s: Session, ops: _FileOps, user_id: int, rom_id: int, slot: str, limit: int) -> list[int]:
    """Keep the newest ``limit`` saves of the slot; delete the rest with their screenshots."""
    s.flush()
    rows = s.scalars(
        sa.select(Save)
        .where(Save.user_id == user_id, Save.rom_id == rom_id, Save.slot == slot)
        .order_by(Save.updated_at.desc(), Save.id.desc())
    ).all()
    removed = []
    for old in rows[limit:]:
        removed.append(old.id)
        _delete_asset_files(s, ops, old, Save)
    return removed


def store_save_stream(
    ctx: AppContext,
    *,
    user_id: int,
    rom_id: int,
    filename: str,
    source: bytes | BinaryIO | Iterable[bytes],
    **options: object,
) -> StoredSave:
    """:func:`stage` + :func:`store_save` in one call (CLI import, benchmarks). ``options`` are
    :func:`store_save`'s keyword arguments (``slot``, ``emulator``, ``device_id``, ...)."""
    upload = stage(ctx, source, filename, label="Save")
    return store_save(ctx, user_id=user_id, rom_id=rom_id, upload=upload, **options)  # type: ignore[arg-type]


def replace_save(
    ctx: AppContext,
    *,
    user_id: int,
    save_id: int,
    upload: Upload | None = None,
    screenshot: Upload | None = None,
    device_id: str | None = None,
    overwrite: bool = False,
) -> StoredSave:
    """``PUT /api/saves/{id}``: new content in place (same name, no tag), and/or a new screenshot.
    Consumes the uploads.

    Unlike RomM (which never answers 409 here), new content from a device whose sync record of
    this save is older than the save is a 409 ``"Save has been updated since your last sync"``
    (the slotless rule of POST; ``overwrite`` bypasses it)."""
    try:
        if upload is not None and upload.size == 0:
            raise BadRequest("Save file is empty")
        if screenshot is not None:
            clean_name(screenshot.filename, "screenshot")
        with ctx.db.read() as r:
            rom_id = get_owned_save(r, user_id, save_id).rom_id
        hash_ = content_hash(ctx.storages.assets, upload.key, upload.md5) if upload else None
        with _asset_lock(ctx, user_id, rom_id), _writing(ctx, upload, screenshot) as (s, ops):
            device = get_owned_device(s, user_id, device_id) if device_id else None
            save = get_owned_save(s, user_id, save_id)
            rom = rom_info(s, save.rom_id)
            if device is not None and upload is not None and not overwrite:
                sync = _get_sync(s, device.id, save.id)
                if sync is not None and to_utc(sync.last_synced_at) < to_utc(save.updated_at):
                    raise Conflict(SAVE_CONFLICT)
            incoming = (upload.size - save.file_size_bytes if upload else 0) + (screenshot.size if screenshot else 0)
            check_quota(ctx, s, user_id, max(0, incoming))
            if upload is not None:
                save.file_size_bytes = upload.size
                save.content_hash = hash_
                save.updated_at = utcnow()
                s.flush()
                ops.place_replace(upload.key, save.full_path)
            if screenshot is not None:
                _store_screenshot(s, ops, user_id, rom, save, screenshot)
            if device is not None:
                upsert_sync(s, device, save, save.updated_at)
                touch_last_seen(s, device)
            _touch_rom_user(s, user_id, rom.id)
        return StoredSave(save, device)
    finally:
        discard(ctx, upload, screenshot)


def delete_saves(ctx: AppContext, user_id: int, ids: Sequence[int]) -> list[int]:
    """Delete the user's saves (rows, files, linked screenshots). Any id that is missing or not
    the user's is a 404 and nothing is deleted (checked before anything is)."""
    return _delete(ctx, user_id, ids, Save, save_not_found, "No saves were provided")


def delete_states(ctx: AppContext, user_id: int, ids: Sequence[int]) -> list[int]:
    """As :func:`delete_saves`, for states."""
    return _delete(ctx, user_id, ids, State, state_not_found, "No states were provided")


def _delete(
    ctx: AppContext,
    user_id: int,
    ids: Sequence[int],
    model: type[Save] | type[State],
    not_found: object,
    empty: str,
) -> list[int]:
    if not ids:
        raise BadRequest(empty)
    with ctx.db.read() as r:
        rows = {
            a.id: a.rom_id for a in r.scalars(sa.select(model).where(model.id.in_(set(ids)), model.user_id == user_id))
        }
    for i in ids:
        if i not in rows:
            raise not_found(i)  # type: ignore[operator]
    # Every id was checked above, so a foreign or unknown id deletes nothing. Each ROM's assets
    # go in one transaction under that ROM's lock (one lock at a time: no lock-order deadlocks).
    by_rom: dict[int, list[int]] = {}
    for i in dict.fromkeys(ids):
        by_rom.setdefault(rows[i], []).append(i)
    for rom_id, group in sorted(by_rom.items()):
        with _asset_lock(ctx, user_id, rom_id), _writing(ctx) as (s, ops):
            for i in group:
                asset = s.get(model, i)
                if asset is None or asset.user_id != user_id:
                    continue  # deleted meanwhile by another request
                _delete_asset_files(s, ops, asset, model)
    return list(ids)


def set_visibility(
    ctx: AppContext, user_id: int, model: type[Save] | type[State], asset_id: int, is_public: bool
) -> Save | State:
    """Share or unshare a save/state and its linked screenshot (owner only, else 404)."""
    with ctx.db.transaction() as s:
        asset = s.get(model, asset_id)
        if asset is None or asset.user_id != user_id:
            raise save_not_found(asset_id) if model is Save else state_not_found(asset_id)
        asset.is_public = is_public
        shot = linked_screenshots(s, [asset]).get(asset.id)
        if shot is not None:
            shot.is_public = is_public
    return asset


def delete_screenshot(ctx: AppContext, user_id: int, screenshot_id: int) -> None:
    """``DELETE /api/screenshots/{id}``: the owner's screenshot row and file (else 404)."""
    with ctx.db.read() as r:
        shot = r.get(Screenshot, screenshot_id)
        if shot is None or shot.user_id != user_id:
            raise screenshot_not_found(screenshot_id)
        rom_id = shot.rom_id
    with _asset_lock(ctx, user_id, rom_id), _writing(ctx) as (s, ops):
        shot = s.get(Screenshot, screenshot_id)
        if shot is None or shot.user_id != user_id:
            raise screenshot_not_found(screenshot_id)
        s.delete(shot)
        ops.remove(shot.full_path)


def _retrying(fn: Callable[[Session], T], ctx: AppContext) -> T:
    """Run ``fn`` in a write transaction; once more if a concurrent request inserted the same
    sync record first (unique violation)."""
    for attempt in (1, 2):
        try:
            with ctx.db.transaction() as s:
                return fn(s)
        except IntegrityError as e:
            if attempt == 2 or not is_unique_violation(e):
                raise
    raise AssertionError("unreachable")


def mark_downloaded(ctx: AppContext, user_id: int, save_id: int, device_id: str) -> tuple[Save, Device]:
    """``POST /saves/{id}/downloaded``: the device now holds the save as of its ``updated_at``."""

    def run(s: Session) -> tuple[Save, Device]:
        save = get_owned_save(s, user_id, save_id)
        device = get_owned_device(s, user_id, device_id)
        upsert_sync(s, device, save, save.updated_at)
        touch_last_seen(s, device)
        return save, device

    return _retrying(run, ctx)


def set_untracked(ctx: AppContext, user_id: int, save_id: int, device_id: str, untracked: bool) -> tuple[Save, Device]:
    """``/untrack`` (creates a record if none, ``is_untracked=true``) and ``/track`` (clears the
    flag; no record is created when there is none)."""

    def run(s: Session) -> tuple[Save, Device]:
        save = get_owned_save(s, user_id, save_id)
        device = get_owned_device(s, user_id, device_id)
        row = _get_sync(s, device.id, save.id)
        if row is not None:
            row.is_untracked = untracked
        elif untracked:
            s.add(DeviceSaveSync(device_id=device.id, save_id=save.id, last_synced_at=utcnow(), is_untracked=True))
        return save, device

    return _retrying(run, ctx)


def record_download(ctx: AppContext, user_id: int, save: Save, device: Device) -> None:
    """Optimistic sync on ``/content`` by the owner with a device: the device holds the version
    that was served (``save.updated_at`` as read before serving), even if a newer one landed since."""

    def run(s: Session) -> None:
        fresh = s.get(Save, save.id)
        dev = s.get(Device, device.id)
        if fresh is None or dev is None or fresh.user_id != user_id:
            return
        upsert_sync(s, dev, fresh, save.updated_at)
        touch_last_seen(s, dev)

    _retrying(run, ctx)


# --- states ----------------------------------------------------------------------------------------
@dataclass
class StoredState:
    state: State


def store_state(
    ctx: AppContext,
    *,
    user_id: int,
    rom_id: int,
    upload: Upload,
    emulator: str | None = None,
    screenshot: Upload | None = None,
) -> StoredState:
    """Store a staged state (``POST /api/states``); consumes the uploads. A ROM the user hid is
    a 404 and nothing is written. The same name for the same ROM updates that row (its file
    moves if the emulator changed)."""
    try:
        if upload.size == 0:
            raise BadRequest("State file is empty")
        name = clean_name(upload.filename, "state")
        if screenshot is not None:
            clean_name(screenshot.filename, "screenshot")
            if screenshot.size == 0:
                raise BadRequest("Screenshot file is empty")
        with _asset_lock(ctx, user_id, rom_id), _writing(ctx, upload, screenshot) as (s, ops):
            rom = check_rom(s, rom_id, user_id, visible=True)
            folder = asset_dir("states", user_id, rom.fs_slug, rom.id, emulator)
            state = s.scalar(
                sa.select(State)
                .where(State.user_id == user_id, State.rom_id == rom.id, State.file_name == name)
                .order_by(State.id)
                .limit(1)
            )
            replaced = state.file_size_bytes if state is not None else 0
            check_quota(ctx, s, user_id, max(0, upload.size - replaced) + (screenshot.size if screenshot else 0))
            if state is None:
                state = State(rom_id=rom.id, user_id=user_id, file_name=name, file_path=folder, emulator=emulator)
                s.add(state)
                old_key = None
            else:
                old_key = state.full_path
                state.file_path = folder
                state.emulator = emulator
                state.updated_at = utcnow()
            state.file_size_bytes = upload.size
            s.flush()
            ops.place_replace(upload.key, state.full_path)
            if old_key is not None and old_key != state.full_path:
                ops.remove(old_key)
            if screenshot is not None:
                _store_screenshot(s, ops, user_id, rom, state, screenshot)
            _touch_rom_user(s, user_id, rom.id)
        return StoredState(state)
    finally:
        discard(ctx, upload, screenshot)


def store_state_stream(
    ctx: AppContext,
    *,
    user_id: int,
    rom_id: int,
    filename: str,
    source: bytes | BinaryIO | Iterable[bytes],
    **options: object,
) -> StoredState:
    """:func:`stage` + :func:`store_state` (CLI import)."""
    upload = stage(ctx, source, filename, label="State")
    return store_state(ctx, user_id=user_id, rom_id=rom_id, upload=upload, **options)  # type: ignore[arg-type]


def replace_state(
    ctx: AppContext, *, user_id: int, state_id: int, upload: Upload | None = None, screenshot: Upload | None = None
) -> StoredState:
    """``PUT /api/states/{id}``: new content in place and/or a new screenshot."""
    try:
        if upload is not None and upload.size == 0:
            raise BadRequest("State file is empty")
        if screenshot is not None:
            clean_name(screenshot.filename, "screenshot")
        with ctx.db.read() as r:
            rom_id = get_owned_state(r, user_id, state_id).rom_id
        with _asset_lock(ctx, user_id, rom_id), _writing(ctx, upload, screenshot) as (s, ops):
            state = get_owned_state(s, user_id, state_id)
            rom = rom_info(s, state.rom_id)
            incoming = (upload.size - state.file_size_bytes if upload else 0) + (screenshot.size if screenshot else 0)
            check_quota(ctx, s, user_id, max(0, incoming))
            if upload is not None:
                state.file_size_bytes = upload.size
                state.updated_at = utcnow()
                s.flush()
                ops.place_replace(upload.key, state.full_path)
            if screenshot is not None:
                _store_screenshot(s, ops, user_id, rom, state, screenshot)
            _touch_rom_user(s, user_id, rom.id)
        return StoredState(state)
    finally:
        discard(ctx, upload, screenshot)


# --- reading ---------------------------------------------------------------------------------------
def list_saves(
    session: Session,
    user_id: int,
    *,
    rom_id: int | None = None,
    platform_id: int | None = None,
    slot: str | None = None,
) -> list[Save]:
    """The user's saves, by id (``rom_id=0`` counts as absent, as in RomM)."""
    q = sa.select(Save).where(Save.user_id == user_id)
    if rom_id:
        q = q.where(Save.rom_id == rom_id)
    if platform_id:
        q = q.join(Rom, Rom.id == Save.rom_id).where(Rom.platform_id == platform_id)
    if slot is not None:
        q = q.where(Save.slot == slot)
    return list(session.scalars(q.order_by(Save.id)))


def list_states(
    session: Session, user_id: int, *, rom_id: int | None = None, platform_id: int | None = None
) -> list[State]:
    q = sa.select(State).where(State.user_id == user_id)
    if rom_id:
        q = q.where(State.rom_id == rom_id)
    if platform_id:
        q = q.join(Rom, Rom.id == State.rom_id).where(Rom.platform_id == platform_id)
    return list(session.scalars(q.order_by(State.id)))


def readable_asset(
    session: Session, model: type[Save] | type[State] | type[Screenshot], asset_id: int, user_id: int
) -> AssetMixin:
    """The save/state/screenshot ``/content`` may serve to ``user_id``: own, or public on a ROM
    the caller has not hidden; anything else 404 with RomM's detail."""
    nf = {Save: save_not_found, State: state_not_found}.get(model, screenshot_not_found)  # type: ignore[call-overload]
    asset = session.get(model, asset_id)
    if asset is None or (asset.user_id != user_id and not asset.is_public):
        raise nf(asset_id)
    if session.get(Rom, asset.rom_id) is None or is_hidden_for(session, asset.rom_id, user_id):
        raise nf(asset_id)
    return asset


def cleanup_stale_files(ctx: AppContext, older_than: float = 3600.0) -> int:
    """Remove staged uploads and trash older than ``older_than`` seconds (left by a crash)."""
    storage = ctx.storages.assets
    cutoff = time.time() - older_than
    removed = 0
    for folder in (INCOMING, TRASH):
        for entry in list(storage.list(folder)):
            if not entry.is_dir and entry.mtime < cutoff:
                storage.delete(entry.key)
                removed += 1
    return removed


jobs.register_housekeeping(cleanup_stale_files)
