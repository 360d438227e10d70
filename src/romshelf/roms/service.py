"""ROM rules callable without HTTP: lookups, details, edits, covers, user props, deletion.

Visibility: a ROM the caller has hidden (``rom_user.hidden``) is left out of lists and is a 404
on the read endpoints for that caller (details, by-hash, by-metadata-provider); the caller can
still change its props (to unhide it), and editors can still edit or delete it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.accounts.models import User
from romshelf.collections.models import Collection, CollectionRom, SmartCollection
from romshelf.core.context import AppContext
from romshelf.core.db import is_unique_violation
from romshelf.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from romshelf.core.paths import check_plain_filename, sanitize_filename
from romshelf.core.storage import FileExists, FileMissing, LocalStorage
from romshelf.core.timeutil import utcnow
from romshelf.roms import naming, query, render
from romshelf.roms.derived import date_ms
from romshelf.roms.models import INT_PROVIDER_IDS, METADATA_BLOBS, STR_PROVIDER_IDS, Rom, RomFile, RomUser
from romshelf.saves.views import RomAssets, assets_for_rom

log = logging.getLogger("romshelf.roms")

# raw_<provider>_metadata form field -> (blob column, id column that must be set; None = always)
RAW_METADATA_FIELDS: dict[str, tuple[str, str | None]] = {
    "raw_igdb_metadata": ("igdb_metadata", "igdb_id"),
    "raw_moby_metadata": ("moby_metadata", "moby_id"),
    "raw_ss_metadata": ("ss_metadata", "ss_id"),
    "raw_ra_metadata": ("ra_metadata", "ra_id"),
    "raw_launchbox_metadata": ("launchbox_metadata", "launchbox_id"),
    "raw_hasheous_metadata": ("hasheous_metadata", "hasheous_id"),
    "raw_flashpoint_metadata": ("flashpoint_metadata", "flashpoint_id"),
    "raw_hltb_metadata": ("hltb_metadata", "hltb_id"),
    "raw_gamelist_metadata": ("gamelist_metadata", "gamelist_id"),
    "raw_manual_metadata": ("manual_metadata", None),
}
# provider id column -> its blob (clearing an id clears its blob)
ID_BLOBS = {
    "igdb_id": "igdb_metadata",
    "moby_id": "moby_metadata",
    "ss_id": "ss_metadata",
    "ra_id": "ra_metadata",
    "launchbox_id": "launchbox_metadata",
    "hasheous_id": "hasheous_metadata",
    "flashpoint_id": "flashpoint_metadata",
    "hltb_id": "hltb_metadata",
    "gamelist_id": "gamelist_metadata",
}
# romshelf's own convenience form fields, merged into manual_metadata
MANUAL_LIST_FIELDS = ("genres", "franchises", "companies", "game_modes", "age_ratings")
MANUAL_TEXT_FIELDS = ("player_count", "youtube_video_id")

IMAGE_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
IMAGE_EXTENSIONS = ("png", "jpg", "gif", "webp")


def rom_not_found(rom_id: int) -> NotFound:
    return NotFound(f"Rom with id '{rom_id}' not found")


_HIDDEN = sa.select(RomUser.__table__.c.hidden).where(
    RomUser.__table__.c.rom_id == sa.bindparam("rom_id"), RomUser.__table__.c.user_id == sa.bindparam("uid")
)


def is_hidden_for(session: Session, rom_id: int, user_id: int | None) -> bool:
    if user_id is None:
        return False
    return bool(session.execute(_HIDDEN, {"rom_id": rom_id, "uid": user_id}).scalar_one_or_none())


def get_rom(session: Session, rom_id: int) -> Rom:
    rom = session.get(Rom, rom_id)
    if rom is None:
        raise rom_not_found(rom_id)
    return rom


# --- reading ---------------------------------------------------------------------------------------


def simple_rom(session: Session, rom_id: int, user_id: int | None) -> dict[str, Any]:
    """``SimpleRomSchema`` of a visible ROM (with its files and siblings), or 404."""
    item, _row = _visible_one(session, rom_id, user_id)
    item["screenshot_path"] = None
    return item


def _visible_one(session: Session, rom_id: int, user_id: int | None) -> tuple[dict[str, Any], Any]:
    found = render.load_one(session, rom_id, user_id)
    if found is None or found[1]["ru_hidden"]:
        raise rom_not_found(rom_id)
    return found


def detailed_rom(session: Session, rom_id: int, user_id: int | None) -> dict[str, Any]:
    """``DetailedRomSchema``: the simple fields plus the caller's assets and collections."""
    item, row = _visible_one(session, rom_id, user_id)
    assets = assets_for_rom(session, rom_id, user_id) if row["has_assets"] else RomAssets()
    item["user_saves"] = [a.model_dump(mode="json") for a in assets.user_saves]
    item["user_states"] = [a.model_dump(mode="json") for a in assets.user_states]
    item["all_user_saves"] = [a.model_dump(mode="json") for a in assets.all_user_saves]
    item["all_user_states"] = [a.model_dump(mode="json") for a in assets.all_user_states]
    item["user_screenshots"] = [a.model_dump(mode="json") for a in assets.user_screenshots]
    item["all_user_screenshots"] = [a.model_dump(mode="json") for a in assets.all_user_screenshots]
    item["user_collections"] = user_collections(session, rom_id, user_id)
    item["all_user_notes"] = []
    return item


