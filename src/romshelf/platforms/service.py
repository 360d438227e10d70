"""Platform rules: creating a platform for a folder name, listing with ROM counts and sizes."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from romshelf.core.errors import BadRequest, NotFound
from romshelf.core.paths import check_plain_filename
from romshelf.platforms import catalog
from romshelf.platforms.models import Platform
from romshelf.roms.models import Rom


def validate_fs_slug(fs_slug: str) -> str:
    fs_slug = check_plain_filename(fs_slug.strip(), what="platform folder name")
    if len(fs_slug) > 100:
        raise BadRequest("Invalid platform folder name: longer than 100 characters")
    if fs_slug.startswith("."):
        raise BadRequest("Invalid platform folder name: hidden folders are not platforms")
    return fs_slug


def new_platform(fs_slug: str) -> Platform:
    info = catalog.lookup(fs_slug)
    if info is None:
        return Platform(slug=fs_slug.lower(), fs_slug=fs_slug, name=catalog.fallback_name(fs_slug))
    return Platform(
        slug=info.slug,
        fs_slug=fs_slug,
        name=info.name,
        category=info.category,
        generation=info.generation,
        family_name=info.family,
        family_slug=info.family_slug,
    )


def get_or_create(session: Session, fs_slug: str) -> Platform:
    """The platform for a library folder, created if new. Safe against concurrent creators:
    the insert runs in a savepoint and a lost race reads the winner's row. Does not commit."""
    fs_slug = validate_fs_slug(fs_slug)
    existing = session.scalar(sa.select(Platform).where(Platform.fs_slug == fs_slug))
    if existing is not None:
        return existing
    platform = new_platform(fs_slug)
    try:
        with session.begin_nested():
            session.add(platform)
    except IntegrityError:
        found = session.scalar(sa.select(Platform).where(Platform.fs_slug == fs_slug))
        if found is None:
            raise
        return found
    return platform


@dataclass(frozen=True)
class PlatformStats:
    rom_count: int = 0
    fs_size_bytes: int = 0


def stats(session: Session, platform_ids: list[int] | None = None) -> dict[int, PlatformStats]:
    """ROM count and total size per platform, in one grouped query (index-only on SQL engines)."""
    q = sa.select(Rom.platform_id, sa.func.count(), sa.func.coalesce(sa.func.sum(Rom.fs_size_bytes), 0)).group_by(
        Rom.platform_id
    )
    if platform_ids is not None:
        q = q.where(Rom.platform_id.in_(platform_ids))
    return {pid: PlatformStats(int(n), int(size)) for pid, n, size in session.execute(q)}


def list_platforms(session: Session) -> list[tuple[Platform, PlatformStats]]:
    platforms = list(session.scalars(sa.select(Platform).order_by(Platform.name, Platform.id)))
    st = stats(session)
    return [(p, st.get(p.id, PlatformStats())) for p in platforms]


def get(session: Session, platform_id: int) -> Platform:
    platform = session.get(Platform, platform_id)
    if platform is None:
        raise NotFound(f"Platform with id '{platform_id}' not found")
    return platform
