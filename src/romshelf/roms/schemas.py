"""RomM's ROM response shapes (reference/romm_roms.md §2) and request bodies.

The list and detail endpoints render their JSON directly (``roms.render``, for speed); these
models document the exact shapes in the OpenAPI schema and are what tests validate against.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from romshelf.core.schema import Schema, UTCDatetime
from romshelf.saves.schemas import (
    SaveSchema,
    ScreenshotSchema,
    StateSchema,
    UserSaveSchema,
    UserScreenshotSchema,
    UserStateSchema,
)

RomFileCategory = Literal[
    "game",
    "dlc",
    "hack",
    "manual",
    "patch",
    "update",
    "mod",
    "demo",
    "translation",
    "prototype",
    "cheat",
    "soundtrack",
    "screenshot",
]
RomUserStatus = Literal["incomplete", "finished", "completed_100", "retired", "never_playing"]


class RomMetadataSchema(Schema):
    rom_id: int
    genres: list[str]
    franchises: list[str]
    collections: list[str]
    companies: list[str]
    game_modes: list[str]
    age_ratings: list[str]
    player_count: str
    first_release_date: int | None
    average_rating: float | None


class RomUserSchema(Schema):
    id: int
    user_id: int
    rom_id: int
    created_at: UTCDatetime
    updated_at: UTCDatetime
    last_played: UTCDatetime | None
    is_main_sibling: bool
    backlogged: bool
    now_playing: bool
    hidden: bool
    rating: int
    difficulty: int
    completion: int
    status: RomUserStatus | None


class RomArchiveMember(Schema):
    name: str
    size: int
    crc_hash: str
    md5_hash: str
    sha1_hash: str


class TrackMetaSchema(Schema):
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    year: int | None = None
    genre: str | None = None
    track: int | None = None
    disc: int | None = None
    duration_seconds: float | None = None
    has_embedded_cover: bool = False
    cover_path: str | None = None


class RomFileSchema(Schema):
    id: int
    rom_id: int
    file_name: str
    file_path: str
    file_size_bytes: int
    full_path: str
    is_top_level: bool
    created_at: UTCDatetime
    updated_at: UTCDatetime
    last_modified: UTCDatetime | None
    crc_hash: str | None
    md5_hash: str | None
    sha1_hash: str | None
    ra_hash: str | None
    chd_sha1_hash: str | None
    archive_members: list[RomArchiveMember] | None
    category: RomFileCategory | None
    track_meta: TrackMetaSchema | None = None


class SiblingRomSchema(Schema):
    id: int
    name: str | None
    fs_name_no_tags: str
    fs_name_no_ext: str
    is_main_sibling: bool
    sort_comparator: str


class RomSchema(Schema):
    id: int
    igdb_id: int | None
    sgdb_id: int | None
    moby_id: int | None
    ss_id: int | None
    ra_id: int | None
    launchbox_id: int | None
    hasheous_id: int | None
    tgdb_id: int | None
    flashpoint_id: str | None
    hltb_id: int | None
    gamelist_id: str | None
    libretro_id: str | None
    platform_id: int
    platform_slug: str
    platform_fs_slug: str
    platform_custom_name: str | None
    platform_display_name: str
    fs_name: str
    fs_name_no_tags: str
    fs_name_no_ext: str
    fs_extension: str
    fs_path: str
    fs_size_bytes: int
    name: str | None
    name_sort_key: str | None
    slug: str | None
    summary: str | None
    alternative_names: list[str]
    youtube_video_id: str | None
    metadatum: RomMetadataSchema
    igdb_metadata: dict[str, Any] | None
    moby_metadata: dict[str, Any] | None
    ss_metadata: dict[str, Any] | None
    launchbox_metadata: dict[str, Any] | None
    hasheous_metadata: dict[str, Any] | None
    flashpoint_metadata: dict[str, Any] | None
    hltb_metadata: dict[str, Any] | None
    gamelist_metadata: dict[str, Any] | None
    manual_metadata: dict[str, Any] | None
    path_cover_small: str | None
    path_cover_large: str | None
    url_cover: str | None
    has_manual: bool
    has_soundtrack: bool
    path_manual: str | None
    url_manual: str | None
    path_video: str | None
    is_identifying: bool = False
    is_unidentified: bool
    is_identified: bool
    revision: str | None
    regions: list[str]
    languages: list[str]
    tags: list[str]
    crc_hash: str | None
    md5_hash: str | None
    sha1_hash: str | None
    ra_hash: str | None
    has_simple_single_file: bool
    has_nested_single_file: bool
    has_multiple_files: bool
    full_path: str
    created_at: UTCDatetime
    updated_at: UTCDatetime
    missing_from_fs: bool
    has_notes: bool
    rom_user: RomUserSchema
    merged_screenshots: list[str]
    merged_ra_metadata: dict[str, Any] | None
    files: list[RomFileSchema]
    sibling_roms: list[SiblingRomSchema]


class SimpleRomSchema(RomSchema):
    screenshot_path: str | None = None


class UserCollectionSchema(Schema):
    id: int
    name: str
    is_smart: bool = False


class UserNoteSchema(Schema):
    id: int
    title: str
    content: str
    is_public: bool
    tags: list[str] | None = None
    created_at: UTCDatetime
    updated_at: UTCDatetime
    user_id: int
    username: str
    user_avatar_path: str = ""
    user_updated_at: UTCDatetime | None = None


class DetailedRomSchema(RomSchema):
    user_saves: list[SaveSchema]
    user_states: list[StateSchema]
    all_user_saves: list[UserSaveSchema]
    all_user_states: list[UserStateSchema]
    user_screenshots: list[ScreenshotSchema]
    all_user_screenshots: list[UserScreenshotSchema]
    user_collections: list[UserCollectionSchema]
    all_user_notes: list[UserNoteSchema]


class RomFiltersDict(BaseModel):
    genres: list[str]
    franchises: list[str]
    collections: list[str]
    companies: list[str]
    game_modes: list[str]
    age_ratings: list[str]
    player_counts: list[str]
    regions: list[str]
    languages: list[str]
    tags: list[str]
    platforms: list[int]


class RomListPage(BaseModel):
    """RomM's ``CustomLimitOffsetPage[SimpleRomSchema]``."""

    items: list[SimpleRomSchema]
    total: int | None
    limit: int
    offset: int
    char_index: dict[str, int]
    rom_id_index: list[int]
    filter_values: RomFiltersDict


class RomUserData(BaseModel):
    """``PUT /api/roms/{id}/props`` body: flat, every field optional (partial update)."""

    model_config = ConfigDict(extra="forbid")

    is_main_sibling: bool | None = Field(None, description="Whether this rom is the main sibling.")
    backlogged: bool | None = Field(None, description="Whether this rom is in the backlog.")
    now_playing: bool | None = Field(None, description="Whether this rom is currently being played.")
    hidden: bool | None = Field(None, description="Whether this rom is hidden.")
    rating: int | None = Field(None, ge=0, le=10, description="User rating for this rom (0-10).")
    difficulty: int | None = Field(None, ge=0, le=10, description="User difficulty rating for this rom (0-10).")
    completion: int | None = Field(None, ge=0, le=100, description="User completion percentage for this rom (0-100).")
    status: RomUserStatus | None = Field(None, description="User play status for this rom.")


class DeleteRomsRequest(BaseModel):
    roms: list[int] = Field(..., description="ROM ids to delete from the database.")
    delete_from_fs: list[int] = Field(default_factory=list, description="Of those, the ids to delete from disk too.")


class BulkOperationResponse(BaseModel):
    successful_items: int
    failed_items: int
    failed_ids: list[int]
    errors: list[str]
