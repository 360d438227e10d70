"""Metadata derived from the provider blobs (RomM's ``RomMetadataSchema``), with RomM's precedence.

The derived values live in the ``roms.meta_*`` columns so that lists, filters and sorts read
plain indexed columns (and, through triggers, the ``rom_facets`` table) instead of JSON blobs.
They are recomputed automatically whenever the ORM flushes a ``Rom`` whose blobs changed; code
that writes blobs with Core statements calls :func:`refresh_derived` afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from romshelf.roms.models import METADATA_BLOBS, Rom

HASHEOUS_MATCH_KEYS = (
    "tosec_match",
    "mame_arcade_match",
    "mame_mess_match",
    "nointro_match",
    "redump_match",
    "mame_redump_match",
    "whdload_match",
    "ra_match",
    "fbneo_match",
    "puredos_match",
)

_GENRES = ("manual", "igdb", "moby", "ss", "launchbox", "ra", "flashpoint", "gamelist")
_FRANCHISES = ("manual", "igdb", "ss", "flashpoint", "gamelist")
_COMPANIES = ("manual", "igdb", "ss", "ra", "launchbox", "flashpoint", "gamelist")
_GAME_MODES = ("manual", "igdb", "ss", "flashpoint")
_PLAYER_COUNT = ("manual", "ss", "igdb", "gamelist")
_RELEASE_SECONDS = ("igdb", "ss", "ra", "launchbox", "flashpoint")

DERIVED_COLUMNS = (
    "meta_genres",
    "meta_franchises",
    "meta_collections",
    "meta_companies",
    "meta_game_modes",
    "meta_age_ratings",
    "meta_player_count",
    "meta_first_release_date",
    "meta_average_rating",
    "meta_verified",
)


def _blob(blobs: Mapping[str, Any], provider: str) -> Mapping[str, Any]:
    value = blobs.get(f"{provider}_metadata")
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    """A clean, de-duplicated list of non-empty strings (keeps order)."""
    if not isinstance(value, (list, tuple)):
        return []
    out: list[str] = []
    for item in value:
        if isinstance(item, Mapping):  # e.g. {"name": "Nintendo"} or an age rating object
            item = item.get("name") or item.get("rating")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            item = str(item)
        if isinstance(item, str):
            s = item.strip()
            if s and s not in out:
                out.append(s)
    return out


def _first_list(blobs: Mapping[str, Any], providers: Sequence[str], key: str) -> list[str]:
    for p in providers:
        values = _strings(_blob(blobs, p).get(key))
        if values:
            return sorted(values)
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def date_ms(value: Any) -> int | None:
    """Epoch milliseconds from an ISO date/datetime or a gamelist ``19910101T000000`` string."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for fmt in ("%Y%m%dT%H%M%S", "%Y-%m-%d", "%Y"):
        try:
            parsed = dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
            return int(parsed.timestamp() * 1000)
        except ValueError:
            continue
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def _release_date(blobs: Mapping[str, Any]) -> int | None:
    manual = _blob(blobs, "manual").get("first_release_date")
    if manual is not None and not isinstance(manual, bool):
        if isinstance(manual, (int, float)):
            return int(manual)
        ms = date_ms(manual)
        if ms is not None:
            return ms
    for p in _RELEASE_SECONDS:
        value = _blob(blobs, p).get("first_release_date")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value * 1000)
        ms = date_ms(value)
        if ms is not None:
            return ms
    return date_ms(_blob(blobs, "gamelist").get("first_release_date"))


def _average_rating(blobs: Mapping[str, Any]) -> float | None:
    ratings: list[float] = []
    for provider, key, scale in (
        ("igdb", "total_rating", 1.0),
        ("moby", "moby_score", 10.0),
        ("ss", "ss_score", 10.0),
        ("launchbox", "community_rating", 20.0),
        ("gamelist", "rating", 100.0),
    ):
        value = _number(_blob(blobs, provider).get(key))
        if value is not None and value > 0:
            ratings.append(value * scale)
    if not ratings:
        return None
    return round(sum(ratings) / len(ratings), 2)


