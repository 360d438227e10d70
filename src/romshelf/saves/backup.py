"""Export a user's saves and states (with their screenshots) to a folder, and import them back.

The export folder (``romshelf saves export USER DIR``)::

    DIR/manifest.json                                         written last, atomically
    DIR/saves/<platform fs_slug>/<rom fs_name>/<emulator or _>/<file_name>
    DIR/states/<platform fs_slug>/<rom fs_name>/<emulator or _>/<file_name>
    DIR/screenshots/<platform fs_slug>/<rom fs_name>/<file_name>

Every file is streamed (bounded memory) to ``<name>.part`` and renamed when complete; the
manifest comes last (temp file + rename), so a folder without ``manifest.json`` is a half
export. Each manifest item names its ROM by what survives a move to another server (platform
slugs, ``fs_name``, the ROM's md5/sha1/crc) as well as by id.

Import (``romshelf saves import USER DIR``) checks the manifest and each file's md5, maps the
item to a ROM of this server (same id with a matching hash or name, else by hash, else by
platform + ``fs_name``), and stores it through the saves service (atomic, locked, quota-checked)
under its original name, slot, emulator and visibility, with its screenshot. An item whose
content is already there is skipped, so an import can be retried; an existing slotless save or
state of the same name with other content is left alone (reported) unless ``replace``.
Every write goes through :mod:`romshelf.saves.service`; nothing here touches the asset store
directly except to read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf import __version__
from romshelf.accounts.models import User
from romshelf.core.context import AppContext
from romshelf.core.errors import AppError
from romshelf.core.paths import UnsafePath, sanitize_filename
from romshelf.core.storage import CHUNK, FileMissing
from romshelf.core.timeutil import utcnow
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom
from romshelf.saves import service
from romshelf.saves.models import AssetMixin, Save, State
from romshelf.saves.views import linked_screenshots

MANIFEST = "manifest.json"
FORMAT = "romshelf-saves-export"
FORMAT_VERSION = 1
KINDS = ("save", "state")


class BackupError(Exception):
    """A problem with the whole export or import (unknown user, bad folder, bad manifest)."""


Progress = Callable[[str, int], None]  # (what, bytes) after each file


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _md5_file(path: Path) -> tuple[str, int]:
    h = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as fh:
        while data := fh.read(CHUNK):
            h.update(data)
            size += len(data)
    return h.hexdigest(), size


def _user(session: Session, username: str) -> User:
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise BackupError(f"no user named {username}")
    return user


def _part(value: str | None, fallback: str) -> str:
    """A folder name for the export tree (never empty, never path-like)."""
    if not value:
        return fallback
    try:
        return sanitize_filename(value, what="folder")
    except UnsafePath:
        return fallback


# --- export ----------------------------------------------------------------------------------------
@dataclass
class ExportResult:
    saves: int = 0
    states: int = 0
    screenshots: int = 0
    bytes: int = 0
    manifest: Path | None = None
    unreadable: list[str] = field(default_factory=list)  # stored files that could not be read


def _copy_out(ctx: AppContext, key: str, dest: Path) -> tuple[str, int]:
    """Stream the stored file ``key`` to ``dest`` (via ``dest.part``); its md5 and size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with ctx.storages.assets.open(key) as src, tmp.open("wb") as out:
            while data := src.read(CHUNK):
                out.write(data)
                h.update(data)
                size += len(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return h.hexdigest(), size


def _unique(path: PurePosixPath, taken: set[str]) -> PurePosixPath:
    n = 1
    candidate = path
    while str(candidate) in taken:
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    taken.add(str(candidate))
    return candidate


def export_saves(
    ctx: AppContext,
    username: str,
    dest: Path,
    *,
    rom_ids: list[int] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    total: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write every save and state of ``username`` (optionally only of ``rom_ids``) with their
    screenshots into ``dest`` plus ``manifest.json``. ``dest`` must be empty unless ``force``."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} is not a folder")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise BackupError(f"{dest} is not empty (use --force to write into it anyway)")
    with ctx.db.read() as s:
        user = _user(s, username)
        assets: list[tuple[str, AssetMixin]] = [("save", a) for a in service.list_saves(s, user.id)]
        assets += [("state", a) for a in service.list_states(s, user.id)]
        if rom_ids:
            wanted = set(rom_ids)
            assets = [(k, a) for k, a in assets if a.rom_id in wanted]
        shots = {
            "save": linked_screenshots(s, [a for k, a in assets if k == "save"]),
            "state": linked_screenshots(s, [a for k, a in assets if k == "state"]),
        }
        roms: dict[int, tuple[Rom, Platform]] = {}
        ids = {a.rom_id for _k, a in assets}
        if ids:
            for rom, platform in s.execute(
                sa.select(Rom, Platform).join(Platform, Platform.id == Rom.platform_id).where(Rom.id.in_(ids))
            ):
                roms[rom.id] = (rom, platform)
        s.expunge_all()
    if total is not None:
        total(
            sum(a.file_size_bytes or 0 for _k, a in assets)
            + sum(sh.file_size_bytes or 0 for d in shots.values() for sh in d.values())
        )
    dest.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    taken: set[str] = set()
    shot_done: dict[int, dict[str, Any]] = {}
    items: list[dict[str, Any]] = []
    for kind, asset in assets:
        rom, platform = roms[asset.rom_id]
        rom_dir = PurePosixPath(_part(platform.fs_slug, "_"), _part(rom.fs_name, str(rom.id)))
        emulator = getattr(asset, "emulator", None)
        rel = _unique(PurePosixPath(f"{kind}s") / rom_dir / _part(emulator, "_") / asset.file_name, taken)
        try:
            md5, size = _copy_out(ctx, asset.full_path, dest / rel)
        except (FileMissing, OSError) as e:
            result.unreadable.append(f"{kind} {asset.id} ({asset.full_path}): {getattr(e, 'detail', None) or e}")
            continue
        result.bytes += size
        if kind == "save":
            result.saves += 1
        else:
            result.states += 1
        if progress is not None:
            progress(str(rel), size)
        item: dict[str, Any] = {
            "kind": kind,
            "file": str(rel),
            "file_name": asset.file_name,
            "rom_id": rom.id,
            "rom": {
                "platform_fs_slug": platform.fs_slug,
                "platform_slug": platform.slug,
                "fs_name": rom.fs_name,
                "md5": rom.md5_hash or None,
                "sha1": rom.sha1_hash or None,
                "crc": rom.crc_hash or None,
            },
            "emulator": emulator,
            "slot": getattr(asset, "slot", None),
            "is_public": bool(asset.is_public),
            "content_hash": getattr(asset, "content_hash", None),
            "md5": md5,
            "size": size,
            "created_at": _iso(asset.created_at),
            "updated_at": _iso(asset.updated_at),
            "screenshot": None,
        }
        shot = shots[kind].get(asset.id)
        if shot is not None:
            if shot.id not in shot_done:
                srel = _unique(PurePosixPath("screenshots") / rom_dir / shot.file_name, taken)
                try:
                    smd5, ssize = _copy_out(ctx, shot.full_path, dest / srel)
                except (FileMissing, OSError) as e:
                    why = getattr(e, "detail", None) or e
                    result.unreadable.append(f"screenshot {shot.id} ({shot.full_path}): {why}")
                    items.append(item)
                    continue
                result.bytes += ssize
                result.screenshots += 1
                if progress is not None:
                    progress(str(srel), ssize)
                shot_done[shot.id] = {"file": str(srel), "file_name": shot.file_name, "md5": smd5, "size": ssize}
            item["screenshot"] = shot_done[shot.id]
        items.append(item)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "romshelf_version": __version__,
        "exported_at": utcnow().isoformat(),
        "user": username,
        "counts": {"saves": result.saves, "states": result.states, "screenshots": result.screenshots},
        "bytes": result.bytes,
        "unreadable": result.unreadable,
        "items": items,
    }
    path = dest / MANIFEST
    tmp = dest / f".{MANIFEST}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    result.manifest = path
    return result


