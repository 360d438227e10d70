"""foundation schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import romshelf.core.db
from romshelf.migrations.helpers import TABLE_OPTS

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platforms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("fs_slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("custom_name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=True),
        sa.Column("family_name", sa.String(length=100), nullable=True),
        sa.Column("family_slug", sa.String(length=100), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("url_logo", sa.String(length=1000), nullable=True),
        sa.Column("igdb_id", sa.Integer(), nullable=True),
        sa.Column("sgdb_id", sa.Integer(), nullable=True),
        sa.Column("moby_id", sa.Integer(), nullable=True),
        sa.Column("ss_id", sa.Integer(), nullable=True),
        sa.Column("ra_id", sa.Integer(), nullable=True),
        sa.Column("launchbox_id", sa.Integer(), nullable=True),
        sa.Column("hasheous_id", sa.Integer(), nullable=True),
        sa.Column("tgdb_id", sa.Integer(), nullable=True),
        sa.Column("flashpoint_id", sa.Integer(), nullable=True),
        sa.Column("igdb_slug", sa.String(length=100), nullable=True),
        sa.Column("moby_slug", sa.String(length=100), nullable=True),
        sa.Column("hltb_slug", sa.String(length=100), nullable=True),
        sa.Column("libretro_slug", sa.String(length=200), nullable=True),
        sa.Column("aspect_ratio", sa.String(length=10), nullable=False),
        sa.Column("missing_from_fs", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platforms")),
        sa.UniqueConstraint("fs_slug", name=op.f("uq_platforms_fs_slug")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("platforms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_platforms_slug"), ["slug"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("hashed_password", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("avatar_path", sa.String(length=255), nullable=False),
        sa.Column("last_login", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("last_active", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("ra_username", sa.String(length=255), nullable=True),
        sa.Column("ui_settings", sa.JSON(), nullable=True),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
        **TABLE_OPTS,
    )
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("is_favorite", sa.Boolean(), nullable=False),
        sa.Column("url_cover", sa.Text(), nullable=False),
        sa.Column("path_cover_s", sa.Text(), nullable=False),
        sa.Column("path_cover_l", sa.Text(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_collections_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collections_user_id"), ["user_id"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("platform", sa.String(length=50), nullable=True),
        sa.Column("client", sa.String(length=50), nullable=True),
        sa.Column("client_version", sa.String(length=50), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("mac_address", sa.String(length=17), nullable=True),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("client_device_identifier", sa.String(length=255), nullable=True),
        sa.Column("sync_mode", sa.String(length=20), nullable=False),
        sa.Column("sync_enabled", sa.Boolean(), nullable=False),
        sa.Column("sync_config", sa.JSON(), nullable=True),
        sa.Column("last_seen", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_user_id"), ["user_id"], unique=False)

    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("expires_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_refresh_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_refresh_tokens")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_tokens_family"), ["family"], unique=False)
        batch_op.create_index(batch_op.f("ix_refresh_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "roms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("igdb_id", sa.Integer(), nullable=True),
        sa.Column("sgdb_id", sa.Integer(), nullable=True),
        sa.Column("moby_id", sa.Integer(), nullable=True),
        sa.Column("ss_id", sa.Integer(), nullable=True),
        sa.Column("ra_id", sa.Integer(), nullable=True),
        sa.Column("launchbox_id", sa.Integer(), nullable=True),
        sa.Column("hasheous_id", sa.Integer(), nullable=True),
        sa.Column("tgdb_id", sa.Integer(), nullable=True),
        sa.Column("hltb_id", sa.Integer(), nullable=True),
        sa.Column("flashpoint_id", sa.String(length=100), nullable=True),
        sa.Column("gamelist_id", sa.String(length=100), nullable=True),
        sa.Column("libretro_id", sa.String(length=64), nullable=True),
        sa.Column("fs_name", sa.String(length=450), nullable=False),
        sa.Column("fs_name_no_tags", sa.String(length=450), nullable=False),
        sa.Column("fs_name_no_ext", sa.String(length=450), nullable=False),
        sa.Column("fs_extension", sa.String(length=100), nullable=False),
        sa.Column("fs_path", sa.String(length=1000), nullable=False),
        sa.Column("fs_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=350), nullable=False),
        sa.Column("name_sort_key", sa.String(length=500), nullable=False),
        sa.Column("slug", sa.String(length=400), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("igdb_metadata", sa.JSON(), nullable=False),
        sa.Column("moby_metadata", sa.JSON(), nullable=False),
        sa.Column("ss_metadata", sa.JSON(), nullable=False),
        sa.Column("ra_metadata", sa.JSON(), nullable=False),
        sa.Column("launchbox_metadata", sa.JSON(), nullable=False),
        sa.Column("hasheous_metadata", sa.JSON(), nullable=False),
        sa.Column("flashpoint_metadata", sa.JSON(), nullable=False),
        sa.Column("hltb_metadata", sa.JSON(), nullable=False),
        sa.Column("gamelist_metadata", sa.JSON(), nullable=False),
        sa.Column("manual_metadata", sa.JSON(), nullable=False),
        sa.Column("path_cover_s", sa.Text(), nullable=False),
        sa.Column("path_cover_l", sa.Text(), nullable=False),
        sa.Column("url_cover", sa.Text(), nullable=False),
        sa.Column("path_manual", sa.Text(), nullable=False),
        sa.Column("url_manual", sa.Text(), nullable=False),
        sa.Column("path_screenshots", sa.JSON(), nullable=False),
        sa.Column("url_screenshots", sa.JSON(), nullable=False),
        sa.Column("revision", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("crc_hash", sa.String(length=100), nullable=False),
        sa.Column("md5_hash", sa.String(length=100), nullable=False),
        sa.Column("sha1_hash", sa.String(length=100), nullable=False),
        sa.Column("ra_hash", sa.String(length=100), nullable=False),
        sa.Column("missing_from_fs", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_roms_platform_id_platforms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roms")),
        sa.UniqueConstraint("platform_id", "fs_name", name=op.f("uq_roms_platform_id_fs_name")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("roms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_roms_crc_hash"), ["crc_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_flashpoint_id"), ["flashpoint_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_hasheous_id"), ["hasheous_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_hltb_id"), ["hltb_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_igdb_id"), ["igdb_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_launchbox_id"), ["launchbox_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_md5_hash"), ["md5_hash"], unique=False)
        batch_op.create_index("ix_roms_missing_sort", ["missing_from_fs", "name_sort_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_moby_id"), ["moby_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_name_sort_key"), ["name_sort_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_platform_id"), ["platform_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_ra_hash"), ["ra_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_ra_id"), ["ra_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_sha1_hash"), ["sha1_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_ss_id"), ["ss_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_roms_tgdb_id"), ["tgdb_id"], unique=False)

    op.create_table(
        "smart_collections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("filter_criteria", sa.JSON(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_smart_collections_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_collections")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("smart_collections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_smart_collections_user_id"), ["user_id"], unique=False)

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("expires_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "client_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("hashed_token", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("expires_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_client_tokens_device_id_devices"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_client_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_tokens")),
        sa.UniqueConstraint("hashed_token", name=op.f("uq_client_tokens_hashed_token")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("client_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_tokens_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_client_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "collections_roms",
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("rom_id", sa.Integer(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collections_roms_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rom_id"], ["roms.id"], name=op.f("fk_collections_roms_rom_id_roms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("collection_id", "rom_id", name=op.f("pk_collections_roms")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("collections_roms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_collections_roms_rom_id"), ["rom_id"], unique=False)

    op.create_table(
        "rom_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rom_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=450), nullable=False),
        sa.Column("file_path", sa.String(length=1000), nullable=False),
        sa.Column("file_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_modified", sa.Float(), nullable=True),
        sa.Column("crc_hash", sa.String(length=100), nullable=False),
        sa.Column("md5_hash", sa.String(length=100), nullable=False),
        sa.Column("sha1_hash", sa.String(length=100), nullable=False),
        sa.Column("ra_hash", sa.String(length=100), nullable=False),
        sa.Column("chd_sha1_hash", sa.String(length=100), nullable=False),
        sa.Column("archive_members", sa.JSON(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("missing_from_fs", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rom_id"], ["roms.id"], name=op.f("fk_rom_files_rom_id_roms"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rom_files")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("rom_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rom_files_crc_hash"), ["crc_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_rom_files_md5_hash"), ["md5_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_rom_files_rom_id"), ["rom_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rom_files_sha1_hash"), ["sha1_hash"], unique=False)

    op.create_table(
        "rom_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rom_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("is_main_sibling", sa.Boolean(), nullable=False),
        sa.Column("last_played", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("backlogged", sa.Boolean(), nullable=False),
        sa.Column("now_playing", sa.Boolean(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("difficulty", sa.Integer(), nullable=False),
        sa.Column("completion", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=True),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rom_id"], ["roms.id"], name=op.f("fk_rom_user_rom_id_roms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_rom_user_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rom_user")),
        sa.UniqueConstraint("rom_id", "user_id", name=op.f("uq_rom_user_rom_id_user_id")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("rom_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rom_user_rom_id"), ["rom_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rom_user_user_id"), ["user_id"], unique=False)

    op.create_table(
        "saves",
        sa.Column("emulator", sa.String(length=255), nullable=True),
        sa.Column("slot", sa.String(length=255), nullable=True),
        sa.Column("content_hash", sa.String(length=32), nullable=True),
        sa.Column("origin_device_id", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rom_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=450), nullable=False),
        sa.Column("file_name_no_tags", sa.String(length=450), nullable=False),
        sa.Column("file_name_no_ext", sa.String(length=450), nullable=False),
        sa.Column("file_extension", sa.String(length=100), nullable=False),
        sa.Column("file_path", sa.String(length=1000), nullable=False),
        sa.Column("file_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("missing_from_fs", sa.Boolean(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["origin_device_id"], ["devices.id"], name=op.f("fk_saves_origin_device_id_devices"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["rom_id"], ["roms.id"], name=op.f("fk_saves_rom_id_roms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_saves_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saves")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("saves", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saves_rom_id"), ["rom_id"], unique=False)
        batch_op.create_index("ix_saves_rom_user_hash", ["rom_id", "user_id", "content_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_saves_slot"), ["slot"], unique=False)
        batch_op.create_index(batch_op.f("ix_saves_user_id"), ["user_id"], unique=False)

    op.create_table(
        "screenshots",
        sa.Column("is_gallery", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rom_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=450), nullable=False),
        sa.Column("file_name_no_tags", sa.String(length=450), nullable=False),
        sa.Column("file_name_no_ext", sa.String(length=450), nullable=False),
        sa.Column("file_extension", sa.String(length=100), nullable=False),
        sa.Column("file_path", sa.String(length=1000), nullable=False),
        sa.Column("file_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("missing_from_fs", sa.Boolean(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rom_id"], ["roms.id"], name=op.f("fk_screenshots_rom_id_roms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_screenshots_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screenshots")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("screenshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_screenshots_rom_id"), ["rom_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_screenshots_user_id"), ["user_id"], unique=False)

    op.create_table(
        "states",
        sa.Column("emulator", sa.String(length=255), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rom_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=450), nullable=False),
        sa.Column("file_name_no_tags", sa.String(length=450), nullable=False),
        sa.Column("file_name_no_ext", sa.String(length=450), nullable=False),
        sa.Column("file_extension", sa.String(length=100), nullable=False),
        sa.Column("file_path", sa.String(length=1000), nullable=False),
        sa.Column("file_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("missing_from_fs", sa.Boolean(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rom_id"], ["roms.id"], name=op.f("fk_states_rom_id_roms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_states_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_states")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("states", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_states_rom_id"), ["rom_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_states_user_id"), ["user_id"], unique=False)

    op.create_table(
        "device_save_sync",
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("save_id", sa.Integer(), nullable=False),
        sa.Column("last_synced_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("is_untracked", sa.Boolean(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_save_sync_device_id_devices"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["save_id"], ["saves.id"], name=op.f("fk_device_save_sync_save_id_saves"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", "save_id", name=op.f("pk_device_save_sync")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("device_save_sync", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_save_sync_save_id"), ["save_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MariaDB (FK needs them).
    for table in [
        "device_save_sync",
        "states",
        "screenshots",
        "saves",
        "rom_user",
        "rom_files",
        "collections_roms",
        "client_tokens",
        "web_sessions",
        "smart_collections",
        "roms",
        "refresh_tokens",
        "devices",
        "collections",
        "users",
        "platforms",
    ]:
        op.drop_table(table)
