"""Device rules shared by every domain that takes a ``device_id`` (saves, states, sync).

The devices HTTP surface (register, list, update, delete, pairing) builds on these; the saves
domain calls :func:`get_owned_device` and :func:`touch_last_seen` and never queries devices itself.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf.accounts.dependencies import Principal, on_authenticated
from romshelf.core.context import AppContext
from romshelf.core.errors import Conflict, NotFound
from romshelf.core.timeutil import utcnow
from romshelf.devices.models import Device
from romshelf.devices.schemas import MASK, SENSITIVE_SYNC_CONFIG_KEYS, DeviceCreatePayload, SyncMode
from romshelf.saves.models import DeviceSaveSync


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


# --- registration, listing, update, delete -------------------------------------------------------


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def find_by_fingerprint(
    session: Session, user_id: int, *, mac_address: str | None, hostname: str | None, platform: str | None
) -> Device | None:
    """The user's device that looks like the one described: same MAC address (any letter case)
    when one is given, else same hostname and platform (both needed). None if nothing matches."""
    query = sa.select(Device).where(Device.user_id == user_id)
    if not _blank(mac_address):
        assert mac_address is not None
        query = query.where(sa.func.lower(Device.mac_address) == mac_address.strip().lower())
    elif not _blank(hostname) and not _blank(platform):
        query = query.where(Device.hostname == hostname, Device.platform == platform)
    else:
        return None
    return session.scalars(query.order_by(Device.created_at, Device.id).limit(1)).first()


class DeviceExists(Conflict):
    def __init__(self, device_id: str) -> None:
        super().__init__(
            {
                "error": "device_exists",
                "message": "A device with this fingerprint already exists",
                "device_id": device_id,
            }
        )


def register_device(session: Session, user_id: int, payload: DeviceCreatePayload) -> tuple[Device, bool]:
    """Register a device for the user; returns (device, created).

    Unless ``allow_duplicate``, a device with the same fingerprint is looked up first: it is
    returned as it is (only ``last_seen`` moves; with ``reset_syncs`` its save sync records are
    dropped), or, with ``allow_existing=false``, refused with :class:`DeviceExists` (409).
    """
    if not payload.allow_duplicate:
        existing = find_by_fingerprint(
            session, user_id, mac_address=payload.mac_address, hostname=payload.hostname, platform=payload.platform
        )
        if existing is not None:
            if not payload.allow_existing:
                raise DeviceExists(existing.id)
            if payload.reset_syncs:
                session.execute(sa.delete(DeviceSaveSync).where(DeviceSaveSync.device_id == existing.id))
            touch_last_seen(session, existing)
            session.commit()
            return existing, False
    device = Device(
        id=str(uuid.uuid4()),
        user_id=user_id,
        name=payload.name,
        platform=payload.platform,
        client=payload.client,
        client_version=payload.client_version,
        ip_address=payload.ip_address,
        mac_address=payload.mac_address,
        hostname=payload.hostname,
        sync_mode=(payload.sync_mode or SyncMode.API).value,
        sync_enabled=True,
        sync_config=payload.sync_config,
        last_seen=utcnow(),
    )
    session.add(device)
    session.commit()
    return device, True


def list_devices(session: Session, user_id: int) -> list[Device]:
    return list(
        session.scalars(sa.select(Device).where(Device.user_id == user_id).order_by(Device.created_at, Device.id))
    )


def merge_sync_config(stored: dict[str, Any] | None, sent: dict[str, Any] | None) -> dict[str, Any] | None:
    """The new sync_config: what was sent, except that a secret sent back as the mask (clients
    round-trip what GET showed them) keeps the stored secret, or is dropped if there is none."""
    if sent is None:
        return None
    merged: dict[str, Any] = {}
    for key, value in sent.items():
        if key in SENSITIVE_SYNC_CONFIG_KEYS and value == MASK:
            if stored and key in stored:
                merged[key] = stored[key]
            continue
        merged[key] = value
    return merged


NOT_NULL_FIELDS = frozenset({"sync_mode", "sync_enabled"})


def update_device(session: Session, device: Device, changes: dict[str, Any]) -> Device:
    """Apply a partial update (the fields the client sent). ``null`` for ``sync_mode`` or
    ``sync_enabled`` (columns that cannot be empty) changes nothing."""
    for key, value in changes.items():
        if key in NOT_NULL_FIELDS and value is None:
            continue
        if key == "sync_mode":
            value = SyncMode(value).value
        elif key == "sync_config":
            value = merge_sync_config(device.sync_config, value)
        setattr(device, key, value)
    session.commit()
    return device


def delete_device(session: Session, device: Device) -> None:
    """Delete the device. The database does the rest in the same statement: its save sync
    records go (cascade); saves it uploaded keep their rows with ``origin_device_id`` NULL; client
    tokens bound to it stay valid with ``device_id`` NULL."""
    session.execute(sa.delete(Device).where(Device.id == device.id, Device.user_id == device.user_id))
    session.commit()


LAST_SEEN_DEBOUNCE_SECONDS = 300.0
_last_seen_written: dict[str, float] = {}


def record_token_use(ctx: AppContext, principal: Principal) -> None:
    """A request with a device-bound token: that device was seen now.

    Written at most once per device every five minutes per process (RomM's debounce), so the
    hot path does not turn every read into a write.
    """
    device_id = principal.device_id
    if not device_id:
        return
    now = time.monotonic()
    last = _last_seen_written.get(device_id)
    if last is not None and now - last < LAST_SEEN_DEBOUNCE_SECONDS:
        return
    _last_seen_written[device_id] = now
    with ctx.db.transaction() as session:
        session.execute(
            sa.update(Device)
            .where(Device.id == device_id, Device.user_id == principal.user_id)
            .values(last_seen=utcnow())
        )


on_authenticated(record_token_use)
