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