_coll = Collection.__table__
_coll_rom = CollectionRom.__table__
_smart = SmartCollection.__table__
# Standard collections containing the ROM, then every smart collection the caller may see
# (evaluated below): one round trip.
_USER_COLLECTIONS = sa.union_all(
    sa.select(_coll.c.id, _coll.c.name, sa.literal(False).label("is_smart"))
    .join(_coll_rom, _coll_rom.c.collection_id == _coll.c.id)
    .where(
        _coll_rom.c.rom_id == sa.bindparam("rom_id"),
        sa.or_(_coll.c.user_id == sa.bindparam("uid"), _coll.c.is_public.is_(True)),
    ),
    sa.select(_smart.c.id, _smart.c.name, sa.literal(True).label("is_smart")).where(
        sa.or_(_smart.c.user_id == sa.bindparam("uid"), _smart.c.is_public.is_(True))
    ),
)


def user_collections(session: Session, rom_id: int, user_id: int | None) -> list[dict[str, Any]]:
    """Collections containing the ROM that the caller may see: own or public, standard or smart."""
    params = {"rom_id": rom_id, "uid": user_id if user_id is not None else -1}
    rows = sorted(session.execute(_USER_COLLECTIONS, params).all(), key=lambda r: (bool(r[2]), r[1], r[0]))
    out: list[dict[str, Any]] = []
    for cid, name, is_smart in rows:
        if is_smart and not query.rom_matches(session, query.RomFilters(smart_collection_id=cid), user_id, rom_id):
            continue
        out.append({"id": cid, "name": name, "is_smart": bool(is_smart)})
    return out


def _visible_first(session: Session, ids_query: sa.Select[Any], user_id: int | None) -> int | None:
    sub = ids_query.subquery()
    q = sa.select(sub.c.id).where(sub.c.id.not_in(query.hidden_ids(user_id))).order_by(sub.c.id).limit(1)
    return session.execute(q).scalar_one_or_none()


def find_by_hash(
    session: Session,
    user_id: int | None,
    *,
    crc_hash: str | None = None,
    md5_hash: str | None = None,
    sha1_hash: str | None = None,
    ra_hash: str | None = None,
) -> int:
    """The id of the first visible ROM whose own or whose files' hash equals a given value."""
    given = {
        "crc_hash": crc_hash,
        "md5_hash": md5_hash,
        "sha1_hash": sha1_hash,
        "ra_hash": ra_hash,
    }
    given = {k: v.strip().lower() for k, v in given.items() if v and v.strip()}
    if not given:
        raise BadRequest("At least one metadata hash value must be provided")
    found = session.execute(_hash_statement(tuple(sorted(given))), {**given, "uid": _uid(user_id)}).scalar()
    if found is None:
        raise NotFound("No ROM or file found with given hash values")
    return int(found)


_hash_statements: dict[tuple[str, ...], Any] = {}


def _uid(user_id: int | None) -> int:
    return user_id if user_id is not None else -1


