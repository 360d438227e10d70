"""issue 5: rom_files.last_modified as a double on MariaDB/MySQL

``sa.Float()`` is a 4-byte FLOAT there: an mtime such as 1795325601.41 came back as
1795330000.0, so "is the scanned row still the file on disk?" (size + mtime) could never be
answered. PostgreSQL's FLOAT and SQLite's REAL are already 8-byte doubles: nothing to do there.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column(
            "rom_files", "last_modified", existing_type=sa.Float(), type_=sa.Double(), existing_nullable=True
        )


def downgrade() -> None:
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        op.alter_column(
            "rom_files", "last_modified", existing_type=sa.Double(), type_=sa.Float(), existing_nullable=True
        )
