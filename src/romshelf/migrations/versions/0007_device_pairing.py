"""issue 6: device pairing requests (RFC 8628-style device authorization)

Pending, approved and denied pairing requests live in the database rather than in Redis, so
every replica can answer every step. Only a SHA-256 of the device code is kept.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import romshelf.core.db
from romshelf.migrations.helpers import TABLE_OPTS

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_pairings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("client_device_identifier", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("client", sa.String(length=50), nullable=False),
        sa.Column("platform", sa.String(length=50), nullable=True),
        sa.Column("client_version", sa.String(length=50), nullable=True),
        sa.Column("requested_scopes", sa.Text(), nullable=False),
        sa.Column("poll_interval", sa.Integer(), nullable=False),
        sa.Column("created_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", romshelf.core.db.UTCDateTime(), nullable=False),
        sa.Column("last_polled_at", romshelf.core.db.UTCDateTime(), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=255), nullable=True),
        sa.Column("approved_scopes", sa.Text(), nullable=True),
        sa.Column("token_name", sa.String(length=255), nullable=True),
        sa.Column("token_expires_in", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["users.id"], name=op.f("fk_device_pairings_approved_by_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_device_pairings_device_id_devices"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_pairings")),
        sa.UniqueConstraint("device_code_hash", name=op.f("uq_device_pairings_device_code_hash")),
        sa.UniqueConstraint("user_code", name=op.f("uq_device_pairings_user_code")),
        **TABLE_OPTS,
    )
    with op.batch_alter_table("device_pairings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_pairings_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_pairings_approved_by_id"), ["approved_by_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_pairings_device_id"), ["device_id"], unique=False)


def downgrade() -> None:
    # Dropping the table drops its indexes (dropping them first fails on MariaDB: FKs need them).
    op.drop_table("device_pairings")