def _hash_statement(columns: tuple[str, ...]) -> Any:
    """Lowest visible ROM id whose own or whose files' hash (any of ``columns``) matches; one
    indexed lookup per column and table. Parameters: one per column, and ``uid``."""
    stmt = _hash_statements.get(columns)
    if stmt is None:
        roms_t, files_t = Rom.__table__, RomFile.__table__
        parts: list[Any] = []
        for col in columns:
            value = sa.bindparam(col)
            parts.append(sa.select(roms_t.c.id.label("id")).where(roms_t.c[col] == value))
            parts.append(sa.select(files_t.c.rom_id.label("id")).where(files_t.c[col] == value))
            if col == "sha1_hash":
                parts.append(sa.select(files_t.c.rom_id.label("id")).where(files_t.c.chd_sha1_hash == value))
            if col != "ra_hash":  # No-Intro's headerless hashes of headed dumps
                headerless = files_t.c[f"headerless_{col}"]
                parts.append(sa.select(files_t.c.rom_id.label("id")).where(headerless == value))
        ids = sa.union(*parts).subquery()
        hidden = sa.select(RomUser.__table__.c.rom_id).where(
            RomUser.__table__.c.user_id == sa.bindparam("uid"), RomUser.__table__.c.hidden.is_(True)
        )
        stmt = sa.select(sa.func.min(ids.c.id)).where(ids.c.id.not_in(hidden))
        _hash_statements[columns] = stmt
    return stmt


def find_by_metadata_ids(session: Session, user_id: int | None, ids: Mapping[str, Any]) -> int:
    given = {k: v for k, v in ids.items() if v is not None and v != ""}
    if not given:
        raise BadRequest("At least one metadata ID must be provided")
    conds = [Rom.__table__.c[k] == v for k, v in given.items()]
    found = _visible_first(session, sa.select(Rom.__table__.c.id).where(sa.or_(*conds)), user_id)
    if found is None:
        raise NotFound("ROM not found with given metadata IDs")
    return found


def rom_file(session: Session, file_id: int, user_id: int | None) -> dict[str, Any]:
    row = (
        session.execute(
            sa.select(RomFile.__table__, Rom.fs_path, Rom.fs_name)
            .join(Rom, Rom.id == RomFile.rom_id)
            .where(RomFile.id == file_id)
        )
        .mappings()
        .first()
    )
    if row is None or is_hidden_for(session, row["rom_id"], user_id):
        raise NotFound("File not found")
    return render.file_dict(row, f"{row['fs_path']}/{row['fs_name']}")


# --- covers ------------------------------------------------------------------------------------------


def image_extension(head: bytes) -> str | None:
    """The file type of an image from its first bytes (PNG, JPEG, GIF, WebP), else None."""
    for magic, ext in IMAGE_TYPES:
        if head.startswith(magic):
            return ext
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def cover_folder(platform_id: int, rom_id: int) -> str:
    return f"roms/{platform_id}/{rom_id}/cover"


def store_cover(resources: LocalStorage, folder: str, data: bytes) -> tuple[str, str]:
    """Write a validated image as ``{folder}/big.<ext>`` and ``small.<ext>``; return their keys.

    romshelf does not resize images: both keys hold the uploaded image (atomic writes). Call
    :func:`remove_cover_files` with ``keep`` once the row points at the new keys.
    """
    ext = image_extension(data[:16])
    if ext is None:
        raise BadRequest("Invalid image file: artwork must be a PNG, JPEG, WebP, or GIF image")
    big, small = f"{folder}/big.{ext}", f"{folder}/small.{ext}"
    resources.write(big, data)
    resources.write(small, data)
    return small, big


def remove_cover_files(resources: LocalStorage, folder: str, keep: str | None = None) -> None:
    """Delete the cover images in ``folder`` (all, or all but those with extension ``keep``)."""
    for ext in IMAGE_EXTENSIONS:
        if ext != keep:
            resources.delete(f"{folder}/big.{ext}")
            resources.delete(f"{folder}/small.{ext}")


def read_limited(source: Any, limit: int) -> bytes:
    """Read a file-like upload fully, refusing more than ``limit`` bytes (413)."""
    data = source.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"Artwork exceeds the maximum allowed size of {limit} bytes")
    return bytes(data)


# --- editing -----------------------------------------------------------------------------------------


def _parse_int_id(name: str, value: str) -> int | None:
    text = value.strip()
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer or empty (got {value!r})") from None


