"""Request and response shapes of the accounts endpoints (RomM's field names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from romshelf.accounts.models import ClientToken, User
from romshelf.accounts.scopes import parse_scopes, scopes_for_role, sort_scopes
from romshelf.core.schema import Schema, UTCDatetime


class UserSchema(Schema):
    id: int
    username: str
    email: str | None
    enabled: bool
    role: str
    permission_group_id: int | None = None
    oauth_scopes: list[str]
    avatar_path: str
    last_login: UTCDatetime | None
    last_active: UTCDatetime | None
    ra_username: str | None = None
    ra_progression: dict[str, Any] | None = None
    ui_settings: dict[str, Any] | None = None
    current_device_id: str | None = None
    created_at: UTCDatetime
    updated_at: UTCDatetime

    @classmethod
    def of(cls, user: User, current_device_id: str | None = None) -> UserSchema:
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            enabled=user.enabled,
            role=user.role,
            oauth_scopes=sort_scopes(scopes_for_role(user.role)),
            avatar_path=user.avatar_path or "",
            last_login=user.last_login,
            last_active=user.last_active,
            ra_username=user.ra_username,
            ui_settings=user.ui_settings,
            current_device_id=current_device_id,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)
    email: str | None = Field(default=None, max_length=255)
    role: str = Field(default="viewer", max_length=20)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires: int
    refresh_token: str | None = None
    refresh_expires: int | None = None


class ClientTokenSchema(Schema):
    id: int
    name: str
    scopes: list[str]
    expires_at: UTCDatetime | None
    last_used_at: UTCDatetime | None
    created_at: UTCDatetime
    user_id: int
    device_id: str | None = None

    @classmethod
    def of(cls, token: ClientToken) -> ClientTokenSchema:
        return cls(
            id=token.id,
            name=token.name,
            scopes=parse_scopes(token.scopes),
            expires_at=token.expires_at,
            last_used_at=token.last_used_at,
            created_at=token.created_at,
            user_id=token.user_id,
            device_id=token.device_id,
        )


class ClientTokenCreateSchema(ClientTokenSchema):
    raw_token: str


class ClientTokenCreatePayload(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    scopes: list[str] = Field(min_length=1, max_length=64)
    expires_in: str | None = Field(default=None, max_length=10)


class MessageResponse(BaseModel):
    msg: str
