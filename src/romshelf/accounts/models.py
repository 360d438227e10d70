"""Users, client API tokens, refresh tokens and web sessions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from romshelf.core.db import Base, TimestampMixin, UTCDateTime


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(255), unique=True)
    hashed_password: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    role: Mapped[str] = mapped_column(sa.String(20), default="viewer")
    avatar_path: Mapped[str] = mapped_column(sa.String(255), default="")
    last_login: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_active: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    ra_username: Mapped[str | None] = mapped_column(sa.String(255))
    ui_settings: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)


class ClientToken(Base):
    """A long-lived, revocable API token (``rmm_...``); only its SHA-256 is stored."""

    __tablename__ = "client_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    hashed_token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[str] = mapped_column(sa.Text, default="")
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    device_id: Mapped[str | None] = mapped_column(
        sa.String(255), sa.ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RefreshToken(Base):
    """One issued refresh token. Single use: redeeming sets ``used_at``; a second use revokes the family."""

    __tablename__ = "refresh_tokens"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    family: Mapped[str] = mapped_column(sa.String(64), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[str] = mapped_column(sa.Text, default="")
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A browser session created by ``POST /api/login`` (cookie ``romshelf_session``)."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # sha256 of the cookie value
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
