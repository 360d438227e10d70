"""RomM's collection shapes: CollectionSchema, SmartCollectionSchema, VirtualCollectionSchema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from romshelf.core.schema import Schema, UTCDatetime


class _BaseCollection(Schema):
    name: str
    description: str
    rom_ids: list[int]
    rom_count: int
    path_cover_small: str | None
    path_cover_large: str | None
    path_covers_small: list[str]
    path_covers_large: list[str]
    is_public: bool = False
    is_favorite: bool = False
    is_virtual: bool = False
    is_smart: bool = False
    created_at: UTCDatetime
    updated_at: UTCDatetime


class CollectionSchema(_BaseCollection):
    id: int
    url_cover: str | None
    user_id: int
    owner_username: str


class SmartCollectionSchema(_BaseCollection):
    id: int
    is_smart: bool = True
    filter_criteria: dict[str, Any]
    filter_summary: str
    user_id: int
    owner_username: str


class VirtualCollectionSchema(_BaseCollection):
    id: str
    is_virtual: bool = True
    type: str


class CollectionRomsPayload(BaseModel):
    rom_ids: list[int]
