"""Platforms: one per folder of the library (``fs_slug``), mapped to a canonical ``slug``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from romshelf.core.db import Base, TimestampMixin


class Platform(TimestampMixin, Base):
    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(100), index=True)
    fs_slug: Mapped[str] = mapped_column(sa.String(100), unique=True)
    name: Mapped[str] = mapped_column(sa.String(400))
    custom_name: Mapped[str] = mapped_column(sa.String(400), default="")
    description: Mapped[str] = mapped_column(sa.Text, default="")
    category: Mapped[str | None] = mapped_column(sa.String(100))
    generation: Mapped[int | None] = mapped_column()
    family_name: Mapped[str | None] = mapped_column(sa.String(100))
    family_slug: Mapped[str | None] = mapped_column(sa.String(100))
    url: Mapped[str | None] = mapped_column(sa.String(1000))
    url_logo: Mapped[str | None] = mapped_column(sa.String(1000))
    igdb_id: Mapped[int | None] = mapped_column()
    sgdb_id: Mapped[int | None] = mapped_column()
    moby_id: Mapped[int | None] = mapped_column()
    ss_id: Mapped[int | None] = mapped_column()
    ra_id: Mapped[int | None] = mapped_column()
    launchbox_id: Mapped[int | None] = mapped_column()
    hasheous_id: Mapped[int | None] = mapped_column()
    tgdb_id: Mapped[int | None] = mapped_column()
    flashpoint_id: Mapped[int | None] = mapped_column()
    igdb_slug: Mapped[str | None] = mapped_column(sa.String(100))
    moby_slug: Mapped[str | None] = mapped_column(sa.String(100))
    hltb_slug: Mapped[str | None] = mapped_column(sa.String(100))
    libretro_slug: Mapped[str | None] = mapped_column(sa.String(200))
    aspect_ratio: Mapped[str] = mapped_column(sa.String(10), default="2 / 3")
    missing_from_fs: Mapped[bool] = mapped_column(default=False)

    @property
    def display_name(self) -> str:
        return self.custom_name or self.name