def _parse_json_blob(text: str) -> dict[str, Any] | None:
    """A metadata blob from a form field; None (ignored, as RomM does) if empty or not a JSON object."""
    if not text or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _parse_list_field(name: str, text: str) -> list[str]:
    """A list field: a JSON array of strings, or comma-separated text."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise BadRequest(f"{name} must be a JSON array of strings or comma-separated text") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadRequest(f"{name} must be a JSON array of strings or comma-separated text")
        items = value
    else:
        items = text.split(",")
    out: list[str] = []
    for item in items:
        s = item.strip()
        if s and s not in out:
            out.append(s)
    return out


def _parse_release_date(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    ms = date_ms(text)
    if ms is None:
        raise BadRequest("first_release_date must be a date (YYYY-MM-DD) or epoch milliseconds")
    return ms


def validate_fs_name(value: str) -> str:
    """A new file or folder name for a ROM: a plain name (no path), cleaned like RomM's."""
    check_plain_filename(value.strip(), what="fs_name")
    name = sanitize_filename(value, what="fs_name")
    if name.startswith("."):
        raise BadRequest("Invalid fs_name: a name starting with '.' would be hidden from scans")
    return name


@dataclass
class RomUpdate:
    """The parsed, validated form of ``PUT /api/roms/{id}`` (nothing applied yet)."""

    fields: dict[str, str] = field(default_factory=dict)
    artwork: bytes | None = None
    remove_cover: bool = False
    unmatch_metadata: bool = False


