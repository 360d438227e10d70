"""Small helpers for the saves tests: rows read back, sync records set by hand, zips built in code."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import Any

import sqlalchemy as sa

from romshelf.core.context import AppContext
from romshelf.devices.models import Device
from romshelf.roms.models import RomUser
from romshelf.saves.models import DeviceSaveSync, Save


def zip_bytes(entries: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in dirs:
            zf.writestr(zipfile.ZipInfo(d), b"")
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def get_save(ctx: AppContext, save_id: int) -> Save | None:
    with ctx.db.read() as s:
        return s.get(Save, save_id)


def sync_row(ctx: AppContext, device_id: str, save_id: int) -> DeviceSaveSync | None:
    with ctx.db.read() as s:
        return s.get(DeviceSaveSync, (device_id, save_id))


def set_sync(ctx: AppContext, device_id: str, save_id: int, when: dt.datetime, untracked: bool = False) -> None:
    with ctx.db.transaction() as s:
        row = s.get(DeviceSaveSync, (device_id, save_id))
        if row is None:
            s.add(DeviceSaveSync(device_id=device_id, save_id=save_id, last_synced_at=when, is_untracked=untracked))
        else:
            row.last_synced_at = when
            row.is_untracked = untracked


def set_updated(ctx: AppContext, save_id: int, when: dt.datetime) -> None:
    with ctx.db.transaction() as s:
        s.execute(sa.update(Save).where(Save.id == save_id).values(updated_at=when))


def hide_rom(ctx: AppContext, user_id: int, rom_id: int) -> None:
    with ctx.db.transaction() as s:
        s.add(RomUser(rom_id=rom_id, user_id=user_id, hidden=True))


def device_last_seen(ctx: AppContext, device_id: str) -> Any:
    with ctx.db.read() as s:
        d = s.get(Device, device_id)
        return d.last_seen if d else None


def parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts)
