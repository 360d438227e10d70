"""Rendering ROM rows to RomM's JSON shapes (``SimpleRomSchema``, ``RomFileSchema`` ...).

Built as plain dicts from Core rows in a handful of batched queries (ROMs + platform + the
caller's rom_user row, their files, their siblings) and encoded once: no ORM objects, no
per-item Pydantic validation on the hot list path. ``roms.schemas`` documents the same shapes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf.core.timeutil import to_utc
from romshelf.platforms.models import Platform
from romshelf.roms import derived
from romshelf.roms.models import INT_PROVIDER_IDS, METADATA_BLOBS, Rom, RomFile, RomUser
from romshelf.roms.query import SIBLING_IDS
from romshelf.saves.models import Save, Screenshot, State

RESOURCES_URL = "/assets/romm/resources"
IDENTIFYING_IDS = (
    "igdb_id",
    "moby_id",
    "ss_id",
    "ra_id",
    "launchbox_id",
    "hasheous_id",
    "flashpoint_id",
    "hltb_id",
    "gamelist_id",
    "libretro_id",
)
_ARTICLES = ("the ", "a ", "and ")

roms = Rom.__table__
files_t = RomFile.__table__
ru_t = RomUser.__table__
plat = Platform.__table__

_RU_COLS = [c for c in ru_t.c if c.name not in ("rom_id",)]


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else to_utc(value).isoformat()


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def resource_url(path: str, updated_at: dt.datetime | None = None) -> str:
    if not path:
        return ""
    url = f"{RESOURCES_URL}/{quote(path)}"
    if updated_at is not None:
        url += "?ts=" + quote(to_utc(updated_at).isoformat(), safe="")
    return url


def rom_user_dict(ru: Mapping[str, Any] | None, rom: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's RomUserSchema; RomM's placeholder (ids -1) when there is no row yet.

    The placeholder's timestamps are the ROM's ``created_at`` (RomM uses "now"), so identical
    data renders identically and ETags stay valid.
    """
    if ru is None:
        stamp = iso(rom["created_at"])
        return {
            "id": -1,
            "user_id": -1,
            "rom_id": -1,
            "created_at": stamp,
            "updated_at": stamp,
            "last_played": None,
            "is_main_sibling": False,
            "backlogged": False,
            "now_playing": False,
            "hidden": False,
            "rating": 0,
            "difficulty": 0,
            "completion": 0,
            "status": None,
        }
    return {
        "id": ru["id"],
        "user_id": ru["user_id"],
        "rom_id": ru["rom_id"],
        "created_at": iso(ru["created_at"]),
        "updated_at": iso(ru["updated_at"]),
        "last_played": iso(ru["last_played"]),
        "is_main_sibling": bool(ru["is_main_sibling"]),
        "backlogged": bool(ru["backlogged"]),
        "now_playing": bool(ru["now_playing"]),
        "hidden": bool(ru["hidden"]),
        "rating": ru["rating"],
        "difficulty": ru["difficulty"],
        "completion": ru["completion"],
        "status": ru["status"],
    }


def is_top_level(f: Mapping[str, Any], rom_full_path: str) -> bool:
    file_path = f["file_path"]
    nested = file_path.count("/") > 1
    return rom_full_path == (file_path if nested else f"{file_path}/{f['file_name']}")


def file_dict(f: Mapping[str, Any], rom_full_path: str) -> dict[str, Any]:
    top = is_top_level(f, rom_full_path)
    category = f["category"] or ("game" if top else None)
    modified = f["last_modified"]
    return {
        "id": f["id"],
        "rom_id": f["rom_id"],
        "file_name": f["file_name"],
        "file_path": f["file_path"],
        "file_size_bytes": f["file_size_bytes"],
        "full_path": f"{f['file_path']}/{f['file_name']}",
        "is_top_level": top,
        "created_at": iso(f["created_at"]),
        "updated_at": iso(f["updated_at"]),
        "last_modified": None if modified is None else dt.datetime.fromtimestamp(modified, dt.UTC).isoformat(),
        "crc_hash": f["crc_hash"],
        "md5_hash": f["md5_hash"],
        "sha1_hash": f["sha1_hash"],
        "ra_hash": f["ra_hash"],
        "chd_sha1_hash": f["chd_sha1_hash"],
        "archive_members": f["archive_members"],
        "category": category,
        "track_meta": None,
    }


