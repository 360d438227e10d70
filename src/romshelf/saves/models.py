"""Saves, states and screenshots (per user, per ROM) and per-device save sync records.

``file_path`` is relative to the assets store; the storage key is ``f"{file_path}/{file_name}"``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, validates

from romshelf.core.db import Base, TimestampMixin, UTCDateTime
from romshelf.roms import naming


class AssetMixin(TimestampMixin):
    id: Mapped[int] = mapped_column(primary_key=True)
    rom_id: Mapped[int] = mapped_column(sa.ForeignKey("roms.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(sa.String(450))
    file_name_no_tags: Mapped[str] = mapped_column(sa.String(450), default="")
    file_name_no_ext: Mapped[str] = mapped_column(sa.String(450), default="")
    file_extension: Mapped[str] = mapped_column(sa.String(100), default="")
    file_path: Mapped[str] = mapped_column(sa.String(1000))
    file_size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    missing_from_fs: Mapped[bool] = mapped_column(default=False)
    is_public: Mapped[bool] = mapped_column(default=False)

    @validates("file_name")
    def _file_name_parts(self, _key: str, value: str) -> str:
        self.file_name_no_ext, self.file_extension = naming.split_extension(value)
        self.file_name_no_tags = naming.name_no_tags(value)
        return value

    @property
    def full_path(self) -> str:
        return f"{self.file_path}/{self.file_name}"


class Save(AssetMixin, Base):
    __tablename__ = "saves"
    __table_args__ = (sa.Index("ix_saves_rom_user_hash", "rom_id", "user_id", "content_hash"),)

    emulator: Mapped[str | None] = mapped_column(sa.String(255))
    slot: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    content_hash: Mapped[str | None] = mapped_column(sa.String(32))
    origin_device_id: Mapped[str | None] = mapped_column(
        sa.String(255), sa.ForeignKey("devices.id", ondelete="SET NULL")
    )


class State(AssetMixin, Base):
    __tablename__ = "states"

    emulator: Mapped[str | None] = mapped_column(sa.String(255))


class Screenshot(AssetMixin, Base):
    __tablename__ = "screenshots"

    is_gallery: Mapped[bool] = mapped_column(default=False)


class DeviceSaveSync(TimestampMixin, Base):
    __tablename__ = "device_save_sync"

    device_id: Mapped[str] = mapped_column(
        sa.String(255), sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    save_id: Mapped[int] = mapped_column(sa.ForeignKey("saves.id", ondelete="CASCADE"), primary_key=True, index=True)
    last_synced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    is_untracked: Mapped[bool] = mapped_column(default=False)
