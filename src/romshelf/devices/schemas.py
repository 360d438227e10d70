"""Request and response shapes of the devices API (RomM's field names)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_serializer, field_validator, model_validator

from romshelf.accounts.scopes import ALL_SCOPES
from romshelf.core.schema import Schema, UTCDatetime

# sync_config keys that hold secrets: never sent back, shown as MASK instead.
SENSITIVE_SYNC_CONFIG_KEYS = frozenset({"ssh_password", "ssh_key_path"})
MASK = "********"
MAX_SYNC_CONFIG_BYTES = 65536


class SyncMode(StrEnum):
    API = "api"
    FILE_TRANSFER = "file_transfer"
    PUSH_PULL = "push_pull"


def mask_sync_config(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return config
    return {k: MASK if k in SENSITIVE_SYNC_CONFIG_KEYS else v for k, v in config.items()}


def _check_sync_config(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, default=str)) > MAX_SYNC_CONFIG_BYTES:
        raise ValueError(f"sync_config is larger than {MAX_SYNC_CONFIG_BYTES} bytes")
    return value


class _DeviceFields(BaseModel):
    """Client-reported fields shared by create and update (lengths are the columns')."""

    name: str | None = Field(default=None, max_length=255)
    platform: str | None = Field(default=None, max_length=50)
    client: str | None = Field(default=None, max_length=50)
    client_version: str | None = Field(default=None, max_length=50)
    ip_address: str | None = Field(default=None, max_length=45)
    mac_address: str | None = Field(default=None, max_length=17)
    hostname: str | None = Field(default=None, max_length=255)
    sync_mode: SyncMode | None = None
    sync_config: dict[str, Any] | None = None

    @field_validator("sync_config")
    @classmethod
    def _sync_config_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _check_sync_config(value)


class DeviceCreatePayload(_DeviceFields):
    allow_existing: bool = True
    allow_duplicate: bool = False
    reset_syncs: bool = False

    @model_validator(mode="after")
    def _duplicate_disables_existing(self) -> DeviceCreatePayload:
        # A forced duplicate never looks for (or returns) an existing device.
        if self.allow_duplicate:
            self.allow_existing = False
        return self


class DeviceUpdatePayload(_DeviceFields):
    sync_enabled: bool | None = None


class DeviceCreateResponse(Schema):
    device_id: str
    name: str | None
    created_at: UTCDatetime


class DeviceSchema(Schema):
    id: str
    user_id: int
    name: str | None
    platform: str | None
    client: str | None
    client_version: str | None
    ip_address: str | None
    mac_address: str | None
    hostname: str | None
    client_device_identifier: str | None
    sync_mode: str
    sync_enabled: bool
    sync_config: dict[str, Any] | None
    last_seen: UTCDatetime | None
    created_at: UTCDatetime
    updated_at: UTCDatetime

    @field_serializer("sync_config")
    def _mask(self, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return mask_sync_config(value)


# --- pairing (RFC 8628-style device authorization) --------------------------------------------


class DeviceAuthInitPayload(BaseModel):
    client_device_identifier: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    client: str = Field(min_length=1, max_length=50)
    platform: str | None = Field(default=None, max_length=50)
    client_version: str | None = Field(default=None, max_length=50)
    requested_scopes: list[str] = Field(min_length=1, max_length=64)

    @field_validator("requested_scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        unknown = sorted({s for s in value if s not in ALL_SCOPES})
        if unknown:
            raise ValueError(f"Unknown scopes: {', '.join(unknown)}")
        return list(dict.fromkeys(value))


class DeviceAuthInitResponse(BaseModel):
    device_code: str
    user_code: str
    verification_path: str
    verification_path_complete: str
    expires_in: int
    interval: int


class DeviceAuthPendingSchema(Schema):
    client_device_identifier: str
    name: str
    client: str
    platform: str | None
    client_version: str | None
    requested_scopes: list[str]
    allowed_scopes: list[str]
    expires_at: UTCDatetime


class DeviceAuthApprovePayload(BaseModel):
    user_code: str = Field(min_length=1, max_length=32)
    approved_scopes: list[str] = Field(min_length=1, max_length=64)
    device_name: str | None = Field(default=None, max_length=255)
    expires_in: str | None = Field(default=None, max_length=10)


class DeviceAuthApproveResponse(BaseModel):
    device_id: str
    device_name: str | None


class DeviceAuthDenyPayload(BaseModel):
    user_code: str = Field(min_length=1, max_length=32)


class DeviceAuthTokenPayload(BaseModel):
    device_code: str = Field(min_length=1, max_length=128)


class DeviceAuthTokenResponse(BaseModel):
    access_token: str
    device_id: str
    scopes: list[str]
    expires_at: UTCDatetime | None
