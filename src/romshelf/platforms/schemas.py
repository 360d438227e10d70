"""RomM's PlatformSchema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from romshelf.core.schema import Schema, UTCDatetime
from romshelf.platforms.models import Platform
from romshelf.platforms.service import PlatformStats

_IDENTITY_IDS = ("igdb_id", "moby_id", "ss_id", "launchbox_id", "ra_id", "hasheous_id")


class PlatformSchema(Schema):
    id: int
    slug: str
    fs_slug: str
    rom_count: int
    name: str
    igdb_slug: str | None = None
    moby_slug: str | None = None
    hltb_slug: str | None = None
    libretro_slug: str | None = None
    custom_name: str | None = ""
    description: str | None = ""
    igdb_id: int | None = None
    sgdb_id: int | None = None
    moby_id: int | None = None
    launchbox_id: int | None = None
    ss_id: int | None = None
    ra_id: int | None = None
    hasheous_id: int | None = None
    tgdb_id: int | None = None
    flashpoint_id: int | None = None
    category: str | None = None
    generation: int | None = None
    family_name: str | None = None
    family_slug: str | None = None
    url: str | None = None
    url_logo: str | None = None
    firmware: list[dict[str, Any]] = Field(default_factory=list)
    created_at: UTCDatetime
    updated_at: UTCDatetime
    fs_size_bytes: int
    is_unidentified: bool
    is_identified: bool
    missing_from_fs: bool
    display_name: str
    firmware_count: int = 0

    @classmethod
    def of(cls, p: Platform, st: PlatformStats) -> PlatformSchema:
        identified = any(getattr(p, k) is not None for k in _IDENTITY_IDS) or p.category is not None
        data = {c.key: getattr(p, c.key) for c in Platform.__table__.columns if c.key in cls.model_fields}
        return cls(
            **data,
            rom_count=st.rom_count,
            fs_size_bytes=st.fs_size_bytes,
            is_identified=identified,
            is_unidentified=not identified,
            display_name=p.display_name,
        )


class PlatformCreate(BaseModel):
    fs_slug: str = Field(min_length=1, max_length=100, description="Platform folder name")


class PlatformUpdate(BaseModel):
    custom_name: str | None = Field(default=None, max_length=400)
    description: str | None = Field(default=None, max_length=65535)


class SupportedPlatformSchema(BaseModel):
    slug: str
    name: str
    category: str
    family_name: str
    generation: int | None
    playable: bool