def update_rom(ctx: AppContext, session: Session, rom_id: int, upd: RomUpdate) -> None:
    """Apply an edit; renames on disk and cover writes are undone if the database write fails."""
    rom = get_rom(session, rom_id)
    resources = ctx.storages.resources
    folder = cover_folder(rom.platform_id, rom.id)

    if upd.unmatch_metadata:
        for col in (*INT_PROVIDER_IDS, *STR_PROVIDER_IDS):
            setattr(rom, col, None)
        for blob in METADATA_BLOBS:
            setattr(rom, blob, {})
        rom.name = rom.fs_name
        rom.name_sort_key = naming.name_sort_key(rom.name)
        rom.summary = ""
        rom.slug = ""
        rom.revision = ""
        rom.url_cover = ""
        rom.url_manual = ""
        rom.url_screenshots = []
        rom.path_screenshots = []
        rom.path_cover_s = ""
        rom.path_cover_l = ""
        rom.updated_at = utcnow()
        session.commit()
        remove_cover_files(resources, folder)
        return

    form = upd.fields
    # 1. validate and compute everything before touching the disk
    new_ids: dict[str, Any] = {}
    for col in INT_PROVIDER_IDS:
        if col in form:
            new_ids[col] = _parse_int_id(col, form[col])
    for col in STR_PROVIDER_IDS:
        if col in form:
            new_ids[col] = form[col].strip()[:100] or None
    blobs: dict[str, dict[str, Any]] = {}
    ids_after = {col: new_ids.get(col, getattr(rom, col)) for col in (*INT_PROVIDER_IDS, *STR_PROVIDER_IDS)}
    for fld, (blob, id_col) in RAW_METADATA_FIELDS.items():
        if fld in form:
            parsed = _parse_json_blob(form[fld])
            if parsed is not None and (id_col is None or ids_after.get(id_col)):
                blobs[blob] = parsed
    manual_changes: dict[str, Any] = {}
    for fld in MANUAL_LIST_FIELDS:
        if fld in form:
            manual_changes[fld] = _parse_list_field(fld, form[fld])
    for fld in MANUAL_TEXT_FIELDS:
        if fld in form:
            manual_changes[fld] = form[fld].strip() or None
    if "first_release_date" in form:
        manual_changes["first_release_date"] = _parse_release_date(form["first_release_date"])
    new_fs_name = None
    if "fs_name" in form and form["fs_name"].strip() and form["fs_name"] != rom.fs_name:
        candidate = validate_fs_name(form["fs_name"])
        if candidate != rom.fs_name:
            new_fs_name = candidate
    if new_fs_name is not None:
        taken = session.execute(
            sa.select(Rom.id).where(Rom.platform_id == rom.platform_id, Rom.fs_name == new_fs_name, Rom.id != rom.id)
        ).first()
        if taken is not None:
            raise Conflict(f"Another ROM of this platform is already named {new_fs_name!r}")
    image = upd.artwork
    if image is not None and not upd.remove_cover and image_extension(image[:16]) is None:
        raise BadRequest("Invalid image file: artwork must be a PNG, JPEG, WebP, or GIF image")

    # 2. apply to the row
    old_name = rom.name
    old_key_custom = rom.name_sort_key != naming.name_sort_key(old_name or "")
    for col, value in new_ids.items():
        if getattr(rom, col) != value:
            setattr(rom, col, value)
            blob = ID_BLOBS.get(col)
            if value is None and blob is not None:
                setattr(rom, blob, {})
    for blob, value in blobs.items():
        setattr(rom, blob, value)
    if manual_changes:
        manual = dict(rom.manual_metadata or {})
        manual.update(manual_changes)
        rom.manual_metadata = manual
    if "name" in form:
        # An empty name falls back to the file name without tags (never an empty title).
        rom.name = form["name"].strip()[:350] or rom.fs_name_no_tags
    if "summary" in form:
        rom.summary = form["summary"]
    submitted_key = form.get("name_sort_key")
    if submitted_key is not None and submitted_key.strip() and submitted_key.strip() != rom.name_sort_key:
        rom.name_sort_key = naming.name_sort_key(submitted_key.strip())
    elif not old_key_custom or (submitted_key is not None and not submitted_key.strip()):
        rom.name_sort_key = naming.name_sort_key(rom.name or "")
    for text_field in ("url_cover", "url_manual", "slug"):
        if text_field in form:
            setattr(rom, text_field, form[text_field].strip())

    # 3. files: rename on disk, then the cover
    library = ctx.storages.library
    renamed: tuple[str, str] | None = None
    new_cover_ext: str | None = None
    try:
        if new_fs_name is not None:
            old_fs_name = rom.fs_name
            old_key, new_key = f"{rom.fs_path}/{old_fs_name}", f"{rom.fs_path}/{new_fs_name}"
            try:
                library.move(old_key, new_key)
            except FileExists:
                raise Conflict(f"A file or folder named {new_fs_name!r} already exists in {rom.fs_path}") from None
            except FileMissing:
                raise Conflict(
                    f"The ROM's file {old_key!r} is missing from the library; rescan before renaming"
                ) from None
            renamed = (old_key, new_key)
            _rename_rows(session, rom, old_fs_name, new_fs_name)
        if upd.remove_cover:
            rom.path_cover_s = rom.path_cover_l = ""
            rom.url_cover = ""
        elif image is not None:
            small, big = store_cover(resources, folder, image)
            new_cover_ext = big.rsplit(".", 1)[1]
            rom.path_cover_s, rom.path_cover_l = small, big
        rom.updated_at = utcnow()
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            if is_unique_violation(exc):
                raise Conflict("Another ROM of this platform already has that file name") from None
            raise
    except BaseException:
        session.rollback()
        if renamed is not None:
            try:
                library.move(renamed[1], renamed[0])
            except Exception:  # pragma: no cover - logged, nothing else to do
                log.exception("could not undo the rename of %s", renamed[0])
        if new_cover_ext is not None:
            log.warning("cover written for ROM %s but the edit failed", rom_id)
        raise
    if upd.remove_cover:
        remove_cover_files(resources, folder)
    elif new_cover_ext is not None:
        remove_cover_files(resources, folder, keep=new_cover_ext)


def _rename_rows(session: Session, rom: Rom, old: str, new: str) -> None:
    """Point the ROM and its files at the new name and re-read the name's tags."""
    old_full, new_full = f"{rom.fs_path}/{old}", f"{rom.fs_path}/{new}"
    rom.fs_name = new
    rom.apply_tags()
    files = session.scalars(sa.select(RomFile).where(RomFile.rom_id == rom.id)).all()
    for f in files:
        if f.file_path == rom.fs_path and f.file_name == old:
            f.file_name = new
        elif f.file_path == old_full or f.file_path.startswith(old_full + "/"):
            f.file_path = new_full + f.file_path[len(old_full) :]


# --- user props ----------------------------------------------------------------------------------


