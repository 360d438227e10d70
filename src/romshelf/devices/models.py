"""Devices that sync saves (handhelds, phones, PCs), owned by one user each."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from romshelf.core.db import Base, TimestampMixin, UTCDateTime


class Device(TimestampMixin, Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)  # uuid4 chosen by the server
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(255))
    platform: Mapped[str | None] = mapped_column(sa.String(50))
    client: Mapped[str | None] = mapped_column(sa.String(50))
    client_version: Mapped[str | None] = mapped_column(sa.String(50))
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    mac_address: Mapped[str | None] = mapped_column(sa.String(17))
    hostname: Mapped[str | None] = mapped_column(sa.String(255))
    client_device_identifier: Mapped[str | None] = mapped_column(sa.String(255))
    sync_mode: Mapped[str] = mapped_column(sa.String(20), default="api")
    sync_enabled: Mapped[bool] = mapped_column(default=True)
    sync_config: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    last_seen: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class DevicePairing(Base):
    """One device authorization request (``/api/auth/device``, RFC 8628 style).

    Kept in the database, so any replica answers any step and no Redis is needed. Only the
    SHA-256 of the device code is stored; the client token is created when the device redeems
    an approved request, so no token secret is ever stored either. Rows past ``expires_at`` are
    dead and are deleted by the next ``/init``.
    """

    __tablename__ = "device_pairings"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending|approved|denied|redeemed
    client_device_identifier: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    client: Mapped[str] = mapped_column(sa.String(50))
    platform: Mapped[str | None] = mapped_column(sa.String(50))
    client_version: Mapped[str | None] = mapped_column(sa.String(50))
    requested_scopes: Mapped[str] = mapped_column(sa.Text, default="")
    poll_interval: Mapped[int] = mapped_column(default=5)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    last_polled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # Set by the approval:
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str | None] = mapped_column(
        sa.String(255), sa.ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    approved_scopes: Mapped[str | None] = mapped_column(sa.Text)
    token_name: Mapped[str | None] = mapped_column(sa.String(255))
    token_expires_in: Mapped[str | None] = mapped_column(sa.String(10))