def sort_comparator(name: str | None, fs_name_no_tags: str) -> str:
    text = (name or fs_name_no_tags or "").strip()
    low = text.lower()
    for article in _ARTICLES:
        if low.startswith(article):
            text = text[len(article) :]
            break
    return text.strip().lower()


def _file_flags(rom: Mapping[str, Any], files: Sequence[Mapping[str, Any]]) -> tuple[bool, bool, bool, bool]:
    full = f"{rom['fs_path']}/{rom['fs_name']}"
    multi = any(f["file_path"] != rom["fs_path"] for f in files)
    top = sum(1 for f in files if f"{f['file_path']}/{f['file_name']}" == full or f["file_path"] == full)
    soundtrack = any(f["category"] == "soundtrack" for f in files)
    return (not multi and top == 1, multi and top == 1, top > 1, soundtrack)


def rom_dict(
    r: Mapping[str, Any],
    ru: Mapping[str, Any] | None,
    files: Sequence[Mapping[str, Any]],
    siblings: list[dict[str, Any]],
    *,
    with_files: bool,
) -> dict[str, Any]:
    """RomM's RomSchema fields, in RomM's order, for one ROM row (+ platform columns)."""
    blobs = {b: r[b] for b in METADATA_BLOBS}
    unidentified = all(r[i] is None for i in IDENTIFYING_IDS)
    full_path = f"{r['fs_path']}/{r['fs_name']}"
    simple, nested, multiple, soundtrack = _file_flags(r, files)
    out: dict[str, Any] = {"id": r["id"]}
    for col in INT_PROVIDER_IDS[:8]:  # igdb .. tgdb, in RomM's order
        out[col] = r[col]
    out["flashpoint_id"] = r["flashpoint_id"]
    out["hltb_id"] = r["hltb_id"]
    out["gamelist_id"] = r["gamelist_id"]
    out["libretro_id"] = r["libretro_id"]
    out.update(
        {
            "platform_id": r["platform_id"],
            "platform_slug": r["p_slug"],
            "platform_fs_slug": r["p_fs_slug"],
            "platform_custom_name": r["p_custom_name"],
            "platform_display_name": r["p_custom_name"] or r["p_name"],
            "fs_name": r["fs_name"],
            "fs_name_no_tags": r["fs_name_no_tags"],
            "fs_name_no_ext": r["fs_name_no_ext"],
            "fs_extension": r["fs_extension"],
            "fs_path": r["fs_path"],
            "fs_size_bytes": r["fs_size_bytes"],
            "name": r["name"],
            "name_sort_key": r["name_sort_key"],
            "slug": r["slug"],
            "summary": r["summary"],
            "alternative_names": derived.alternative_names(blobs),
            "youtube_video_id": derived.youtube_video_id(blobs),
            "metadatum": {
                "rom_id": r["id"],
                "genres": r["meta_genres"] or [],
                "franchises": r["meta_franchises"] or [],
                "collections": r["meta_collections"] or [],
                "companies": r["meta_companies"] or [],
                "game_modes": r["meta_game_modes"] or [],
                "age_ratings": r["meta_age_ratings"] or [],
                "player_count": r["meta_player_count"] or "1",
                "first_release_date": r["meta_first_release_date"],
                "average_rating": r["meta_average_rating"],
            },
        }
    )
    for blob in METADATA_BLOBS:
        if blob != "ra_metadata":
            out[blob] = r[blob] if r[blob] is not None else {}
    out.update(
        {
            "path_cover_small": resource_url(r["path_cover_s"], r["updated_at"]),
            "path_cover_large": resource_url(r["path_cover_l"], r["updated_at"]),
            "url_cover": r["url_cover"],
            "has_manual": bool(r["path_manual"]),
            "has_soundtrack": soundtrack,
            "path_manual": resource_url(r["path_manual"], r["updated_at"]) or None,
            "url_manual": r["url_manual"],
            "path_video": derived.path_video(blobs),
            "is_identifying": False,
            "is_unidentified": unidentified,
            "is_identified": not unidentified,
            "revision": r["revision"],
            "regions": r["regions"] or [],
            "languages": r["languages"] or [],
            "tags": r["tags"] or [],
            "crc_hash": r["crc_hash"],
            "md5_hash": r["md5_hash"],
            "sha1_hash": r["sha1_hash"],
            "ra_hash": r["ra_hash"],
            "has_simple_single_file": simple,
            "has_nested_single_file": nested,
            "has_multiple_files": multiple,
            "full_path": full_path,
            "created_at": iso(r["created_at"]),
            "updated_at": iso(r["updated_at"]),
            "missing_from_fs": bool(r["missing_from_fs"]),
            "has_notes": False,
            "rom_user": rom_user_dict(ru, r),
            "merged_screenshots": [resource_url(p) for p in (r["path_screenshots"] or [])],
            "merged_ra_metadata": r["ra_metadata"] or {},
            "files": [file_dict(f, full_path) for f in files] if with_files else [],
            "sibling_roms": siblings,
        }
    )
    return out