def update_props(
    session: Session,
    rom_id: int,
    user_id: int,
    changes: Mapping[str, Any],
    *,
    update_last_played: bool = False,
    remove_last_played: bool = False,
) -> dict[str, Any]:
    """Partial update of the caller's RomUser row (created on first use); RomUserSchema back."""
    if update_last_played and remove_last_played:
        raise BadRequest("update_last_played and remove_last_played are mutually exclusive.")
    rom = get_rom(session, rom_id)
    ru = _get_or_create_rom_user(session, rom_id, user_id)
    for key, value in changes.items():
        setattr(ru, key, value)
    if update_last_played:
        ru.last_played = utcnow()
    elif remove_last_played:
        ru.last_played = None
    if changes.get("is_main_sibling"):
        sibling_ids = [s["id"] for s in render.siblings_of(session, [_sibling_row(rom)], user_id).get(rom.id, [])]
        if sibling_ids:
            session.execute(
                sa.update(RomUser)
                .where(RomUser.user_id == user_id, RomUser.rom_id.in_(sibling_ids))
                .values(is_main_sibling=False, updated_at=utcnow())
            )
    ru.updated_at = utcnow()
    session.commit()
    return render.rom_user_dict(_ru_mapping(ru), {"created_at": ru.created_at})


def _sibling_row(rom: Rom) -> dict[str, Any]:
    return {"id": rom.id, "platform_id": rom.platform_id, **{c: getattr(rom, c) for c in query.SIBLING_IDS}}


def _ru_mapping(ru: RomUser) -> dict[str, Any]:
    return {c.name: getattr(ru, c.key) for c in RomUser.__table__.c}


def _get_or_create_rom_user(session: Session, rom_id: int, user_id: int) -> RomUser:
    ru = session.scalar(sa.select(RomUser).where(RomUser.rom_id == rom_id, RomUser.user_id == user_id))
    if ru is not None:
        return ru
    ru = RomUser(rom_id=rom_id, user_id=user_id)
    try:
        with session.begin_nested():
            session.add(ru)
    except IntegrityError:
        found = session.scalar(sa.select(RomUser).where(RomUser.rom_id == rom_id, RomUser.user_id == user_id))
        if found is None:
            raise
        return found
    return ru


# --- deleting -----------------------------------------------------------------------------------


@dataclass
class DeleteResult:
    successful_items: int = 0
    failed_ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "successful_items": self.successful_items,
            "failed_items": len(self.failed_ids),
            "failed_ids": self.failed_ids,
            "errors": self.errors,
        }


def delete_roms(
    ctx: AppContext, session: Session, rom_ids: Sequence[int], delete_from_fs: Sequence[int]
) -> DeleteResult:
    """Delete ROMs (and, for ids in ``delete_from_fs``, their file or folder on disk).

    Per ROM: the files go first (a failure keeps the row, so nothing points at a half-deleted
    folder); a file already missing from disk is not an error. Then the row (cascading to its
    files, user data, collection links, saves...), then its generated covers.
    """
    result = DeleteResult()
    from_fs = set(delete_from_fs)
    library = ctx.storages.library
    seen: set[int] = set()
    for rom_id in rom_ids:
        if rom_id in seen:
            continue
        seen.add(rom_id)
        rom = session.get(Rom, rom_id)
        if rom is None:
            result.failed_ids.append(rom_id)
            result.errors.append(f"ROM with ID {rom_id} not found")
            continue
        platform_id, key, fs_path = rom.platform_id, rom.full_path, rom.fs_path
        try:
            if rom_id in from_fs:
                st = library.stat(key)
                if st is not None and st.is_dir:
                    library.delete_tree(key)
                elif st is not None:
                    library.delete(key)
                    parent = fs_path.rsplit("/", 1)[0] if "/" in fs_path else ""
                    library.remove_empty_parents(key, stop_at=parent)
            session.delete(rom)
            session.commit()
        except Exception as exc:
            session.rollback()
            log.warning("could not delete ROM %s", rom_id, exc_info=True)
            result.failed_ids.append(rom_id)
            result.errors.append(f"Failed to delete ROM {rom_id}: {exc}")
            continue
        ctx.storages.resources.delete_tree(f"roms/{platform_id}/{rom_id}")
        result.successful_items += 1
    return result


def username_of(session: Session, user_id: int) -> str:
    return session.execute(sa.select(User.username).where(User.id == user_id)).scalar_one_or_none() or ""
