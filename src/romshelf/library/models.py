"""Chunked upload sessions (RomM's ``/api/roms/upload`` protocol), kept in the database so any
replica can take any chunk. Chunk bytes live in the ``tmp`` store under ``uploads/{id}/``."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from romshelf.core.db import Base, TimestampMixin, UTCDateTime
from romshelf.core.timeutil import utcnow

UPLOAD_OPEN = "open"
UPLOAD_ASSEMBLING = "assembling"


class UploadSession(TimestampMixin, Base):
    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(sa.String(450))
    total_size: Mapped[int] = mapped_column(sa.BigInteger)
    total_chunks: Mapped[int] = mapped_column()
    chunk_size: Mapped[int] = mapped_column(sa.BigInteger)  # largest chunk allowed for this upload
    status: Mapped[str] = mapped_column(sa.String(20), default=UPLOAD_OPEN)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class UploadChunk(Base):
    __tablename__ = "upload_chunks"

    upload_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("upload_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