def _split_user(row: Mapping[str, Any]) -> dict[str, Any] | None:
    if row["ru_id"] is None:
        return None
    out = {c.name: row[f"ru_{c.name}"] for c in _RU_COLS}
    out["rom_id"] = row["id"]
    return out


def load(
    session: Session,
    ids: Sequence[int],
    user_id: int | None,
    *,
    with_files: bool,
) -> list[dict[str, Any]]:
    """Render these ROMs (in the order of ``ids``; unknown ids are skipped)."""
    return [item for item, _row in _load(session, _ROWS, ids, user_id, with_files=with_files)]


def load_one(session: Session, rom_id: int, user_id: int | None) -> tuple[dict[str, Any], Mapping[str, Any]] | None:
    """One ROM with its files, and its row: ``ru_hidden`` (the caller hides it) and
    ``has_assets`` (any save, state or screenshot exists) come with it, saving queries."""
    found = _load(session, _ROW_DETAIL, [rom_id], user_id, with_files=True)
    return found[0] if found else None


def _load(
    session: Session, statement: Any, ids: Sequence[int], user_id: int | None, *, with_files: bool
) -> list[tuple[dict[str, Any], Mapping[str, Any]]]:
    if not ids:
        return []
    uid = user_id if user_id is not None else -1
    rows = {row["id"]: row for row in session.execute(statement, {"ids": list(ids), "uid": uid}).mappings()}
    if not rows:
        return []
    files_by_rom: dict[int, list[Mapping[str, Any]]] = {i: [] for i in rows}
    for f in session.execute(_FILES, {"ids": list(rows)}).mappings():
        files_by_rom[f["rom_id"]].append(f)
    siblings = siblings_of(session, list(rows.values()), uid)
    out = []
    for i in ids:
        row = rows.get(i)
        if row is None:
            continue
        item = rom_dict(row, _split_user(row), files_by_rom[i], siblings.get(i, []), with_files=with_files)
        out.append((item, row))
    return out


def _rom_cols(ru: Any) -> list[Any]:
    cols: list[Any] = [*roms.c]
    cols += [
        plat.c.slug.label("p_slug"),
        plat.c.fs_slug.label("p_fs_slug"),
        plat.c.name.label("p_name"),
        plat.c.custom_name.label("p_custom_name"),
    ]
    cols += [ru.c[c.name].label(f"ru_{c.name}") for c in _RU_COLS]
    return cols