# --- import ----------------------------------------------------------------------------------------
@dataclass
class ItemReport:
    file: str
    outcome: str  # "stored" | "would store" | "exists" | "kept" | "failed"
    detail: str = ""


@dataclass
class ImportResult:
    stored: int = 0
    exists: int = 0
    kept: int = 0
    failed: int = 0
    bytes: int = 0
    reports: list[ItemReport] = field(default_factory=list)
    rom_cache: dict[str, int | None] = field(default_factory=dict, repr=False)

    def add(self, report: ItemReport) -> None:
        self.reports.append(report)
        if report.outcome in ("stored", "would store"):
            self.stored += 1
        elif report.outcome == "exists":
            self.exists += 1
        elif report.outcome == "kept":
            self.kept += 1
        else:
            self.failed += 1


def read_manifest(src: Path) -> dict[str, Any]:
    """The parsed, checked manifest of an export folder (BackupError with a clear reason)."""
    path = Path(src) / MANIFEST
    if not Path(src).is_dir():
        raise BackupError(f"{src} is not a folder")
    if not path.is_file():
        raise BackupError(f"{path} is missing: not a romshelf saves export, or an unfinished one")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BackupError(f"{path} is corrupt: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{path} is not a romshelf saves export manifest")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BackupError(f"{path} has format version {version!r}; this romshelf reads up to {FORMAT_VERSION}")
    if not isinstance(data.get("items"), list):
        raise BackupError(f"{path} is corrupt: no item list")
    return data


