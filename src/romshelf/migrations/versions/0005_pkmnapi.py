"""issue 7: the pkmnapi /v1 workspace

Content-addressed ROM data (one row per distinct body, bytes stored once), one workspace ROM per
user (unique user_id), and the users created by /v1 open sign-up.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import romshelf.core.db
from romshelf.migrations.helpers import TABLE_OPTS

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pkmnapi_rom_data",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("sha1", sa.String(length=40), nullable=False),
        sa.Column("crc32", sa.String(length=8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.LargeBinary(length=16), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_pkmnapi_rom_data")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("pkmnapi_rom_data", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pkmnapi_rom_data_md5"), ["md5"], unique=False)

    op.create_table(
        "pkmnapi_roms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("rom_data_sha256", sa.String(length=64), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("library_rom_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pkmnapi_roms_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["rom_data_sha256"],
            ["pkmnapi_rom_data.sha256"],
            name=op.f("fk_pkmnapi_roms_rom_data_sha256_pkmnapi_rom_data"),
        ),
        sa.ForeignKeyConstraint(
            ["library_rom_id"], ["roms.id"], name=op.f("fk_pkmnapi_roms_library_rom_id_roms"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pkmnapi_roms")),
        sa.UniqueConstraint("user_id", name=op.f("uq_pkmnapi_roms_user_id")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("pkmnapi_roms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pkmnapi_roms_rom_data_sha256"), ["rom_data_sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_pkmnapi_roms_library_rom_id"), ["library_rom_id"], unique=False)

    op.create_table(
        "pkmnapi_signups",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("client_token_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("reissue_after", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("delete_code_hash", sa.String(length=64), nullable=True),
        sa.Column("delete_code_expires_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pkmnapi_signups_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["client_token_id"],
            ["client_tokens.id"],
            name=op.f("fk_pkmnapi_signups_client_token_id_client_tokens"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_pkmnapi_signups")),
        sa.UniqueConstraint("email", name=op.f("uq_pkmnapi_signups_email")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("pkmnapi_signups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pkmnapi_signups_client_token_id"), ["client_token_id"], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first fails on MariaDB (FK needs them).
    for table in ["pkmnapi_signups", "pkmnapi_roms", "pkmnapi_rom_data"]:
        op.drop_table(table)
