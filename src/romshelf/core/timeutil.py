"""UTC time helpers: every timestamp romshelf stores or returns is timezone-aware UTC."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def isoformat(value: dt.datetime | None) -> str | None:
    """ISO 8601 with an explicit offset (``2026-01-31T12:00:00+00:00``)."""
    if value is None:
        return None
    return to_utc(value).isoformat()


def http_date(value: dt.datetime) -> str:
    """RFC 9110 IMF-fixdate, for Last-Modified and friends."""
    return to_utc(value).strftime("%a, %d %b %Y %H:%M:%S GMT")