def _safe_file(src: Path, rel: Any) -> Path:
    """``src/rel`` for a relative path inside the export (no absolute paths, no ``..``)."""
    if not isinstance(rel, str) or not rel:
        raise ValueError("no file path")
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("", ".", "..") for part in p.parts) or "\\" in rel:
        raise ValueError(f"unsafe file path {rel!r}")
    return src.joinpath(*p.parts)


def _check_file(src: Path, entry: dict[str, Any]) -> Path:
    path = _safe_file(src, entry.get("file"))
    if not path.is_file():
        raise ValueError(f"file {entry.get('file')} is missing from the export")
    md5, size = _md5_file(path)
    if md5 != entry.get("md5") or (isinstance(entry.get("size"), int) and size != entry["size"]):
        raise ValueError(
            f"file {entry.get('file')} does not match the manifest (md5 {md5}, expected {entry.get('md5')})"
        )
    return path


class _RomMatcher:
    """Maps an exported ROM identity to a ROM of this server (cached per identity)."""

    def __init__(self, session: Session, cache: dict[str, int | None]) -> None:
        self.s = session
        self.cache = cache  # outlives the session: one lookup per ROM identity per import

    def match(self, rom_id: Any, rom: dict[str, Any]) -> int | None:
        key = json.dumps([rom_id, rom], sort_keys=True)
        if key not in self.cache:
            self.cache[key] = self._match(rom_id, rom)
        return self.cache[key]

    def _match(self, rom_id: Any, rom: dict[str, Any]) -> int | None:
        hashes = {col: rom.get(k) for k, col in (("md5", "md5_hash"), ("sha1", "sha1_hash"), ("crc", "crc_hash"))}
        hashes = {col: v for col, v in hashes.items() if isinstance(v, str) and v}
        fs_slug, slug, fs_name = rom.get("platform_fs_slug"), rom.get("platform_slug"), rom.get("fs_name")
        if isinstance(rom_id, int):
            row = self.s.execute(
                sa.select(Rom, Platform).join(Platform, Platform.id == Rom.platform_id).where(Rom.id == rom_id)
            ).first()
            if row is not None:
                r, p = row
                same_hash = any(getattr(r, col) and getattr(r, col) == v for col, v in hashes.items())
                same_name = fs_name and r.fs_name == fs_name and fs_slug and p.fs_slug == fs_slug
                if same_hash or same_name:
                    return r.id
        for col, value in hashes.items():
            ids = self.s.execute(
                sa.select(Rom.id, Platform.fs_slug, Platform.slug)
                .join(Platform, Platform.id == Rom.platform_id)
                .where(getattr(Rom, col) == value)
                .order_by(Rom.id)
            ).all()
            if ids:
                # Prefer the same platform when a hash is shared across platforms.
                for rid, pfs, pslug in ids:
                    if pfs == fs_slug or (slug and pslug == slug):
                        return int(rid)
                return int(ids[0][0])
        if fs_name:
            for column, value in ((Platform.fs_slug, fs_slug), (Platform.slug, slug)):
                if not value:
                    continue
                rid = self.s.scalar(
                    sa.select(Rom.id)
                    .join(Platform, Platform.id == Rom.platform_id)
                    .where(column == value, Rom.fs_name == fs_name)
                    .order_by(Rom.id)
                    .limit(1)
                )
                if rid is not None:
                    return int(rid)
        return None


