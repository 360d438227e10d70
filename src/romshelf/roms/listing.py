"""``GET /api/roms``: the page, the id index, the char index and the filter values.

How it stays fast on a large library:

* The ordered id index (``rom_id_index``), the char index and ``total`` come from **one**
  ordered scan that the database aggregates into two strings (comma-separated ids, and the
  first letter of each row's sort key); nothing is materialised row by row in Python.
* ``filter_values`` comes from the trigger-maintained ``rom_facets`` table (DISTINCT over an
  index), not from the ROM rows.
* Both are cached per process, keyed by (caller, filters, order) and validated by the
  trigger-maintained ``change_counters``: one tiny query per request tells whether anything a
  list depends on changed, on this replica or any other. Filters on saves/states (which the
  counters do not cover) are never cached.
* The page itself is ``rom_id_index[offset:offset+limit]`` re-read by primary key and rendered
  from Core rows (``roms.render``).
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf import __version__
from romshelf.core.http import weak_etag
from romshelf.roms import query, render
from romshelf.roms.models import ChangeCounter, Rom, RomFacet
from romshelf.roms.query import Order, RomFilters
from romshelf.saves.models import Screenshot
from romshelf.saves.schemas import download_path

roms = Rom.__table__
NO_LETTER = "\x01"  # stands in for an empty sort key in the letters string
_RUNS = re.compile(r"(.)\1*", re.DOTALL)
_SQLITE_ORDERED_AGG = sqlite3.sqlite_version_info >= (3, 44, 0)
FILTER_VALUE_KEYS = (
    ("genres", "genres"),
    ("franchises", "franchises"),
    ("collections", "collections"),
    ("companies", "companies"),
    ("game_modes", "game_modes"),
    ("age_ratings", "age_ratings"),
    ("player_counts", "player_count"),
    ("regions", "regions"),
    ("languages", "languages"),
    ("tags", "tags"),
)

T = TypeVar("T")


@dataclass(frozen=True)
class ListOptions:
    limit: int = 50
    offset: int = 0
    with_char_index: bool = True
    with_filter_values: bool = True
    with_rom_id_index: bool = True
    with_total: bool = True
    with_files: bool = False


@dataclass
class IdIndex:
    """Every matching id in list order (as RomM's ``rom_id_index``) and each row's first letter."""

    csv: str
    letters: str

    def __post_init__(self) -> None:
        self.count = self.csv.count(",") + 1 if self.csv else 0
        self._json: bytes | None = None
        self._chars: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.csv) + len(self.letters) * 4 + 256

    def page(self, offset: int, limit: int) -> list[int]:
        if offset >= self.count:
            return []
        parts = self.csv.split(",", offset + limit)
        return [int(x) for x in parts[offset : offset + limit]]

    def json(self) -> bytes:
        if self._json is None:
            self._json = b"[" + self.csv.encode() + b"]"
        return self._json

    def char_index(self) -> dict[str, int]:
        """Offset of the first row whose sort key starts with each character."""
        first: dict[str, int] = {}
        for m in _RUNS.finditer(self.letters):
            ch = m.group(1)
            if ch != NO_LETTER and ch not in first:
                first[ch] = m.start()
        return dict(sorted(first.items()))

    def char_index_json(self) -> bytes:
        if self._chars is None:
            self._chars = render.dumps(self.char_index())
        return self._chars


class _Flight:
    """One computation in progress for a cache key, and how many threads want its result."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class ListCache:
    """A small LRU of list sidecars, each valid for one value of the change counters.

    Thread-safe; concurrent misses on one key compute once (the others wait for the result).
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Hashable, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, version: Hashable) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, version: Hashable, value: Any, size: int) -> None:
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._items[key] = (version, value, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                _k, (_v, _val, sz) = self._items.popitem(last=False)
                self._bytes -= sz

    def get_or_compute(
        self, key: Hashable, version: Hashable | None, compute: Callable[[], T], size: Callable[[T], int]
    ) -> T:
        if version is None:
            return compute()
        found = self.get(key, version)
        if found is not None:
            return found  # type: ignore[no-any-return]
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight()
            flight.users += 1
        try:
            with flight.lock:
                found = self.get(key, version)
                if found is not None:
                    return found  # type: ignore[no-any-return]
                self.misses += 1
                value = compute()
                self.put(key, version, value, size(value))
                return value
        finally:
            with self._lock:
                flight.users -= 1
                if flight.users == 0:
                    self._flights.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


_VERSIONS = sa.select(ChangeCounter.__table__.c.name, ChangeCounter.__table__.c.value)


class Versions(NamedTuple):
    """The change counters (see ``roms.triggers``)."""

    library: int
    userdata: int
    hidden: int

    def for_index(self, f: RomFilters, order: Order) -> tuple[int, ...]:
        """What an id index depends on: the library and hidden flags, plus all user data if the
        filter or the order reads it."""
        if f.uses_user_data or order.is_user or order.by == "status":
            return (self.library, self.userdata, self.hidden)
        return (self.library, self.hidden)


def read_versions(session: Session) -> Versions | None:
    """The change counters, or None if they are missing (nothing is cached then)."""
    rows = {name: value for name, value in session.execute(_VERSIONS)}
    try:
        return Versions(int(rows["library"]), int(rows["userdata"]), int(rows["hidden"]))
    except KeyError:
        return None


# --- the ordered scan -------------------------------------------------------------------------


def _letter(key: Any) -> Any:
    return sa.func.coalesce(sa.func.nullif(sa.func.substr(key, 1, 1), ""), sa.literal(NO_LETTER))


def fetch_index(session: Session, f: RomFilters, order: Order, user_id: int | None) -> IdIndex:
    """One ordered scan, aggregated by the database into (ids csv, letters)."""
    parts = query.ordered_parts(session, f, order, user_id)
    letter = _letter(query.char_key(order, parts.ru))
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite" and not _SQLITE_ORDERED_AGG:
        # SQLite < 3.44 has no ORDER BY inside aggregates; it feeds an aggregate from an
        # ORDER BY subquery in order (a co-routine; checked by the test suite).
        sub = parts.select(roms.c.id.label("id"), letter.label("l")).subquery()
        stmt = sa.select(sa.func.group_concat(sub.c.id, ","), sa.func.group_concat(sub.c.l, ""))
    else:
        if dialect in ("mysql", "mariadb"):
            session.execute(sa.text("SET SESSION group_concat_max_len = 4294967295"))
        ids = sa.func.aggregate_strings(sa.cast(roms.c.id, sa.String(20)), ",").aggregate_order_by(*parts.order_by)
        letters = sa.func.aggregate_strings(letter, "").aggregate_order_by(*parts.order_by)
        stmt = sa.select(ids, letters).select_from(parts.from_).where(*parts.where)
    csv, letters_s = session.execute(stmt).one()
    return IdIndex(csv or "", letters_s or "")


# --- filter values ----------------------------------------------------------------------------


def filter_values(session: Session, scope: RomFilters, user_id: int | None) -> dict[str, list[Any]]:
    """RomM's ``RomFiltersDict`` over the ROMs in scope (platform / collection / search only).

    Reads ``rom_facets``; when the caller hides ROMs or the scope is more than platforms, the
    facets are restricted to the matching ids with a subquery.
    """
    fc = RomFacet.__table__
    simple = scope == RomFilters(platform_ids=scope.platform_ids) and not query.user_has_hidden(session, user_id)
    if simple:
        # index-only DISTINCTs over the facet table and the platform index
        fq = sa.select(fc.c.kind, fc.c.value).distinct()
        pq = sa.select(roms.c.platform_id).distinct()
        if scope.platform_ids:
            fq = fq.where(fc.c.platform_id.in_(scope.platform_ids))
            pq = pq.where(roms.c.platform_id.in_(scope.platform_ids))
        rows = session.execute(fq).all()
        platforms = set(session.execute(pq).scalars())
    else:
        # one pass over the matching ROMs; distinct (kind, value, platform) triples are bounded
        # by the facet vocabulary, not by the number of ROMs
        q = (
            sa.select(fc.c.kind, fc.c.value, fc.c.platform_id)
            .distinct()
            # "+roms.id" on SQLite: drive the join from the (filtered) ROMs, never from the
            # whole facet table
            .select_from(roms.join(fc, fc.c.rom_id == query.NoIndex(roms.c.id)))
            .where(*query.conditions(session, scope, user_id))
        )
        rows, platforms = [], set()
        seen: set[tuple[str, str]] = set()
        for kind, value, platform_id in session.execute(q):
            platforms.add(platform_id)
            if (kind, value) not in seen:
                seen.add((kind, value))
                rows.append((kind, value))
    by_kind: dict[str, list[str]] = {kind: [] for _, kind in FILTER_VALUE_KEYS}
    for kind, value in rows:
        if kind in by_kind:
            by_kind[kind].append(value)
    out: dict[str, list[Any]] = {key: sorted(by_kind[kind]) for key, kind in FILTER_VALUE_KEYS}
    out["platforms"] = sorted(platforms)
    return out


EMPTY_FILTER_VALUES: dict[str, list[Any]] = {key: [] for key, _ in FILTER_VALUE_KEYS} | {"platforms": []}


def filter_values_json(
    session: Session, scope: RomFilters, user_id: int | None, cache: ListCache, versions: Versions | None
) -> bytes:
    """``filter_values`` as JSON, cached: over the plain library (no hidden ROMs) it depends on
    the library alone, so user-data writes do not invalidate it."""
    uid = user_id if user_id is not None else -1
    hides = cache.get_or_compute(
        ("hides", uid),
        (versions.hidden,) if versions is not None else None,
        lambda: query.user_has_hidden(session, user_id),
        lambda v: 64,
    )
    version: tuple[int, ...] | None = None
    if versions is not None:
        if scope.uses_user_data:
            version = tuple(versions)
        elif hides:
            version = (versions.library, versions.hidden)
        else:
            version = (versions.library,)
    key = ("fv", uid if hides or scope.uses_user_data else 0, scope)
    return cache.get_or_compute(key, version, lambda: render.dumps(filter_values(session, scope, user_id)), len)


# --- the list -----------------------------------------------------------------------------------


@dataclass
class ListResult:
    body: bytes
    etag: str


def list_etag(versions: Versions, user_id: int | None, f: RomFilters, order: Order, opts: ListOptions) -> str:
    return weak_etag("roms", __version__, versions, user_id, f, order, opts)


def etag_cacheable(f: RomFilters) -> bool:
    """Whether everything the response shows is covered by the change counters."""
    return not f.uses_assets and f.last_played is None


def list_roms(
    session: Session,
    f: RomFilters,
    order: Order,
    opts: ListOptions,
    user_id: int | None,
    *,
    cache: ListCache | None = None,
    versions: Versions | None = None,
) -> ListResult:
    """The JSON body of ``GET /api/roms`` (RomM's ``CustomLimitOffsetPage[SimpleRomSchema]``)."""
    if cache is not None and versions is None:
        versions = read_versions(session)
    cacheable = cache is not None and versions is not None and not f.uses_assets
    version = versions.for_index(f, order) if cacheable and versions else None
    items_version = tuple(versions) if cacheable and versions else None
    cache = cache or ListCache(0)
    uid = user_id if user_id is not None else -1

    index: IdIndex | None = None
    need_index = opts.with_rom_id_index or opts.with_char_index
    if need_index:
        index = cache.get_or_compute(
            ("index", uid, f, order), version, lambda: fetch_index(session, f, order, user_id), lambda v: v.size
        )
    else:
        index = cache.get(("index", uid, f, order), version) if version is not None else None

    if index is not None:
        page_ids = index.page(opts.offset, opts.limit)
        total: int | None = index.count if (opts.with_rom_id_index or opts.with_total) else None
    else:
        stmt = query.ordered(session, f, order, user_id).limit(opts.limit).offset(opts.offset)
        page_ids = list(session.execute(stmt).scalars())
        total = None
        if opts.with_total:
            total = cache.get_or_compute(
                ("count", uid, f),
                version,
                lambda: int(session.execute(query.counted(session, f, user_id)).scalar_one()),
                lambda v: 64,
            )

    if f.last_played is not None:
        # The "continue playing" shape carries screenshots (not covered by the counters).
        items = render.load(session, page_ids, user_id, with_files=opts.with_files)
        for item in items:
            item["screenshot_path"] = None
        _add_screenshot_paths(session, items, user_id)
        items_json = render.dumps(items)
    else:
        items_json = render_items(session, cache, items_version, page_ids, user_id, opts.with_files)

    if opts.with_filter_values:
        fv_json = filter_values_json(session, f.scope(), user_id, cache, versions if cacheable else None)
    else:
        fv_json = render.dumps(EMPTY_FILTER_VALUES)

    body = b"".join(
        (
            b'{"items":',
            items_json,
            b',"total":',
            b"null" if total is None else str(total).encode(),
            b',"limit":',
            str(opts.limit).encode(),
            b',"offset":',
            str(opts.offset).encode(),
            b',"char_index":',
            index.char_index_json() if (index is not None and opts.with_char_index) else b"{}",
            b',"rom_id_index":',
            index.json() if (index is not None and opts.with_rom_id_index) else b"[]",
            b',"filter_values":',
            fv_json,
            b"}",
        )
    )
    if versions is not None and etag_cacheable(f):
        etag = list_etag(versions, user_id, f, order, opts)
    else:
        etag = weak_etag("roms-body", body)
    return ListResult(body, etag)


def render_items(
    session: Session,
    cache: ListCache,
    version: Hashable | None,
    ids: list[int],
    user_id: int | None,
    with_files: bool,
) -> bytes:
    """The JSON array of these ROMs as ``SimpleRomSchema`` items.

    Each rendered item is cached (per caller, valid for one value of the change counters), so
    paging, re-sorting and re-filtering a library re-use items instead of re-rendering them.
    """
    uid = user_id if user_id is not None else -1
    found: dict[int, bytes] = {}
    if version is not None:
        for rid in ids:
            hit = cache.get(("item", uid, rid, with_files), version)
            if hit is not None:
                found[rid] = hit
    missing = [rid for rid in ids if rid not in found]
    if missing:
        for item in render.load(session, missing, user_id, with_files=with_files):
            item["screenshot_path"] = None
            encoded = render.dumps(item)
            found[item["id"]] = encoded
            if version is not None:
                cache.put(("item", uid, item["id"], with_files), version, encoded, len(encoded) + 200)
    return b"[" + b",".join(found[rid] for rid in ids if rid in found) + b"]"


def _add_screenshot_paths(session: Session, items: list[dict[str, Any]], user_id: int | None) -> None:
    """The caller's newest screenshot per ROM (RomM's "continue playing" rail)."""
    ids = [i["id"] for i in items]
    shots = session.scalars(
        sa.select(Screenshot)
        .where(Screenshot.rom_id.in_(ids), Screenshot.user_id == (user_id if user_id is not None else -1))
        .order_by(Screenshot.created_at.desc(), Screenshot.id.desc())
    ).all()
    newest: dict[int, Screenshot] = {}
    for s in shots:
        newest.setdefault(s.rom_id, s)
    for item in items:
        shot = newest.get(item["id"])
        item["screenshot_path"] = download_path("screenshots", shot) if shot else None


def identifiers(
    session: Session, user_id: int | None, *, cache: ListCache | None = None, versions: Versions | None = None
) -> bytes:
    """``GET /api/roms/identifiers``: every visible ROM id, in name order, as a JSON array."""
    f, order = RomFilters(), Order()
    if cache is not None and versions is None:
        versions = read_versions(session)
    version = versions.for_index(f, order) if (cache is not None and versions is not None) else None
    cache = cache or ListCache(0)
    uid = user_id if user_id is not None else -1
    index = cache.get_or_compute(
        ("index", uid, f, order), version, lambda: fetch_index(session, f, order, user_id), lambda v: v.size
    )
    return index.json()


def with_items_only(opts: ListOptions) -> ListOptions:
    return dataclasses.replace(opts, with_char_index=False, with_filter_values=False, with_rom_id_index=False)