# Statements built once: building a select of ~90 columns and its cache key per request costs
# more than running it. Parameters: ``ids`` (expanding), ``uid``.
_ru = ru_t.alias("ru")
_ROWS = (
    sa.select(*_rom_cols(_ru))
    .select_from(
        roms.join(plat, plat.c.id == roms.c.platform_id).outerjoin(
            _ru, sa.and_(_ru.c.rom_id == roms.c.id, _ru.c.user_id == sa.bindparam("uid"))
        )
    )
    .where(roms.c.id.in_(sa.bindparam("ids", expanding=True)))
)
_ROW_DETAIL = _ROWS.add_columns(
    sa.or_(
        *(sa.exists().where(t.c.rom_id == roms.c.id) for t in (Save.__table__, State.__table__, Screenshot.__table__))
    ).label("has_assets")
)
_FILES = (
    sa.select(files_t)
    .where(files_t.c.rom_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(files_t.c.file_name, files_t.c.id)
)
_SIBLING_COLS = (
    roms.c.id,
    roms.c.platform_id,
    roms.c.name,
    roms.c.fs_name_no_tags,
    roms.c.fs_name_no_ext,
    *(roms.c[c] for c in SIBLING_IDS),
)
_sibling_statements: dict[tuple[str, ...], Any] = {}


def _siblings_statement(columns: tuple[str, ...]) -> Any:
    """ROMs sharing a value of any of ``columns`` (params ``v_<column>`` expanding, ``uid``).

    One indexed lookup per provider id column (an OR across columns would scan the table).
    """
    stmt = _sibling_statements.get(columns)
    if stmt is None:
        parts = [
            sa.select(*_SIBLING_COLS).where(roms.c[col].in_(sa.bindparam(f"v_{col}", expanding=True)))
            for col in columns
        ]
        found = (sa.union(*parts) if len(parts) > 1 else parts[0]).subquery()
        sru = ru_t.alias("sru")
        stmt = sa.select(found, sru.c.is_main_sibling).select_from(
            found.outerjoin(sru, sa.and_(sru.c.rom_id == found.c.id, sru.c.user_id == sa.bindparam("uid")))
        )
        _sibling_statements[columns] = stmt
    return stmt


def siblings_of(session: Session, rows: Iterable[Mapping[str, Any]], uid: int) -> dict[int, list[dict[str, Any]]]:
    """RomM's sibling ROMs: other ROMs of the same platform sharing any provider id."""
    rows = [r for r in rows if any(r[c] is not None for c in SIBLING_IDS)]
    if not rows:
        return {}
    params: dict[str, Any] = {"uid": uid}
    columns = []
    for col in SIBLING_IDS:
        values = sorted({r[col] for r in rows if r[col] is not None})
        if values:
            columns.append(col)
            params[f"v_{col}"] = values
    q = _siblings_statement(tuple(columns))
    candidates = list(session.execute(q, params).mappings())
    out: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        sibs = []
        for c in candidates:
            if c["id"] == r["id"] or c["platform_id"] != r["platform_id"]:
                continue
            if any(r[col] is not None and c[col] == r[col] for col in SIBLING_IDS):
                sibs.append(
                    {
                        "id": c["id"],
                        "name": c["name"],
                        "fs_name_no_tags": c["fs_name_no_tags"],
                        "fs_name_no_ext": c["fs_name_no_ext"],
                        "is_main_sibling": bool(c["is_main_sibling"]),
                        "sort_comparator": sort_comparator(c["name"], c["fs_name_no_tags"]),
                    }
                )
        sibs.sort(key=lambda s: (s["sort_comparator"], s["id"]))
        out[r["id"]] = sibs
    return out
