"""Device rules shared by every domain that takes a ``device_id`` (saves, states, sync).

The devices HTTP surface (register, list, update, delete, pairing) builds on these; the saves
domain calls :func:`get_owned_device` and :func:`touch_last_seen` and never queries devices itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf.core.errors import NotFound
from romshelf.core.timeutil import utcnow
from romshelf.devices.models import Device


class DeviceNotFound(NotFound):
    def __init__(self, device_id: str) -> None:
        super().__init__(f"Device with ID {device_id} not found")


def get_owned_device(session: Session, user_id: int, device_id: str) -> Device:
    """The caller's device ``device_id``; another user's device is as unknown as a missing one
    (404, so ids cannot be probed)."""
    device = session.scalar(sa.select(Device).where(Device.id == device_id, Device.user_id == user_id))
    if device is None:
        raise DeviceNotFound(device_id)
    return device


def touch_last_seen(session: Session, device: Device) -> None:
    """Mark the device as seen now (flushed with the caller's transaction)."""
    device.last_seen = utcnow()
