"""Collections: standard (explicit ROM ids, favourites) and smart (saved filter criteria)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from romshelf.core.db import Base, TimestampMixin


class Collection(TimestampMixin, Base):
    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(400))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    is_public: Mapped[bool] = mapped_column(default=False)
    is_favorite: Mapped[bool] = mapped_column(default=False)
    url_cover: Mapped[str] = mapped_column(sa.Text, default="")
    path_cover_s: Mapped[str] = mapped_column(sa.Text, default="")
    path_cover_l: Mapped[str] = mapped_column(sa.Text, default="")


class CollectionRom(TimestampMixin, Base):
    __tablename__ = "collections_roms"

    collection_id: Mapped[int] = mapped_column(sa.ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    rom_id: Mapped[int] = mapped_column(sa.ForeignKey("roms.id", ondelete="CASCADE"), primary_key=True, index=True)


class SmartCollection(TimestampMixin, Base):
    __tablename__ = "smart_collections"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(400))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    is_public: Mapped[bool] = mapped_column(default=False)
    filter_criteria: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