def _player_count(blobs: Mapping[str, Any]) -> str:
    for p in _PLAYER_COUNT:
        value = _blob(blobs, p).get("player_count")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip() and value.strip() != "1":
            return value.strip()[:100]
    return "1"


def _age_ratings(blobs: Mapping[str, Any]) -> list[str]:
    manual = _strings(_blob(blobs, "manual").get("age_ratings"))
    if manual:
        return sorted(manual)
    for p in ("igdb", "ss"):
        values = _strings(_blob(blobs, p).get("age_ratings"))
        if values:
            return sorted(values)
    esrb = _blob(blobs, "launchbox").get("esrb")
    if isinstance(esrb, str) and esrb.strip():
        return [esrb.strip()]
    return []


def derive(blobs: Mapping[str, Any]) -> dict[str, Any]:
    """The ``meta_*`` column values for a ROM's metadata blobs (keys ``igdb_metadata`` ...)."""
    hasheous = _blob(blobs, "hasheous")
    return {
        "meta_genres": _first_list(blobs, _GENRES, "genres"),
        "meta_franchises": _first_list(blobs, _FRANCHISES, "franchises"),
        "meta_collections": _first_list(blobs, ("igdb",), "collections"),
        "meta_companies": _first_list(blobs, _COMPANIES, "companies"),
        "meta_game_modes": _first_list(blobs, _GAME_MODES, "game_modes"),
        "meta_age_ratings": _age_ratings(blobs),
        "meta_player_count": _player_count(blobs),
        "meta_first_release_date": _release_date(blobs),
        "meta_average_rating": _average_rating(blobs),
        "meta_verified": any(hasheous.get(k) is True for k in HASHEOUS_MATCH_KEYS),
    }


def alternative_names(blobs: Mapping[str, Any]) -> list[str]:
    for provider, key in (("igdb", "alternative_names"), ("moby", "alternate_titles"), ("ss", "alternative_names")):
        names = _strings(_blob(blobs, provider).get(key))
        if names:
            return sorted(names)
    return []


def youtube_video_id(blobs: Mapping[str, Any]) -> str | None:
    for p in ("manual", "igdb", "launchbox"):
        value = _blob(blobs, p).get("youtube_video_id")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def path_video(blobs: Mapping[str, Any]) -> str | None:
    ss = _blob(blobs, "ss")
    for value in (
        ss.get("video_path"),
        ss.get("video_normalized_path"),
        _blob(blobs, "gamelist").get("video_path"),
        _blob(blobs, "launchbox").get("video_path"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def apply(rom: Rom) -> None:
    """Recompute the derived columns of one ORM object from its blobs."""
    values = derive({name: getattr(rom, name) for name in METADATA_BLOBS})
    for key, value in values.items():
        if getattr(rom, key, None) != value:
            setattr(rom, key, value)


def refresh_derived(session: Session, rom_ids: Iterable[int]) -> int:
    """Recompute ``meta_*`` for these ROMs after a Core (non-ORM) write of their blobs.

    Does not commit. Returns the number of rows changed.
    """
    ids = list(rom_ids)
    changed = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        cols = [Rom.id, *(getattr(Rom, b) for b in METADATA_BLOBS), *(getattr(Rom, c) for c in DERIVED_COLUMNS)]
        for row in session.execute(sa.select(*cols).where(Rom.id.in_(chunk))):
            m = row._mapping
            values = derive({b: m[b] for b in METADATA_BLOBS})
            if any(m[k] != v for k, v in values.items()):
                session.execute(sa.update(Rom).where(Rom.id == m["id"]).values(**values))
                changed += 1
    return changed


@event.listens_for(Session, "before_flush")
def _derive_before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
    """Keep ``meta_*`` in step with the blobs for every ORM insert or blob update."""
    for obj in session.new:
        if isinstance(obj, Rom):
            apply(obj)
    for obj in session.dirty:
        if isinstance(obj, Rom) and _blobs_modified(obj):
            apply(obj)


def _blobs_modified(rom: Rom) -> bool:
    state = sa.inspect(rom)
    for name in METADATA_BLOBS:
        attr = state.attrs[name]
        if attr.history.has_changes():
            return True
    return False