def _stored_md5(ctx: AppContext, asset: AssetMixin) -> str | None:
    h = hashlib.md5(usedforsecurity=False)
    try:
        with ctx.storages.assets.open(asset.full_path) as fh:
            while data := fh.read(CHUNK):
                h.update(data)
    except Exception:
        return None
    return h.hexdigest()


def _existing(ctx: AppContext, s: Session, user_id: int, rom_id: int, item: dict[str, Any]) -> tuple[str, Any]:
    """``("same", row)`` if the item's content is already there, ``("other", row)`` if a row it
    would replace holds other content, else ``("none", None)``."""
    name = item["file_name"]
    if item["kind"] == "save":
        slot = item.get("slot")
        want = item.get("content_hash") or item["md5"]
        q = sa.select(Save).where(Save.user_id == user_id, Save.rom_id == rom_id)
        if slot is not None:
            # A slot keeps every version: the item is there if a row of the slot has its content
            # under its name (or the ``name (n).ext`` a taken name would have become).
            stem, ext = os.path.splitext(name)
            for row in s.scalars(q.where(Save.slot == slot, Save.content_hash == want).order_by(Save.id)):
                if row.file_name == name or re.fullmatch(re.escape(stem) + r" \(\d+\)" + re.escape(ext), row.file_name):
                    return "same", row
            return "none", None
        row = s.scalar(q.where(Save.slot.is_(None), Save.file_name == name).order_by(Save.id).limit(1))
        if row is None:
            return "none", None
        return ("same", row) if row.content_hash == want else ("other", row)
    row = s.scalar(
        sa.select(State)
        .where(State.user_id == user_id, State.rom_id == rom_id, State.file_name == name)
        .order_by(State.id)
        .limit(1)
    )
    if row is None:
        return "none", None
    return ("same", row) if _stored_md5(ctx, row) == item["md5"] else ("other", row)


