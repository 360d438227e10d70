"""Which ROMs match a filter, in which order: the SQL behind ``GET /api/roms`` and friends.

:class:`RomFilters` is the parsed form of the list parameters (and of a smart collection's saved
criteria); :func:`matching_ids` turns it into a ``SELECT roms.id ...`` with every filter applied
as an indexed condition; :func:`ordered` adds the sort with the ``id`` tie-breaker that keeps
pages stable. Behaviour follows RomM's (reference/romm_roms.md §3) with the deviations noted on
each function. No Python-side filtering: everything runs in the database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from romshelf.collections.models import Collection, CollectionRom, SmartCollection
from romshelf.core.errors import UnprocessableEntity
from romshelf.platforms.catalog import PLAYABLE_SLUGS
from romshelf.platforms.models import Platform
from romshelf.roms.models import FACET_VALUE_MAX, ROM_USER_STATUSES, Rom, RomFacet, RomFile, RomUser
from romshelf.saves.models import Save, State

LOGICS = ("any", "all", "none")
TRI_STATES = (
    "matched",
    "favorite",
    "duplicate",
    "last_played",
    "playable",
    "missing",
    "has_ra",
    "has_saves",
    "has_states",
    "verified",
    "has_soundtrack",
)
# list parameter -> facet kind
FACET_FILTERS = {
    "genres": "genres",
    "franchises": "franchises",
    "collections": "collections",
    "companies": "companies",
    "age_ratings": "age_ratings",
    "regions": "regions",
    "languages": "languages",
    "tags": "tags",
    "player_counts": "player_count",
}
MULTI_VALUE = (*FACET_FILTERS, "statuses", "metadata_providers")
STATUS_FLAGS = ("now_playing", "backlogged", "hidden")
STATUS_VALUES = (*STATUS_FLAGS, *ROM_USER_STATUSES)
# metadata provider slug -> Rom id column
PROVIDERS: dict[str, str] = {
    "igdb": "igdb_id",
    "ss": "ss_id",
    "moby": "moby_id",
    "launchbox": "launchbox_id",
    "ra": "ra_id",
    "hasheous": "hasheous_id",
    "tgdb": "tgdb_id",
    "flashpoint": "flashpoint_id",
    "hltb": "hltb_id",
    "gamelist": "gamelist_id",
    "libretro": "libretro_id",
}
MATCHED_IDS = ("igdb_id", "moby_id", "ss_id", "ra_id", "launchbox_id", "hasheous_id", "tgdb_id", "flashpoint_id")
SIBLING_IDS = ("igdb_id", "moby_id", "ss_id", "launchbox_id", "ra_id", "hasheous_id", "tgdb_id")
# group_by_meta_id: the first non-null id names the group (per platform)
GROUP_IDS = ("igdb_id", "ss_id", "moby_id", "ra_id", "hasheous_id", "launchbox_id", "tgdb_id", "flashpoint_id")
PRERELEASE_MARKERS = ("(demo", "(beta", "(proto", "(sample", "(kiosk", "(preview")
REGION_PRIORITY = ("USA", "World", "Europe", "Japan")
# virtual collection type -> facet kind
VIRTUAL_TYPES = {
    "collection": "collections",
    "franchise": "franchises",
    "genre": "genres",
    "company": "companies",
    "mode": "game_modes",
}

# order_by values: Rom columns, derived metadata, and the caller's RomUser columns
# Any plain (non-JSON) ROM column may be sorted on, as in RomM.
ORDER_ROM_COLUMNS = tuple(
    c.name
    for c in Rom.__table__.c
    if not isinstance(c.type, sa.JSON) and not c.name.startswith("meta_") and c.name != "name_sort_key"
)
ORDER_META = {
    "first_release_date": "meta_first_release_date",
    "average_rating": "meta_average_rating",
    "player_count": "meta_player_count",
}
ORDER_USER = {
    "last_played": None,
    "rating": 0,
    "difficulty": 0,
    "completion": 0,
    "status": None,
    "backlogged": False,
    "now_playing": False,
    "hidden": False,
    "is_main_sibling": False,
}
ORDER_BY_VALUES = ("", *ORDER_ROM_COLUMNS, *ORDER_META, *ORDER_USER)
STRING_ORDERS = {
    c.name for c in Rom.__table__.c if isinstance(c.type, (sa.String, sa.Text)) and not isinstance(c.type, sa.JSON)
}

_HEX = re.compile(r"^[0-9a-fA-F]+$")


class NoIndex(ColumnElement[Any]):
    """A column SQLite must not use an index for (``+col``); the bare column elsewhere.

    Sorting with selective filters, SQLite would otherwise read the whole table in index
    order, one random lookup per row, instead of filtering in one pass and sorting the few
    matches; in a join, it steers SQLite to drive the join from the other table.
    """

    inherit_cache = True
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]

    def __init__(self, inner: ColumnElement[Any]) -> None:
        self.inner = inner
        self.type = inner.type


@compiles(NoIndex)
def _no_index(element: NoIndex, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.inner, **kw))


@compiles(NoIndex, "sqlite")
def _no_index_sqlite(element: NoIndex, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.inner, **kw))


class FilterError(UnprocessableEntity):
    """A bad list parameter or smart-collection criterion: 422 in FastAPI's error shape."""

    def __init__(self, field: str, msg: str, value: Any = None, where: str = "query") -> None:
        shown = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        super().__init__([{"type": "value_error", "loc": [where, field], "msg": msg, "input": shown}])
        self.field = field
        self.msg = msg


