"""Collections: standard ones (explicit ROM ids; one "favourites" per user), smart ones (saved
filter criteria, re-evaluated on every read with the ROM list's own query engine) and virtual
ones (one per genre, franchise, company, IGDB collection or game mode, from ``rom_facets``).

Visibility: a caller sees their own collections and everyone's public ones; someone else's
private collection is a 404 (never a 403); only the owner may change or delete a collection.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf.accounts.models import User
from romshelf.collections.models import Collection, CollectionRom, SmartCollection
from romshelf.core.context import AppContext
from romshelf.core.errors import BadRequest, Conflict, Forbidden, NotFound, UnprocessableEntity
from romshelf.core.timeutil import utcnow
from romshelf.roms import query
from romshelf.roms.models import Rom, RomFacet
from romshelf.roms.query import FilterError, Order, RomFilters
from romshelf.roms.render import resource_url
from romshelf.roms.service import remove_cover_files, store_cover

COVERS_SHOWN = 4
VIRTUAL_TYPES = tuple(query.VIRTUAL_TYPES)


def _uid(user_id: int | None) -> int:
    return user_id if user_id is not None else -1


def _usernames(session: Session, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return {i: n for i, n in session.execute(sa.select(User.id, User.username).where(User.id.in_(user_ids)))}


def _rom_covers(session: Session, rom_ids: Sequence[int]) -> tuple[list[str], list[str]]:
    """Cover URLs of the first ROMs (in the given order) that have one."""
    if not rom_ids:
        return [], []
    rows = {
        r.id: r
        for r in session.execute(
            sa.select(Rom.id, Rom.path_cover_s, Rom.path_cover_l, Rom.updated_at).where(
                Rom.id.in_(list(rom_ids)), Rom.path_cover_l != ""
            )
        )
    }
    small, large = [], []
    for rid in rom_ids:
        r = rows.get(rid)
        if r is None:
            continue
        small.append(resource_url(r.path_cover_s, r.updated_at))
        large.append(resource_url(r.path_cover_l, r.updated_at))
        if len(large) >= COVERS_SHOWN:
            break
    return small, large


def _sorted_rom_ids(session: Session, rom_ids: set[int] | list[int]) -> list[int]:
    """ROM ids in list order (name sort key, then id)."""
    if not rom_ids:
        return []
    return list(session.scalars(sa.select(Rom.id).where(Rom.id.in_(list(rom_ids))).order_by(Rom.name_sort_key, Rom.id)))


# --- standard collections -------------------------------------------------------------------------


def visible(session: Session, collection_id: int, user_id: int | None) -> Collection:
    c = session.get(Collection, collection_id)
    if c is None or (c.user_id != _uid(user_id) and not c.is_public):
        raise NotFound(f"Collection with id '{collection_id}' not found")
    return c


def owned(session: Session, collection_id: int, user_id: int) -> Collection:
    c = visible(session, collection_id, user_id)
    if c.user_id != user_id:
        raise Forbidden("Only the owner can change this collection")
    return c


def collection_rom_ids(session: Session, collection_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {cid: [] for cid in collection_ids}
    if not collection_ids:
        return out
    rows = session.execute(
        sa.select(CollectionRom.collection_id, CollectionRom.rom_id)
        .join(Rom, Rom.id == CollectionRom.rom_id)
        .where(CollectionRom.collection_id.in_(list(collection_ids)))
        .order_by(Rom.name_sort_key, Rom.id)
    )
    for cid, rid in rows:
        out[cid].append(rid)
    return out


def collection_dicts(session: Session, collections: Sequence[Collection]) -> list[dict[str, Any]]:
    ids = collection_rom_ids(session, [c.id for c in collections])
    names = _usernames(session, {c.user_id for c in collections})
    out = []
    for c in collections:
        rom_ids = ids[c.id]
        small, large = _rom_covers(session, rom_ids)
        out.append(
            {
                "name": c.name,
                "description": c.description,
                "rom_ids": rom_ids,
                "rom_count": len(rom_ids),
                "path_cover_small": resource_url(c.path_cover_s, c.updated_at),
                "path_cover_large": resource_url(c.path_cover_l, c.updated_at),
                "path_covers_small": small,
                "path_covers_large": large,
                "is_public": c.is_public,
                "is_favorite": c.is_favorite,
                "is_virtual": False,
                "is_smart": False,
                "created_at": c.created_at,
                "updated_at": c.updated_at,
                "id": c.id,
                "url_cover": c.url_cover,
                "user_id": c.user_id,
                "owner_username": names.get(c.user_id, ""),
            }
        )
    return out


def list_collections(session: Session, user_id: int, updated_after: dt.datetime | None = None) -> list[Collection]:
    q = sa.select(Collection).where(sa.or_(Collection.user_id == user_id, Collection.is_public.is_(True)))
    if updated_after is not None:
        q = q.where(Collection.updated_at > updated_after)
    return list(session.scalars(q.order_by(Collection.name, Collection.id)))


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise BadRequest("Collection name must not be empty")
    if len(name) > 400:
        raise BadRequest("Collection name is longer than 400 characters")
    return name


def _check_rom_ids(session: Session, rom_ids: Sequence[int]) -> list[int]:
    wanted = list(dict.fromkeys(int(i) for i in rom_ids))
    if not wanted:
        return []
    found = set(session.scalars(sa.select(Rom.id).where(Rom.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFound(f"Rom with id '{missing[0]}' not found")
    return wanted


def parse_rom_ids(text: str) -> list[int]:
    """The ``rom_ids`` form field: a JSON array of integers (``[1,2,3]``)."""
    try:
        value = json.loads(text) if text.strip() else []
    except ValueError:
        raise BadRequest("rom_ids must be a JSON array of integers, e.g. [1,2,3]") from None
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise BadRequest("rom_ids must be a JSON array of integers, e.g. [1,2,3]")
    return value


def create_collection(
    ctx: AppContext,
    session: Session,
    user_id: int,
    *,
    name: str,
    description: str = "",
    url_cover: str = "",
    is_public: bool = False,
    is_favorite: bool = False,
    artwork: bytes | None = None,
) -> Collection:
    name = _clean_name(name)
    if session.scalar(sa.select(Collection.id).where(Collection.user_id == user_id, Collection.name == name)):
        raise Conflict(f"Collection '{name}' already exists")
    if is_favorite and session.scalar(
        sa.select(Collection.id).where(Collection.user_id == user_id, Collection.is_favorite.is_(True))
    ):
        raise Conflict("A favourites collection already exists for this user")
    c = Collection(
        user_id=user_id,
        name=name,
        description=description or "",
        url_cover=(url_cover or "").strip(),
        is_public=is_public,
        is_favorite=is_favorite,
    )
    session.add(c)
    session.flush()
    if artwork:
        c.path_cover_s, c.path_cover_l = store_cover(ctx.storages.resources, _cover_folder(c.id), artwork)
    session.commit()
    return c


def _cover_folder(collection_id: int) -> str:
    return f"collections/{collection_id}/cover"


def update_collection(
    ctx: AppContext,
    session: Session,
    collection_id: int,
    user_id: int,
    *,
    fields: Mapping[str, str],
    is_public: bool | None = None,
    remove_cover: bool = False,
    artwork: bytes | None = None,
) -> Collection:
    c = owned(session, collection_id, user_id)
    if "name" in fields:
        name = _clean_name(fields["name"])
        if name != c.name and session.scalar(
            sa.select(Collection.id).where(Collection.user_id == user_id, Collection.name == name)
        ):
            raise Conflict(f"Collection '{name}' already exists")
        c.name = name
    if "description" in fields:
        c.description = fields["description"]
    if "url_cover" in fields:
        c.url_cover = fields["url_cover"].strip()
    if is_public is not None:
        c.is_public = is_public
    if "rom_ids" in fields:
        wanted = _check_rom_ids(session, parse_rom_ids(fields["rom_ids"]))
        _set_roms(session, c.id, wanted)
    folder = _cover_folder(c.id)
    new_ext = None
    if remove_cover:
        c.path_cover_s = c.path_cover_l = ""
        c.url_cover = ""
    elif artwork:
        c.path_cover_s, c.path_cover_l = store_cover(ctx.storages.resources, folder, artwork)
        new_ext = c.path_cover_l.rsplit(".", 1)[1]
    c.updated_at = utcnow()
    session.commit()
    if remove_cover:
        remove_cover_files(ctx.storages.resources, folder)
    elif new_ext:
        remove_cover_files(ctx.storages.resources, folder, keep=new_ext)
    return c


def _set_roms(session: Session, collection_id: int, rom_ids: list[int]) -> None:
    current = set(session.scalars(sa.select(CollectionRom.rom_id).where(CollectionRom.collection_id == collection_id)))
    wanted = set(rom_ids)
    if current - wanted:
        session.execute(
            sa.delete(CollectionRom).where(
                CollectionRom.collection_id == collection_id, CollectionRom.rom_id.in_(current - wanted)
            )
        )
    for rid in rom_ids:
        if rid not in current:
            session.add(CollectionRom(collection_id=collection_id, rom_id=rid))


def add_roms(session: Session, collection_id: int, user_id: int, rom_ids: Sequence[int]) -> Collection:
    c = owned(session, collection_id, user_id)
    wanted = _check_rom_ids(session, rom_ids)
    current = set(session.scalars(sa.select(CollectionRom.rom_id).where(CollectionRom.collection_id == collection_id)))
    for rid in wanted:
        if rid not in current:
            session.add(CollectionRom(collection_id=collection_id, rom_id=rid))
    c.updated_at = utcnow()
    session.commit()
    return c


def remove_roms(session: Session, collection_id: int, user_id: int, rom_ids: Sequence[int]) -> Collection:
    c = owned(session, collection_id, user_id)
    if rom_ids:
        session.execute(
            sa.delete(CollectionRom).where(
                CollectionRom.collection_id == collection_id, CollectionRom.rom_id.in_(list(rom_ids))
            )
        )
    c.updated_at = utcnow()
    session.commit()
    return c


def delete_collection(ctx: AppContext, session: Session, collection_id: int, user_id: int) -> str:
    c = owned(session, collection_id, user_id)
    name = c.name
    session.delete(c)
    session.commit()
    ctx.storages.resources.delete_tree(f"collections/{collection_id}")
    return name


# --- smart collections ----------------------------------------------------------------------------


def parse_criteria(text: str | None) -> dict[str, Any]:
    """Validate smart collection criteria (a JSON object of ``GET /api/roms`` filter parameters).

    Returns the normalised criteria (only the filters that are set). 422 names the bad filter.
    """
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise UnprocessableEntity(
            [{"type": "value_error", "loc": ["body", "filter_criteria"], "msg": "must be a JSON object", "input": text}]
        ) from None
    if not isinstance(value, dict):
        raise UnprocessableEntity(
            [{"type": "value_error", "loc": ["body", "filter_criteria"], "msg": "must be a JSON object", "input": text}]
        )
    try:
        filters = query.build_filters(value)
    except FilterError as exc:
        raise UnprocessableEntity(
            [
                {
                    "type": "value_error",
                    "loc": ["body", "filter_criteria", exc.field],
                    "msg": exc.msg,
                    "input": exc.detail[0]["input"],
                }
            ]
        ) from None
    return query.filters_to_criteria(filters)


def visible_smart(session: Session, collection_id: int, user_id: int | None) -> SmartCollection:
    c = session.get(SmartCollection, collection_id)
    if c is None or (c.user_id != _uid(user_id) and not c.is_public):
        raise NotFound(f"Smart collection with id '{collection_id}' not found")
    return c


def owned_smart(session: Session, collection_id: int, user_id: int) -> SmartCollection:
    c = visible_smart(session, collection_id, user_id)
    if c.user_id != user_id:
        raise Forbidden("Only the owner can change this smart collection")
    return c


def smart_collection_rom_ids(session: Session, collection_id: int, user_id: int | None) -> list[int]:
    """The ROMs a smart collection matches for this caller, in list (name) order.

    Raises NotFound if the collection does not exist or is someone else's private one. Used by
    ``GET /api/collections/smart`` and by bulk downloads (``smart_collection_id``).
    """
    visible_smart(session, collection_id, user_id)
    f = RomFilters(smart_collection_id=collection_id)
    return list(session.scalars(query.ordered(session, f, Order(), user_id)))


def smart_dicts(session: Session, collections: Sequence[SmartCollection], user_id: int | None) -> list[dict[str, Any]]:
    names = _usernames(session, {c.user_id for c in collections})
    out = []
    for c in collections:
        rom_ids = smart_collection_rom_ids(session, c.id, user_id)
        small, large = _rom_covers(session, rom_ids)
        criteria = c.filter_criteria if isinstance(c.filter_criteria, dict) else {}
        try:
            summary = query.summarize(query.build_filters(criteria))
        except FilterError:
            summary = "Invalid criteria"
        out.append(
            {
                "name": c.name,
                "description": c.description,
                "rom_ids": rom_ids,
                "rom_count": len(rom_ids),
                "path_cover_small": None,
                "path_cover_large": None,
                "path_covers_small": small,
                "path_covers_large": large,
                "is_public": c.is_public,
                "is_favorite": False,
                "is_virtual": False,
                "is_smart": True,
                "created_at": c.created_at,
                "updated_at": c.updated_at,
                "id": c.id,
                "filter_criteria": criteria,
                "filter_summary": summary,
                "user_id": c.user_id,
                "owner_username": names.get(c.user_id, ""),
            }
        )
    return out


def list_smart(session: Session, user_id: int, updated_after: dt.datetime | None = None) -> list[SmartCollection]:
    q = sa.select(SmartCollection).where(
        sa.or_(SmartCollection.user_id == user_id, SmartCollection.is_public.is_(True))
    )
    if updated_after is not None:
        q = q.where(SmartCollection.updated_at > updated_after)
    return list(session.scalars(q.order_by(SmartCollection.name, SmartCollection.id)))


def create_smart(
    session: Session, user_id: int, *, name: str, description: str, criteria: dict[str, Any], is_public: bool
) -> SmartCollection:
    name = _clean_name(name)
    if session.scalar(
        sa.select(SmartCollection.id).where(SmartCollection.user_id == user_id, SmartCollection.name == name)
    ):
        raise Conflict(f"Smart collection '{name}' already exists")
    c = SmartCollection(
        user_id=user_id, name=name, description=description or "", filter_criteria=criteria, is_public=is_public
    )
    session.add(c)
    session.commit()
    return c


def update_smart(
    session: Session,
    collection_id: int,
    user_id: int,
    *,
    name: str | None,
    description: str | None,
    criteria: dict[str, Any] | None,
    is_public: bool | None,
) -> SmartCollection:
    c = owned_smart(session, collection_id, user_id)
    if name is not None:
        new = _clean_name(name)
        if new != c.name and session.scalar(
            sa.select(SmartCollection.id).where(SmartCollection.user_id == user_id, SmartCollection.name == new)
        ):
            raise Conflict(f"Smart collection '{new}' already exists")
        c.name = new
    if description is not None:
        c.description = description
    if criteria is not None:
        c.filter_criteria = criteria
    if is_public is not None:
        c.is_public = is_public
    c.updated_at = utcnow()
    session.commit()
    return c


def delete_smart(session: Session, collection_id: int, user_id: int) -> str:
    c = owned_smart(session, collection_id, user_id)
    name = c.name
    session.delete(c)
    session.commit()
    return name


# --- virtual collections ----------------------------------------------------------------------------


def virtual_collections(
    session: Session, type_: str, user_id: int | None, limit: int | None = None, *, value: str | None = None
) -> list[dict[str, Any]]:
    """One collection per facet value (genre, franchise, company, IGDB collection, game mode).

    ``type_`` is one of those (``all`` for every type); ``limit`` keeps the largest ones.
    """
    if type_ == "all":
        types = list(VIRTUAL_TYPES)
    elif type_ in query.VIRTUAL_TYPES:
        types = [type_]
    else:
        raise BadRequest(f"Unknown virtual collection type {type_!r}; use all or one of {', '.join(VIRTUAL_TYPES)}")
    kinds = {query.VIRTUAL_TYPES[t]: t for t in types}
    fc = RomFacet.__table__
    visible_ids = sa.select(fc.c.rom_id).where(fc.c.rom_id.not_in(query.hidden_ids(user_id)))
    q = (
        sa.select(fc.c.kind, fc.c.value, fc.c.rom_id)
        .join(Rom.__table__, Rom.__table__.c.id == fc.c.rom_id)
        .where(fc.c.kind.in_(list(kinds)), fc.c.rom_id.in_(visible_ids))
        .order_by(fc.c.kind, fc.c.value, Rom.__table__.c.name_sort_key, fc.c.rom_id)
    )
    if value is not None:
        q = q.where(fc.c.value == value)
    rows = session.execute(q)
    groups: dict[tuple[str, str], list[int]] = {}
    for kind, value, rom_id in rows:
        groups.setdefault((kinds[kind], value), []).append(rom_id)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0][0], kv[0][1].lower()))
    if limit is not None:
        ordered = ordered[: max(0, limit)]
    now = utcnow()
    out = []
    for (t, value), rom_ids in ordered:
        small, large = _rom_covers(session, rom_ids)
        out.append(
            {
                "name": value,
                "description": f"{t.capitalize()}: {value}",
                "rom_ids": rom_ids,
                "rom_count": len(rom_ids),
                "path_cover_small": None,
                "path_cover_large": None,
                "path_covers_small": small,
                "path_covers_large": large,
                "is_public": True,
                "is_favorite": False,
                "is_virtual": True,
                "is_smart": False,
                "created_at": now,
                "updated_at": now,
                "id": query.encode_virtual_id(value, t),
                "type": t,
            }
        )
    return out


def virtual_collection_rom_ids(session: Session, virtual_id: str, user_id: int | None) -> list[int]:
    """The ROMs of a virtual collection for this caller, in list (name) order (NotFound if the id
    is not a virtual collection id). Used by bulk downloads (``virtual_collection_id``)."""
    try:
        query.decode_virtual_id(virtual_id)
    except FilterError:
        raise NotFound(f"Virtual collection with id '{virtual_id}' not found") from None
    f = RomFilters(virtual_collection_id=virtual_id)
    return list(session.scalars(query.ordered(session, f, Order(), user_id)))


def virtual_collection(session: Session, virtual_id: str, user_id: int | None) -> dict[str, Any]:
    try:
        name, type_ = query.decode_virtual_id(virtual_id)
    except FilterError:
        raise NotFound(f"Virtual collection with id '{virtual_id}' not found") from None
    for c in virtual_collections(session, type_, user_id, value=name):
        return c
    raise NotFound(f"Virtual collection with id '{virtual_id}' not found")
