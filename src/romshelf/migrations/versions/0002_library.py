"""issue 3: the ROM library (jobs, upload sessions, file headers and headerless hashes)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import romshelf.core.db
from romshelf.migrations.helpers import TABLE_OPTS

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("enqueued_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("started_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("ended_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_kind_status", ["kind", "status"], unique=False)

    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=450), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("total_chunks", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expires_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_upload_sessions_platform_id_platforms"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_upload_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_sessions")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_upload_sessions_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_upload_sessions_platform_id"), ["platform_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_upload_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "upload_chunks",
        sa.Column("upload_id", sa.String(length=36), nullable=False),
        sa.Column("chunk_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["upload_sessions.id"],
            name=op.f("fk_upload_chunks_upload_id_upload_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_id", "chunk_index", name=op.f("pk_upload_chunks")),
        **TABLE_OPTS,
    )

    if op.get_bind().dialect.name == "mysql":
        # MariaDB's FLOAT is single precision (an mtime would be minutes off). SQLite's REAL and
        # PostgreSQL's FLOAT are already double precision.
        op.alter_column(
            "rom_files", "last_modified", existing_type=sa.Float(), type_=sa.Double(), existing_nullable=True
        )
    op.add_column(
        "rom_files", sa.Column("headerless_crc_hash", sa.String(length=100), nullable=False, server_default="")
    )
    op.add_column(
        "rom_files", sa.Column("headerless_md5_hash", sa.String(length=100), nullable=False, server_default="")
    )
    op.add_column(
        "rom_files", sa.Column("headerless_sha1_hash", sa.String(length=100), nullable=False, server_default="")
    )
    op.add_column("rom_files", sa.Column("header", sa.JSON(), nullable=True))
    op.add_column("rom_files", sa.Column("header_valid", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rom_files", schema=None) as batch_op:
        batch_op.drop_column("header_valid")
        batch_op.drop_column("header")
        batch_op.drop_column("headerless_sha1_hash")
        batch_op.drop_column("headerless_md5_hash")
        batch_op.drop_column("headerless_crc_hash")
    if op.get_bind().dialect.name == "mysql":
        op.alter_column(
            "rom_files", "last_modified", existing_type=sa.Double(), type_=sa.Float(), existing_nullable=True
        )
    op.drop_table("upload_chunks")
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_upload_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_upload_sessions_platform_id"))
        batch_op.drop_index(batch_op.f("ix_upload_sessions_expires_at"))
    op.drop_table("upload_sessions")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_kind_status")
    op.drop_table("jobs")