_MAX_SMART_DEPTH = 3


@dataclass(frozen=True)
class RomFilters:
    """Every filter of ``GET /api/roms``; hashable (a cache key) once normalised."""

    search_term: str | None = None
    platform_ids: tuple[int, ...] = ()
    collection_id: int | None = None
    virtual_collection_id: str | None = None
    smart_collection_id: int | None = None
    matched: bool | None = None
    favorite: bool | None = None
    duplicate: bool | None = None
    last_played: bool | None = None
    playable: bool | None = None
    missing: bool | None = None
    has_ra: bool | None = None
    has_saves: bool | None = None
    has_states: bool | None = None
    verified: bool | None = None
    has_soundtrack: bool | None = None
    genres: tuple[str, ...] = ()
    genres_logic: str = "any"
    franchises: tuple[str, ...] = ()
    franchises_logic: str = "any"
    collections: tuple[str, ...] = ()
    collections_logic: str = "any"
    companies: tuple[str, ...] = ()
    companies_logic: str = "any"
    age_ratings: tuple[str, ...] = ()
    age_ratings_logic: str = "any"
    regions: tuple[str, ...] = ()
    regions_logic: str = "any"
    languages: tuple[str, ...] = ()
    languages_logic: str = "any"
    tags: tuple[str, ...] = ()
    tags_logic: str = "any"
    metadata_providers: tuple[str, ...] = ()
    metadata_providers_logic: str = "any"
    statuses: tuple[str, ...] = ()
    statuses_logic: str = "any"
    player_counts: tuple[str, ...] = ()
    player_counts_logic: str = "any"
    updated_after: dt.datetime | None = None
    group_by_meta_id: bool = False

    def scope(self) -> RomFilters:
        """Only the scope filters (what ``filter_values`` is computed over, as RomM does)."""
        return RomFilters(
            search_term=self.search_term,
            platform_ids=self.platform_ids,
            collection_id=self.collection_id,
            virtual_collection_id=self.virtual_collection_id,
            smart_collection_id=self.smart_collection_id,
        )

    @property
    def uses_assets(self) -> bool:
        """Depends on saves/states (not covered by the change counters)."""
        return self.has_saves is not None or self.has_states is not None

    @property
    def uses_user_data(self) -> bool:
        """Depends on the caller's rom_user rows or collections beyond the hidden flag."""
        return (
            self.favorite is not None
            or self.last_played is not None
            or bool(self.statuses)
            or self.collection_id is not None
            or self.smart_collection_id is not None
            or self.group_by_meta_id  # picks the caller's main sibling
        )

    @property
    def is_empty(self) -> bool:
        return self == RomFilters()


@dataclass(frozen=True)
class Order:
    by: str = ""
    desc: bool = False

    @property
    def is_user(self) -> bool:
        return self.by in ORDER_USER


def _clean_strings(values: Iterable[Any] | None, what: str) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or ():
        if not isinstance(v, str):
            raise FilterError(what, "expected text values", v)
        s = v.strip()[:FACET_VALUE_MAX]
        if s and s not in out:
            out.append(s)
    return tuple(out)


