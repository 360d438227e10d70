"""RomM's asset response shapes: SaveSchema, StateSchema, ScreenshotSchema and their User* forms.

Shared contract: the saves/states API (issue 6) and the ROM detail view (issue 4,
``DetailedRomSchema.user_saves`` ...) both serialise through these.
"""

from __future__ import annotations

from urllib.parse import quote

from pydantic import Field

from romshelf.core.schema import Schema, UTCDatetime
from romshelf.core.timeutil import to_utc
from romshelf.saves.models import AssetMixin


def download_path(table: str, asset: AssetMixin) -> str:
    """``/api/<table>/<id>/content?timestamp=<updated_at>``; the timestamp is URL-encoded
    (RomM embeds a raw ``str(datetime)`` with a space)."""
    stamp = quote(to_utc(asset.updated_at).isoformat(), safe="")
    return f"/api/{table}/{asset.id}/content?timestamp={stamp}"


class BaseAssetSchema(Schema):
    id: int
    rom_id: int
    user_id: int
    file_name: str
    file_name_no_tags: str
    file_name_no_ext: str
    file_extension: str
    file_path: str
    file_size_bytes: int
    full_path: str
    download_path: str
    missing_from_fs: bool
    created_at: UTCDatetime
    updated_at: UTCDatetime

    @staticmethod
    def base_fields(table: str, a: AssetMixin) -> dict[str, object]:
        return {
            "id": a.id,
            "rom_id": a.rom_id,
            "user_id": a.user_id,
            "file_name": a.file_name,
            "file_name_no_tags": a.file_name_no_tags,
            "file_name_no_ext": a.file_name_no_ext,
            "file_extension": a.file_extension,
            "file_path": a.file_path,
            "file_size_bytes": a.file_size_bytes,
            "full_path": a.full_path,
            "download_path": download_path(table, a),
            "missing_from_fs": a.missing_from_fs,
            "created_at": a.created_at,
            "updated_at": a.updated_at,
        }


class ScreenshotSchema(BaseAssetSchema):
    is_gallery: bool = False
    is_public: bool = False


class DeviceSyncSchema(Schema):
    device_id: str
    device_name: str | None
    last_synced_at: UTCDatetime
    is_untracked: bool
    is_current: bool


class SaveSchema(BaseAssetSchema):
    emulator: str | None
    slot: str | None = None
    content_hash: str | None = None
    is_public: bool = False
    screenshot: ScreenshotSchema | None = None
    origin_device_id: str | None = None
    device_syncs: list[DeviceSyncSchema] = Field(default_factory=list)


class StateSchema(BaseAssetSchema):
    emulator: str | None
    is_public: bool = False
    screenshot: ScreenshotSchema | None = None


class _UserFields(Schema):
    username: str
    user_avatar_path: str = ""
    user_updated_at: UTCDatetime | None = None


class UserSaveSchema(SaveSchema, _UserFields):
    pass


class UserStateSchema(StateSchema, _UserFields):
    pass


class UserScreenshotSchema(ScreenshotSchema, _UserFields):
    pass