def _check_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ValueError("not an object")
    if item.get("kind") not in KINDS:
        raise ValueError(f"unknown kind {item.get('kind')!r}")
    for key in ("file", "file_name", "md5"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise ValueError(f"no {key}")
    if not isinstance(item.get("rom"), dict):
        raise ValueError("no rom")
    shot = item.get("screenshot")
    if shot is not None and not (isinstance(shot, dict) and isinstance(shot.get("md5"), str)):
        raise ValueError("bad screenshot entry")
    return item


def _open(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while data := fh.read(CHUNK):
            yield data


def import_saves(
    ctx: AppContext,
    username: str,
    src: Path,
    *,
    dry_run: bool = False,
    replace: bool = False,
    progress: Callable[[ItemReport], None] | None = None,
) -> ImportResult:
    """Restore an export folder into ``username``'s saves and states (see the module notes)."""
    src = Path(src)
    manifest = read_manifest(src)
    with ctx.db.read() as s:
        user_id = _user(s, username).id
    items = manifest["items"]

    def when(it: Any) -> str:
        return str(it.get("updated_at") or "") if isinstance(it, dict) else ""

    # Oldest first, so the newest save of a slot is still the newest after the restore.
    order = sorted(range(len(items)), key=lambda i: (when(items[i]), i))
    result = ImportResult()
    for i in order:
        raw = items[i]
        label = raw.get("file") if isinstance(raw, dict) and isinstance(raw.get("file"), str) else f"item {i + 1}"
        report = _import_one(ctx, user_id, src, raw, label, dry_run=dry_run, replace=replace, result=result)
        result.add(report)
        if progress is not None:
            progress(report)
    return result


def _import_one(
    ctx: AppContext,
    user_id: int,
    src: Path,
    raw: Any,
    label: str,
    *,
    dry_run: bool,
    replace: bool,
    result: ImportResult,
) -> ItemReport:
    try:
        item = _check_item(raw)
        path = _check_file(src, item)
    except ValueError as e:
        return ItemReport(label, "failed", str(e))
    shot_path: Path | None = None
    shot_problem = ""
    if item.get("screenshot"):
        try:
            shot_path = _check_file(src, item["screenshot"])
        except ValueError as e:
            shot_problem = f"screenshot not restored: {e}"
    with ctx.db.read() as s:
        rom_id = _RomMatcher(s, result.rom_cache).match(item.get("rom_id"), item["rom"])
        if rom_id is None:
            r = item["rom"]
            return ItemReport(
                label, "failed", f"no matching ROM on this server ({r.get('platform_fs_slug')}/{r.get('fs_name')})"
            )
        state, _row = _existing(ctx, s, user_id, rom_id, item)
    if state == "same":
        return ItemReport(label, "exists", f"already there (rom {rom_id})")
    if state == "other" and not replace:
        return ItemReport(label, "kept", f"a different {item['kind']} of that name exists (rom {rom_id}); kept it")
    if dry_run:
        return ItemReport(label, "would store", f"rom {rom_id}" + (f"; {shot_problem}" if shot_problem else ""))
    shot_upload = None
    try:
        if shot_path is not None:
            shot_upload = service.stage(
                ctx, _open(shot_path), item["screenshot"].get("file_name") or shot_path.name, label="Screenshot"
            )
        if item["kind"] == "save":
            stored = service.store_save_stream(
                ctx,
                user_id=user_id,
                rom_id=rom_id,
                filename=item["file_name"],
                source=_open(path),
                emulator=item.get("emulator") or None,
                slot=item.get("slot"),
                overwrite=True,
                keep_name=True,
                screenshot=shot_upload,
            )
            asset: AssetMixin = stored.save
            model: type[Save] | type[State] = Save
        else:
            stored_state = service.store_state_stream(
                ctx,
                user_id=user_id,
                rom_id=rom_id,
                filename=item["file_name"],
                source=_open(path),
                emulator=item.get("emulator") or None,
                screenshot=shot_upload,
            )
            asset = stored_state.state
            model = State
        shot_upload = None  # consumed by the service
        if bool(item.get("is_public")) != bool(asset.is_public):
            service.set_visibility(ctx, user_id, model, asset.id, bool(item.get("is_public")))
    except AppError as e:
        return ItemReport(label, "failed", str(e.detail))
    except OSError as e:
        return ItemReport(label, "failed", f"could not read the export: {e}")
    finally:
        service.discard(ctx, shot_upload)
    result.bytes += int(item.get("size") or 0)
    detail = f"rom {rom_id} as {asset.file_name}"
    if shot_problem:
        return ItemReport(label, "failed", f"stored ({detail}) but {shot_problem}")
    return ItemReport(label, "stored", detail)


__all__ = [
    "MANIFEST",
    "BackupError",
    "ExportResult",
    "ImportResult",
    "ItemReport",
    "export_saves",
    "import_saves",
    "read_manifest",
]