def _logic(value: Any, name: str) -> str:
    if value is None:
        return "any"
    v = (value or "any").strip().lower() if isinstance(value, str) else value
    if v not in LOGICS:
        raise FilterError(name, "must be one of any, all, none", value)
    return str(v)


def _tri(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off"):
        return False
    raise FilterError(name, "must be true or false", value)


def _ints(values: Any, name: str) -> tuple[int, ...]:
    if values is None:
        return ()
    if isinstance(values, (int, str)) and not isinstance(values, bool):
        values = [values]
    out: list[int] = []
    for v in values:
        try:
            i = int(v)
        except (TypeError, ValueError):
            raise FilterError(name, "must be integers", v) from None
        if i not in out:
            out.append(i)
    return tuple(sorted(out))


def _opt_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FilterError(name, "must be an integer", value) from None


def build_filters(params: Mapping[str, Any]) -> RomFilters:
    """Validate and normalise list parameters (query params or smart collection criteria).

    Raises :class:`FilterError` (422) with a message naming the bad parameter. Unknown keys are ignored
    (smart collections saved by other clients may carry UI-only keys).
    """
    kw: dict[str, Any] = {}
    term = params.get("search_term")
    if term is not None and not isinstance(term, str):
        raise FilterError("search_term", "must be text", term)
    kw["search_term"] = term.strip() or None if isinstance(term, str) else None
    platform_ids = list(_ints(params.get("platform_ids"), "platform_ids"))
    if params.get("platform_id") not in (None, ""):
        platform_ids += _ints(params.get("platform_id"), "platform_id")
    kw["platform_ids"] = tuple(sorted(set(platform_ids)))
    kw["collection_id"] = _opt_int(params.get("collection_id"), "collection_id")
    kw["smart_collection_id"] = _opt_int(params.get("smart_collection_id"), "smart_collection_id")
    vc = params.get("virtual_collection_id")
    if vc not in (None, ""):
        if not isinstance(vc, str):
            raise FilterError("virtual_collection_id", "must be text", vc)
        decode_virtual_id(vc)  # validates
        kw["virtual_collection_id"] = vc
    for name in TRI_STATES:
        kw[name] = _tri(params.get(name), name)
    for name in MULTI_VALUE:
        kw[name] = _clean_strings(params.get(name), name)
        kw[f"{name}_logic"] = _logic(params.get(f"{name}_logic"), f"{name}_logic")
    bad = [s for s in kw["statuses"] if s not in STATUS_VALUES]
    if bad:
        raise FilterError("statuses", f"unknown status; use one of {', '.join(STATUS_VALUES)}", bad[0])
    bad = [p for p in kw["metadata_providers"] if p not in PROVIDERS]
    if bad:
        raise FilterError("metadata_providers", f"unknown provider; use one of {', '.join(PROVIDERS)}", bad[0])
    ua = params.get("updated_after")
    if isinstance(ua, str) and ua:
        try:
            ua = dt.datetime.fromisoformat(ua.replace("Z", "+00:00"))
        except ValueError:
            raise FilterError("updated_after", "must be an ISO 8601 date-time", ua) from None
    if ua is not None and not isinstance(ua, dt.datetime):
        raise FilterError("updated_after", "must be an ISO 8601 date-time", ua)
    if isinstance(ua, dt.datetime):
        ua = ua.replace(tzinfo=dt.UTC) if ua.tzinfo is None else ua.astimezone(dt.UTC)
    kw["updated_after"] = ua or None
    kw["group_by_meta_id"] = bool(_tri(params.get("group_by_meta_id"), "group_by_meta_id"))
    return RomFilters(**kw)


def build_order(order_by: str | None, order_dir: str | None) -> Order:
    by = (order_by or "").strip().lower()
    if by not in ORDER_BY_VALUES:
        raise FilterError(
            "order_by", f"unknown field; use one of {', '.join(v for v in ORDER_BY_VALUES if v)}", order_by
        )
    direction = (order_dir or "asc").strip().lower()
    if direction not in ("asc", "desc"):
        raise FilterError("order_dir", "must be asc or desc", order_dir)
    return Order(by, direction == "desc")


def filters_to_criteria(f: RomFilters) -> dict[str, Any]:
    """The non-default fields as a JSON-able dict (smart collection criteria, summaries)."""
    out: dict[str, Any] = {}
    for fld in fields(f):
        value = getattr(f, fld.name)
        if value == fld.default:
            continue
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        out[fld.name] = value
    return out


def encode_virtual_id(name: str, type_: str) -> str:
    raw = json.dumps({"name": name, "type": type_}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_virtual_id(value: str) -> tuple[str, str]:
    """(name, type) of a virtual collection id; 400 if it is not one."""
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        name, type_ = data["name"], data["type"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise FilterError("virtual_collection_id", "not a virtual collection id", value) from None
    if not isinstance(name, str) or type_ not in VIRTUAL_TYPES:
        raise FilterError("virtual_collection_id", "not a virtual collection id", value)
    return name, type_


# --- SQL ------------------------------------------------------------------------------------------

roms = Rom.__table__
rom_user = RomUser.__table__


def user_row(user_id: int | None) -> Any:
    """The caller's rom_user rows as an alias, for a LEFT OUTER JOIN on ``roms.id``."""
    return rom_user.alias("ru")


def _user_join(from_: Any, ru: Any, user_id: int | None) -> Any:
    return from_.outerjoin(ru, sa.and_(ru.c.rom_id == roms.c.id, ru.c.user_id == (user_id or -1)))


def hidden_ids(user_id: int | None) -> sa.Select[Any]:
    return sa.select(rom_user.c.rom_id).where(rom_user.c.user_id == (user_id or -1), rom_user.c.hidden.is_(True))


def _search(term: str, session: Session) -> ColumnElement[bool]:
    """``|`` separates alternatives; within one, every word must be in the name or file name
    (case-insensitive substring). 8/32/40-hex terms also match ROM and file hashes."""
    alternatives: list[ColumnElement[bool]] = []
    sqlite = session.get_bind().dialect.name == "sqlite"
    for alt in term.split("|"):
        alt = alt.strip()
        if not alt:
            continue
        words = alt.split()
        if sqlite:
            # SQLite's LIKE ignores ASCII case already; lower() on both sides would double the work
            conds = [
                sa.or_(roms.c.name.contains(w, autoescape=True), roms.c.fs_name.contains(w, autoescape=True))
                for w in words
            ]
        else:
            conds = [
                sa.or_(roms.c.name.icontains(w, autoescape=True), roms.c.fs_name.icontains(w, autoescape=True))
                for w in words
            ]
        alternatives.append(sa.and_(*conds))
        if len(alt) in (8, 32, 40) and _HEX.match(alt):
            alternatives.append(roms.c.id.in_(_hash_ids(alt.lower(), session)))
    if not alternatives:
        return sa.true()
    return sa.or_(*alternatives)


def _hash_ids(value: str, session: Session) -> sa.CompoundSelect[Any]:
    """Ids of ROMs whose own or whose files' hash equals ``value`` (indexed lookups, UNION).

    Files also match on their headerless hashes (No-Intro's hashes of NES, FDS, Lynx, Atari 7800
    and copier-headed SNES dumps), so a DAT's hash finds the ROM."""
    rf = RomFile.__table__
    if len(value) == 8:
        rom_cols, file_cols = ("crc_hash",), ("crc_hash", "headerless_crc_hash")
    elif len(value) == 32:
        rom_cols, file_cols = ("md5_hash", "ra_hash"), ("md5_hash", "ra_hash", "headerless_md5_hash")
    else:
        rom_cols, file_cols = ("sha1_hash",), ("sha1_hash", "chd_sha1_hash", "headerless_sha1_hash")
    parts: list[sa.Select[Any]] = [sa.select(roms.c.id).where(roms.c[c] == value).correlate(None) for c in rom_cols]
    parts += [sa.select(rf.c.rom_id).where(rf.c[c] == value).correlate(None) for c in file_cols]
    return sa.union(*parts)


def _facet(kind: str, values: Sequence[str], logic: str) -> ColumnElement[bool]:
    fc = RomFacet.__table__
    sub = sa.select(fc.c.rom_id).where(fc.c.kind == kind, fc.c.value.in_(values))
    if logic == "all" and len(values) > 1 and kind != "player_count":
        sub = sub.group_by(fc.c.rom_id).having(sa.func.count(sa.distinct(fc.c.value)) == len(values))
    if logic == "none":
        return roms.c.id.not_in(sub)
    return roms.c.id.in_(sub)


def _sibling_exists() -> ColumnElement[bool]:
    other = roms.alias("sib")
    same = sa.or_(*(sa.and_(roms.c[c].is_not(None), other.c[c] == roms.c[c]) for c in SIBLING_IDS))
    return sa.exists().where(other.c.platform_id == roms.c.platform_id, other.c.id != roms.c.id, same)


def visible_collection(collection_id: int, user_id: int | None) -> ColumnElement[bool]:
    return sa.and_(
        Collection.__table__.c.id == collection_id,
        sa.or_(Collection.__table__.c.user_id == (user_id or -1), Collection.__table__.c.is_public.is_(True)),
    )


def load_smart_criteria(session: Session, collection_id: int, user_id: int | None) -> RomFilters | None:
    """The saved filters of a smart collection the caller may see (own or public), else None."""
    sc = SmartCollection.__table__
    criteria = session.execute(
        sa.select(sc.c.filter_criteria).where(
            sc.c.id == collection_id, sa.or_(sc.c.user_id == (user_id or -1), sc.c.is_public.is_(True))
        )
    ).scalar_one_or_none()
    if criteria is None:
        return None
    try:
        return build_filters(criteria if isinstance(criteria, Mapping) else {})
    except FilterError:
        return None  # saved by something else and no longer valid: matches nothing


def conditions(session: Session, f: RomFilters, user_id: int | None, _depth: int = 0) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a filter, each on ``roms`` (subqueries for related tables).

    Conditions that need the caller's rom_user row read it through correlated subqueries, so
    the base query stays ``FROM roms`` (no join, no duplicates).
    """
    uid = user_id or -1
    ru = rom_user
    c: list[ColumnElement[bool]] = []
    if f.platform_ids:
        c.append(roms.c.platform_id.in_(f.platform_ids))
    if f.collection_id is not None:
        cr = CollectionRom.__table__
        col = Collection.__table__
        c.append(
            roms.c.id.in_(
                sa.select(cr.c.rom_id)
                .join(col, col.c.id == cr.c.collection_id)
                .where(visible_collection(f.collection_id, user_id))
            )
        )
    if f.virtual_collection_id is not None:
        name, type_ = decode_virtual_id(f.virtual_collection_id)
        c.append(_facet(VIRTUAL_TYPES[type_], [name[:FACET_VALUE_MAX]], "any"))
    if f.smart_collection_id is not None:
        smart = load_smart_criteria(session, f.smart_collection_id, user_id) if _depth < _MAX_SMART_DEPTH else None
        if smart is None:
            c.append(sa.false())
        else:
            c.extend(conditions(session, replace(smart, group_by_meta_id=False), user_id, _depth + 1))
    if f.search_term:
        c.append(_search(f.search_term, session))

    def tri(value: bool | None, cond: ColumnElement[bool]) -> None:
        if value is True:
            c.append(cond)
        elif value is False:
            c.append(sa.not_(cond))

    tri(f.matched, sa.or_(*(roms.c[i].is_not(None) for i in MATCHED_IDS)))
    if f.favorite is not None:
        col = Collection.__table__
        cr = CollectionRom.__table__
        fav = (
            sa.select(cr.c.rom_id)
            .join(col, col.c.id == cr.c.collection_id)
            .where(col.c.user_id == uid, col.c.is_favorite.is_(True))
        )
        c.append(roms.c.id.in_(fav) if f.favorite else roms.c.id.not_in(fav))
    tri(f.duplicate, _sibling_exists())
    if f.last_played is not None:
        played = sa.select(ru.c.rom_id).where(ru.c.user_id == uid, ru.c.last_played.is_not(None))
        c.append(roms.c.id.in_(played) if f.last_played else roms.c.id.not_in(played))
    if f.playable is not None:
        playable = sa.select(Platform.__table__.c.id).where(Platform.__table__.c.slug.in_(sorted(PLAYABLE_SLUGS)))
        c.append(roms.c.platform_id.in_(playable) if f.playable else roms.c.platform_id.not_in(playable))
    tri(f.missing, roms.c.missing_from_fs.is_(True))
    tri(f.has_ra, roms.c.ra_id.is_not(None))
    for value, model in ((f.has_saves, Save), (f.has_states, State)):
        if value is not None:
            t = model.__table__
            mine = sa.exists().where(t.c.rom_id == roms.c.id, sa.or_(t.c.user_id == uid, t.c.is_public.is_(True)))
            c.append(mine if value else sa.not_(mine))
    tri(f.verified, roms.c.meta_verified.is_(True))
    if f.has_soundtrack is not None:
        rf = RomFile.__table__
        st = sa.select(rf.c.rom_id).where(rf.c.category == "soundtrack")
        c.append(roms.c.id.in_(st) if f.has_soundtrack else roms.c.id.not_in(st))
    if f.updated_after is not None:
        c.append(roms.c.updated_at > f.updated_after)
    for param, kind in FACET_FILTERS.items():
        values = getattr(f, param)
        if values:
            c.append(_facet(kind, values, getattr(f, f"{param}_logic")))
    if f.metadata_providers:
        present = [roms.c[PROVIDERS[p]].is_not(None) for p in f.metadata_providers]
        logic = f.metadata_providers_logic
        if logic == "all":
            c.append(sa.and_(*present))
        elif logic == "none":
            c.append(sa.not_(sa.or_(*present)))
        else:
            c.append(sa.or_(*present))
    if f.statuses:
        tests = []
        for s in f.statuses:
            if s in STATUS_FLAGS:
                tests.append(ru.c[s].is_(True))
            else:
                tests.append(ru.c.status == s)
        combined = sa.and_(*tests) if f.statuses_logic == "all" else sa.or_(*tests)
        matching = sa.select(ru.c.rom_id).where(ru.c.user_id == uid, combined)
        c.append(roms.c.id.not_in(matching) if f.statuses_logic == "none" else roms.c.id.in_(matching))
    if "hidden" not in f.statuses:
        # Without asking for "hidden", the caller's hidden ROMs never show.
        c.append(roms.c.id.not_in(hidden_ids(user_id)))
    return c


def _group_key_parts() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    kind = sa.case(
        *((roms.c[col].is_not(None), sa.literal(col)) for col in GROUP_IDS),
        else_=sa.literal("id"),
    )
    value = sa.case(
        *((roms.c[col].is_not(None), sa.cast(roms.c[col], sa.String(100))) for col in GROUP_IDS),
        else_=sa.cast(roms.c.id, sa.String(100)),
    )
    return kind, value


def _region_rank(session: Session) -> ColumnElement[Any]:
    first = first_json_item(roms.c.regions, session)
    return sa.case(*((first == r, i) for i, r in enumerate(REGION_PRIORITY)), else_=len(REGION_PRIORITY))


def first_json_item(col: Any, session: Session) -> ColumnElement[Any]:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return sa.type_coerce(col, sa.JSON).op("->>")(0)
    if name in ("mysql", "mariadb"):
        return sa.func.json_unquote(sa.func.json_extract(col, "$[0]"))
    return sa.func.json_extract(col, "$[0]")


def matching_ids(session: Session, f: RomFilters, user_id: int | None) -> sa.Select[Any]:
    """``SELECT roms.id FROM roms WHERE <filters>`` (grouped by metadata id if asked).

    Deviation from RomM: every filter, the user-hidden exclusion included, applies *before*
    ``group_by_meta_id`` picks each group's representative, so a hidden or filtered-out main
    sibling never makes its whole group disappear.
    """
    where = conditions(session, f, user_id)
    if not f.group_by_meta_id:
        return sa.select(roms.c.id).where(*where)
    ru = user_row(user_id)
    kind, value = _group_key_parts()
    lowered = sa.func.lower(roms.c.fs_name_no_ext)
    prerelease = sa.case((sa.or_(*(lowered.contains(m, autoescape=True) for m in PRERELEASE_MARKERS)), 1), else_=0)
    rn = (
        sa.func.row_number()
        .over(
            partition_by=(roms.c.platform_id, kind, value),
            order_by=(
                sa.func.coalesce(ru.c.is_main_sibling, sa.false()).desc(),
                prerelease.asc(),
                _region_rank(session).asc(),
                roms.c.fs_name_no_ext.asc(),
                roms.c.id.asc(),
            ),
        )
        .label("rn")
    )
    ranked = sa.select(roms.c.id, rn).select_from(_user_join(roms, ru, user_id)).where(*where).subquery("ranked")
    return sa.select(ranked.c.id).where(ranked.c.rn == 1)


def order_columns(order: Order, user_id: int | None, ru: Any, *, use_index: bool = True) -> list[ColumnElement[Any]]:
    """ORDER BY clauses: the key (NULLs last either way), then ``id`` as a stable tie-breaker."""
    by = order.by
    if by in ("", "name"):
        key: ColumnElement[Any] = roms.c.name_sort_key
    elif by in ORDER_META:
        key = roms.c[ORDER_META[by]]
    elif by in ORDER_USER:
        default = ORDER_USER[by]
        key = ru.c[by] if default is None else sa.func.coalesce(ru.c[by], default)
    else:
        key = roms.c[by]
    if not use_index:
        key = NoIndex(key)
    out: list[ColumnElement[Any]] = []
    nullable = by in ORDER_META or by in ("last_played", "status") or (by in roms.c and roms.c[by].nullable)
    if nullable:
        out.append(sa.case((key.is_(None), 1), else_=0).asc())
    out.append(key.desc() if order.desc else key.asc())
    out.append(roms.c.id.desc() if order.desc else roms.c.id.asc())
    return out


def char_key(order: Order, ru: Any) -> ColumnElement[Any]:
    """The column the char index is built on: the sort column if it is text, else the sort key."""
    if order.by in STRING_ORDERS and order.by != "name":
        return roms.c[order.by]
    if order.by == "player_count":
        return roms.c.meta_player_count
    if order.by == "status":
        return ru.c.status
    return roms.c.name_sort_key


@dataclass
class OrderedParts:
    """FROM, WHERE and ORDER BY of an ordered ROM query, for callers that aggregate over it."""

    from_: Any
    where: list[ColumnElement[bool]]
    order_by: list[ColumnElement[Any]]
    ru: Any

    def select(self, *cols: Any) -> sa.Select[Any]:
        return sa.select(*cols).select_from(self.from_).where(*self.where).order_by(*self.order_by)


def ordered_parts(session: Session, f: RomFilters, order: Order, user_id: int | None) -> OrderedParts:
    ru = user_row(user_id)
    needs_user = order.is_user or order.by == "status"
    from_: Any = _user_join(roms, ru, user_id) if needs_user else roms
    if f.group_by_meta_id:
        where = [roms.c.id.in_(matching_ids(session, f, user_id))]
    else:
        where = conditions(session, f, user_id)
    # Walk the sort index only when little is filtered out (see NoIndex).
    use_index = f == RomFilters() or f == RomFilters(platform_ids=f.platform_ids[:1])
    return OrderedParts(from_, where, order_columns(order, user_id, ru, use_index=use_index), ru)


def ordered(session: Session, f: RomFilters, order: Order, user_id: int | None, *cols: Any) -> sa.Select[Any]:
    """``SELECT <cols or roms.id> FROM roms [LEFT JOIN rom_user] WHERE ... ORDER BY ..., id``."""
    return ordered_parts(session, f, order, user_id).select(*(cols or (roms.c.id,)))


def counted(session: Session, f: RomFilters, user_id: int | None) -> sa.Select[Any]:
    inner = matching_ids(session, f, user_id).subquery()
    return sa.select(sa.func.count()).select_from(inner)


def rom_matches(session: Session, f: RomFilters, user_id: int | None, rom_id: int) -> bool:
    q = matching_ids(session, f, user_id).subquery()
    return session.execute(sa.select(q.c.id).where(q.c.id == rom_id).limit(1)).first() is not None


def user_has_hidden(session: Session, user_id: int | None) -> bool:
    if user_id is None:
        return False
    return session.execute(hidden_ids(user_id).limit(1)).first() is not None


def summarize(f: RomFilters) -> str:
    """A one-line human summary of a filter (smart collections' ``filter_summary``)."""
    parts: list[str] = []
    if f.search_term:
        parts.append(f'search "{f.search_term}"')
    if f.platform_ids:
        parts.append("platforms " + ", ".join(str(i) for i in f.platform_ids))
    if f.collection_id is not None:
        parts.append(f"collection {f.collection_id}")
    if f.virtual_collection_id is not None:
        name, type_ = decode_virtual_id(f.virtual_collection_id)
        parts.append(f"{type_} {name}")
    for name in TRI_STATES:
        value = getattr(f, name)
        if value is not None:
            parts.append(f"{name.replace('_', ' ')}: {'yes' if value else 'no'}")
    for name in MULTI_VALUE:
        values = getattr(f, name)
        if values:
            logic = getattr(f, f"{name}_logic")
            parts.append(f"{name.replace('_', ' ')} ({logic}): {', '.join(values)}")
    if f.updated_after is not None:
        parts.append(f"updated after {f.updated_after.isoformat()}")
    return "; ".join(parts) if parts else "All ROMs"
