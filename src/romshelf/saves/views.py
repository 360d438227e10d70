"""Read-side assembly of asset schemas: screenshot linking and the per-ROM asset lists that the
ROM detail view shows. Writes (uploads, sync, deletes) live in the saves service (issue 6)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from romshelf.accounts.models import User
from romshelf.core.timeutil import to_utc
from romshelf.devices.models import Device
from romshelf.saves.models import AssetMixin, DeviceSaveSync, Save, Screenshot, State
from romshelf.saves.schemas import (
    BaseAssetSchema,
    DeviceSyncSchema,
    SaveSchema,
    ScreenshotSchema,
    StateSchema,
    UserSaveSchema,
    UserScreenshotSchema,
    UserStateSchema,
)


def screenshot_schema(s: Screenshot) -> ScreenshotSchema:
    return ScreenshotSchema(
        **BaseAssetSchema.base_fields("screenshots", s), is_gallery=s.is_gallery, is_public=s.is_public
    )


# Built once (building a statement costs about as much CPU as running it on SQLite).
_SCREENSHOTS_OF = sa.select(Screenshot).where(
    Screenshot.user_id == sa.bindparam("user_id"), Screenshot.rom_id == sa.bindparam("rom_id")
)


def linked_screenshots(session: Session, assets: Sequence[AssetMixin]) -> dict[int, Screenshot]:
    """The screenshot of each save/state (by id), RomM's rule: same user and ROM, and the
    screenshot's name or name-without-extension equals the asset's name or name-without-extension;
    prefer a screenshot whose stem equals the asset's full name, then the newest (highest id).
    One query for the whole batch."""
    if not assets:
        return {}
    # A user has few screenshots per ROM: fetch theirs for these ROMs (indexed by user) and match
    # names here, rather than sending every asset name to the database.
    user_ids = sorted({a.user_id for a in assets})
    rom_ids = sorted({a.rom_id for a in assets})
    if len(user_ids) == 1 and len(rom_ids) == 1:  # the usual case (one upload, one ROM's list)
        rows = session.scalars(_SCREENSHOTS_OF, {"user_id": user_ids[0], "rom_id": rom_ids[0]}).all()
    else:
        rows = session.scalars(
            sa.select(Screenshot).where(Screenshot.user_id.in_(user_ids), Screenshot.rom_id.in_(rom_ids))
        ).all()
    if not rows:
        return {}
    out: dict[int, Screenshot] = {}
    for a in assets:
        wanted = {a.file_name, a.file_name_no_ext}
        best: Screenshot | None = None
        for s in rows:
            if s.user_id != a.user_id or s.rom_id != a.rom_id:
                continue
            if s.file_name not in wanted and s.file_name_no_ext not in wanted:
                continue
            rank = (s.file_name_no_ext == a.file_name, s.id)
            if best is None or rank > (best.file_name_no_ext == a.file_name, best.id):
                best = s
        if best is not None:
            out[a.id] = best
    return out


def save_schema(save: Save, screenshot: Screenshot | None = None, device_syncs: Iterable[object] = ()) -> SaveSchema:
    return SaveSchema(
        **BaseAssetSchema.base_fields("saves", save),
        emulator=save.emulator,
        slot=save.slot,
        content_hash=save.content_hash,
        is_public=save.is_public,
        screenshot=screenshot_schema(screenshot) if screenshot else None,
        origin_device_id=save.origin_device_id,
        device_syncs=list(device_syncs),  # type: ignore[arg-type]
    )


def state_schema(state: State, screenshot: Screenshot | None = None) -> StateSchema:
    return StateSchema(
        **BaseAssetSchema.base_fields("states", state),
        emulator=state.emulator,
        is_public=state.is_public,
        screenshot=screenshot_schema(screenshot) if screenshot else None,
    )


@dataclass
class RomAssets:
    """The asset lists of ``DetailedRomSchema`` for one ROM and one caller."""

    user_saves: list[SaveSchema] = field(default_factory=list)
    user_states: list[StateSchema] = field(default_factory=list)
    user_screenshots: list[ScreenshotSchema] = field(default_factory=list)
    all_user_saves: list[UserSaveSchema] = field(default_factory=list)
    all_user_states: list[UserStateSchema] = field(default_factory=list)
    all_user_screenshots: list[UserScreenshotSchema] = field(default_factory=list)


def assets_for_rom(session: Session, rom_id: int, user_id: int | None) -> RomAssets:
    """Own saves/states/screenshots (newest first) and the community lists (own + others' public).

    ``user_screenshots`` are the caller's own, ``all_user_screenshots`` the gallery ones
    (``is_gallery``) that are own or public, as RomM shows them.
    """
    visible = (
        sa.or_(Save.user_id == user_id, Save.is_public.is_(True)) if user_id is not None else Save.is_public.is_(True)
    )
    saves = session.scalars(
        sa.select(Save).where(Save.rom_id == rom_id, visible).order_by(Save.updated_at.desc(), Save.id.desc())
    ).all()
    st_visible = (
        sa.or_(State.user_id == user_id, State.is_public.is_(True))
        if user_id is not None
        else State.is_public.is_(True)
    )
    states = session.scalars(
        sa.select(State).where(State.rom_id == rom_id, st_visible).order_by(State.updated_at.desc(), State.id.desc())
    ).all()
    shots = session.scalars(
        sa.select(Screenshot)
        .where(Screenshot.rom_id == rom_id)
        .order_by(Screenshot.created_at.desc(), Screenshot.id.desc())
    ).all()
    links = linked_screenshots(session, [*saves, *states])
    owner_ids = {a.user_id for a in (*saves, *states, *shots)}
    owners = {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(owner_ids)))} if owner_ids else {}

    def user_fields(uid: int) -> dict[str, object]:
        u = owners.get(uid)
        return {
            "username": u.username if u else "",
            "user_avatar_path": (u.avatar_path or "") if u else "",
            "user_updated_at": u.updated_at if u else None,
        }

    out = RomAssets()
    for s in saves:
        schema = save_schema(s, links.get(s.id))
        if s.user_id == user_id:
            out.user_saves.append(schema)
        out.all_user_saves.append(UserSaveSchema(**schema.model_dump(), **user_fields(s.user_id)))
    for st in states:
        schema_st = state_schema(st, links.get(st.id))
        if st.user_id == user_id:
            out.user_states.append(schema_st)
        out.all_user_states.append(UserStateSchema(**schema_st.model_dump(), **user_fields(st.user_id)))
    for shot in shots:
        if shot.user_id == user_id:
            out.user_screenshots.append(screenshot_schema(shot))
        if shot.is_gallery and (shot.user_id == user_id or shot.is_public):
            out.all_user_screenshots.append(
                UserScreenshotSchema(**screenshot_schema(shot).model_dump(), **user_fields(shot.user_id))
            )
    return out


def device_syncs(session: Session, saves: Sequence[Save], device: Device) -> dict[int, list[DeviceSyncSchema]]:
    """RomM's ``device_syncs`` per save, for a request that names ``device``: every device's
    record (newest sync first), ``is_current`` when synced at or after the save's
    ``updated_at``; a synthetic not-current entry for ``device`` if it has no record; the
    caller's device first."""
    if not saves:
        return {}
    rows = session.execute(
        sa.select(DeviceSaveSync, Device.name)
        .join(Device, Device.id == DeviceSaveSync.device_id)
        .where(DeviceSaveSync.save_id.in_([s.id for s in saves]))
        .order_by(DeviceSaveSync.last_synced_at.desc(), DeviceSaveSync.device_id)
    ).all()
    by_save: dict[int, list[tuple[DeviceSaveSync, str | None]]] = {}
    for sync, name in rows:
        by_save.setdefault(sync.save_id, []).append((sync, name))
    out: dict[int, list[DeviceSyncSchema]] = {}
    for save in saves:
        updated = to_utc(save.updated_at)
        entries = [
            DeviceSyncSchema(
                device_id=sync.device_id,
                device_name=name,
                last_synced_at=sync.last_synced_at,
                is_untracked=sync.is_untracked,
                is_current=to_utc(sync.last_synced_at) >= updated,
            )
            for sync, name in by_save.get(save.id, [])
        ]
        if not any(e.device_id == device.id for e in entries):
            entries.append(
                DeviceSyncSchema(
                    device_id=device.id,
                    device_name=device.name,
                    last_synced_at=save.updated_at,
                    is_untracked=False,
                    is_current=False,
                )
            )
        entries.sort(key=lambda e: e.device_id != device.id)
        out[save.id] = entries
    return out


def save_schemas(session: Session, saves: Sequence[Save], device: Device | None = None) -> list[SaveSchema]:
    """SaveSchema for each save, with its screenshot, and ``device_syncs`` when a device is named
    (``[]`` otherwise, as RomM)."""
    links = linked_screenshots(session, saves)
    syncs = device_syncs(session, saves, device) if device is not None else {}
    return [save_schema(s, links.get(s.id), syncs.get(s.id, [])) for s in saves]


def state_schemas(session: Session, states: Sequence[State]) -> list[StateSchema]:
    links = linked_screenshots(session, states)
    return [state_schema(s, links.get(s.id)) for s in states]
