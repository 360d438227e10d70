"""ROMs, their files, and each user's per-ROM data (RomM's ``roms``, ``rom_files``, ``rom_user``).

Paths: ``fs_path`` is the library-relative folder of the platform (``roms/gb`` in layout A,
``gb/roms`` in layout B); ``fs_name`` is the file or folder name inside it. The storage key of a
ROM is ``f"{fs_path}/{fs_name}"`` (:attr:`Rom.full_path`); a RomFile's is
``f"{file_path}/{file_name}"``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from romshelf.core.db import Base, TimestampMixin, UTCDateTime
from romshelf.roms import naming

if TYPE_CHECKING:
    from romshelf.platforms.models import Platform

# Provider id columns, in RomM's order.
INT_PROVIDER_IDS = (
    "igdb_id",
    "sgdb_id",
    "moby_id",
    "ss_id",
    "ra_id",
    "launchbox_id",
    "hasheous_id",
    "tgdb_id",
    "hltb_id",
)
STR_PROVIDER_IDS = ("flashpoint_id", "gamelist_id", "libretro_id")
METADATA_BLOBS = (
    "igdb_metadata",
    "moby_metadata",
    "ss_metadata",
    "ra_metadata",
    "launchbox_metadata",
    "hasheous_metadata",
    "flashpoint_metadata",
    "hltb_metadata",
    "gamelist_metadata",
    "manual_metadata",
)

ROM_FILE_CATEGORIES = (
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
)
ROM_USER_STATUSES = ("incomplete", "finished", "completed_100", "retired", "never_playing")


def _json_list() -> list[Any]:
    return []


def _json_dict() -> dict[str, Any]:
    return {}


class Rom(TimestampMixin, Base):
    __tablename__ = "roms"
    __table_args__ = (
        sa.UniqueConstraint("platform_id", "fs_name"),
        sa.Index("ix_roms_missing_sort", "missing_from_fs", "name_sort_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"), index=True)

    igdb_id: Mapped[int | None] = mapped_column(index=True)
    sgdb_id: Mapped[int | None] = mapped_column()
    moby_id: Mapped[int | None] = mapped_column(index=True)
    ss_id: Mapped[int | None] = mapped_column(index=True)
    ra_id: Mapped[int | None] = mapped_column(index=True)
    launchbox_id: Mapped[int | None] = mapped_column(index=True)
    hasheous_id: Mapped[int | None] = mapped_column(index=True)
    tgdb_id: Mapped[int | None] = mapped_column(index=True)
    hltb_id: Mapped[int | None] = mapped_column(index=True)
    flashpoint_id: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    gamelist_id: Mapped[str | None] = mapped_column(sa.String(100))
    libretro_id: Mapped[str | None] = mapped_column(sa.String(64))

    fs_name: Mapped[str] = mapped_column(sa.String(450))
    fs_name_no_tags: Mapped[str] = mapped_column(sa.String(450), default="")
    fs_name_no_ext: Mapped[str] = mapped_column(sa.String(450), default="")
    fs_extension: Mapped[str] = mapped_column(sa.String(100), default="")
    fs_path: Mapped[str] = mapped_column(sa.String(1000))
    fs_size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    name: Mapped[str] = mapped_column(sa.String(350), default="")
    name_sort_key: Mapped[str] = mapped_column(sa.String(500), default="", index=True)
    slug: Mapped[str] = mapped_column(sa.String(400), default="")
    summary: Mapped[str] = mapped_column(sa.Text, default="")

    igdb_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    moby_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    ss_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    ra_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    launchbox_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    hasheous_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    flashpoint_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    hltb_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    gamelist_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)
    manual_metadata: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=_json_dict)

    path_cover_s: Mapped[str] = mapped_column(sa.Text, default="")
    path_cover_l: Mapped[str] = mapped_column(sa.Text, default="")
    url_cover: Mapped[str] = mapped_column(sa.Text, default="")
    path_manual: Mapped[str] = mapped_column(sa.Text, default="")
    url_manual: Mapped[str] = mapped_column(sa.Text, default="")
    path_screenshots: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list)
    url_screenshots: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list)

    revision: Mapped[str] = mapped_column(sa.String(100), default="")
    version: Mapped[str] = mapped_column(sa.String(100), default="")
    regions: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list)
    languages: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list)
    tags: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list)

    crc_hash: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    md5_hash: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    sha1_hash: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    ra_hash: Mapped[str] = mapped_column(sa.String(100), default="", index=True)

    missing_from_fs: Mapped[bool] = mapped_column(default=False)

    # --- issue 4: metadata derived from the provider blobs with RomM's precedence (RomM's
    # ``roms_metadata`` generated columns). Recomputed by ``roms.derived`` whenever an ORM write
    # changes a blob; mirrored into ``rom_facets`` by database triggers (``roms.triggers``).
    meta_genres: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list, server_default=sa.text("'[]'"))
    meta_franchises: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list, server_default=sa.text("'[]'"))
    meta_collections: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list, server_default=sa.text("'[]'"))
    meta_companies: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list, server_default=sa.text("'[]'"))
    meta_game_modes: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list, server_default=sa.text("'[]'"))
    meta_age_ratings: Mapped[list[str]] = mapped_column(sa.JSON, default=_json_list, server_default=sa.text("'[]'"))
    meta_player_count: Mapped[str] = mapped_column(sa.String(100), default="1", server_default="1")
    meta_first_release_date: Mapped[int | None] = mapped_column(sa.BigInteger)  # epoch milliseconds
    meta_average_rating: Mapped[float | None] = mapped_column(sa.Float)
    meta_verified: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    platform: Mapped[Platform] = relationship(lazy="raise_on_sql")
    files: Mapped[list[RomFile]] = relationship(
        back_populates="rom",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="RomFile.file_name",
        lazy="raise_on_sql",
    )

    @validates("fs_name")
    def _fs_name_parts(self, _key: str, value: str) -> str:
        self.fs_name_no_ext, self.fs_extension = naming.split_extension(value)
        self.fs_name_no_tags = naming.name_no_tags(value)
        return value

    @property
    def full_path(self) -> str:
        return f"{self.fs_path}/{self.fs_name}"

    def apply_tags(self) -> None:
        """Re-read regions, languages, revision, version and tags from ``fs_name``."""
        parsed = naming.parse_tags(self.fs_name)
        self.regions = parsed.regions
        self.languages = parsed.languages
        self.revision = parsed.revision
        self.version = parsed.version
        self.tags = parsed.tags


class RomFile(TimestampMixin, Base):
    __tablename__ = "rom_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    rom_id: Mapped[int] = mapped_column(sa.ForeignKey("roms.id", ondelete="CASCADE"), index=True)
    file_name: Mapped[str] = mapped_column(sa.String(450))
    file_path: Mapped[str] = mapped_column(sa.String(1000))
    file_size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_modified: Mapped[float | None] = mapped_column(sa.Double)  # epoch seconds (mtime); 8 bytes everywhere
    crc_hash: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    md5_hash: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    sha1_hash: Mapped[str] = mapped_column(sa.String(100), default="", index=True)
    ra_hash: Mapped[str] = mapped_column(sa.String(100), default="")
    chd_sha1_hash: Mapped[str] = mapped_column(sa.String(100), default="")
    archive_members: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    category: Mapped[str | None] = mapped_column(sa.String(20))
    missing_from_fs: Mapped[bool] = mapped_column(default=False)

    # --- issue 3 (library): No-Intro headerless hashes and the console header -----------------
    # Hashes without the emulator/copier header (iNES, FDS, Atari 7800, Lynx, SNES copier); ""
    # when the file has none. ``header``: title and checks read from the cartridge header
    # (romshelf.library.headers), ``header_valid``: every check passed (None: no header known).
    headerless_crc_hash: Mapped[str] = mapped_column(sa.String(100), default="")
    headerless_md5_hash: Mapped[str] = mapped_column(sa.String(100), default="")
    headerless_sha1_hash: Mapped[str] = mapped_column(sa.String(100), default="")
    header: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    header_valid: Mapped[bool | None] = mapped_column()

    rom: Mapped[Rom] = relationship(back_populates="files", lazy="raise_on_sql")

    @property
    def full_path(self) -> str:
        return f"{self.file_path}/{self.file_name}"


class RomUser(TimestampMixin, Base):
    __tablename__ = "rom_user"
    __table_args__ = (sa.UniqueConstraint("rom_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rom_id: Mapped[int] = mapped_column(sa.ForeignKey("roms.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    is_main_sibling: Mapped[bool] = mapped_column(default=False)
    last_played: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    backlogged: Mapped[bool] = mapped_column(default=False)
    now_playing: Mapped[bool] = mapped_column(default=False)
    hidden: Mapped[bool] = mapped_column(default=False)
    rating: Mapped[int] = mapped_column(default=0)
    difficulty: Mapped[int] = mapped_column(default=0)
    completion: Mapped[int] = mapped_column(default=0)
    status: Mapped[str | None] = mapped_column(sa.String(20))


# --- issue 4: list summaries ------------------------------------------------------------------

FACET_KINDS = (
    "genres",
    "franchises",
    "collections",
    "companies",
    "game_modes",
    "age_ratings",
    "player_count",
    "regions",
    "languages",
    "tags",
)
FACET_VALUE_MAX = 255


class RomFacet(Base):
    """One (kind, value) of a ROM: a tag, region, language, genre... (RomM's ``roms_facets``).

    Maintained by database triggers from the ``roms`` columns (``regions``, ``languages``,
    ``tags`` and the derived ``meta_*`` columns), whatever code wrote the row: the list filters
    and ``filter_values`` read this narrow indexed table instead of parsing JSON per row.
    Values longer than :data:`FACET_VALUE_MAX` characters are truncated.
    """

    __tablename__ = "rom_facets"
    __table_args__ = (sa.Index("ix_rom_facets_platform_kind_value", "platform_id", "kind", "value"),)

    kind: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(FACET_VALUE_MAX), primary_key=True)
    rom_id: Mapped[int] = mapped_column(sa.ForeignKey("roms.id", ondelete="CASCADE"), primary_key=True, index=True)
    platform_id: Mapped[int] = mapped_column()


class ChangeCounter(Base):
    """Counters bumped by database triggers on every write to the tables a ROM list reads.

    ``library``: roms, rom_files, platforms; ``userdata``: rom_user, collections,
    collections_roms, smart_collections, users. A list result computed under a pair of values
    stays valid while they are unchanged (the bump commits with the write, on every replica).
    """

    __tablename__ = "change_counters"

    name: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


# Registers the before-flush hook that keeps the derived ``meta_*`` columns in step with the
# metadata blobs, wherever Rom objects are written from (API, scanner, CLI, tests).
from romshelf.roms import derived as _derived  # noqa: E402, F401
