"""issue 4: ROM list indexes and summaries, collections, notes

Adds the derived metadata columns of ``roms`` (``meta_*``), the trigger-maintained
``rom_facets`` table and ``change_counters``, the indexes the list queries use, and the
triggers of :mod:`romshelf.roms.triggers`.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import romshelf.core.db  # noqa: F401
from romshelf.migrations.helpers import TABLE_OPTS
from romshelf.roms import triggers

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON_LISTS = (
    "meta_genres",
    "meta_franchises",
    "meta_collections",
    "meta_companies",
    "meta_game_modes",
    "meta_age_ratings",
)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name

    for name in _JSON_LISTS:
        op.add_column("roms", sa.Column(name, sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    op.add_column("roms", sa.Column("meta_player_count", sa.String(100), nullable=False, server_default="1"))
    op.add_column("roms", sa.Column("meta_first_release_date", sa.BigInteger(), nullable=True))
    op.add_column("roms", sa.Column("meta_average_rating", sa.Float(), nullable=True))
    op.add_column("roms", sa.Column("meta_verified", sa.Boolean(), nullable=False, server_default=sa.false()))

    if dialect == "postgresql":
        # name_sort_key is already normalised (lowercase, padded digits): compare it bytewise on
        # every engine, so order and char index agree with SQLite and MariaDB (utf8mb4_bin).
        op.execute('ALTER TABLE roms ALTER COLUMN name_sort_key TYPE VARCHAR(500) COLLATE "C"')
        # SQLite and InnoDB secondary indexes carry the primary key; PostgreSQL needs it spelt
        # out for "ORDER BY name_sort_key, id LIMIT n" to walk the index.
        op.create_index("ix_roms_sort_id", "roms", ["name_sort_key", "id"])
    op.create_index("ix_roms_updated_at", "roms", ["updated_at"])
    op.create_index("ix_roms_platform_sort", "roms", ["platform_id", "name_sort_key"])
    op.create_index("ix_rom_files_lookup_ra_hash", "rom_files", ["ra_hash"])
    op.create_index("ix_rom_files_lookup_chd_sha1", "rom_files", ["chd_sha1_hash"])
    for kind in ("crc", "md5", "sha1"):  # by-hash and hash search also match headerless hashes
        op.create_index(f"ix_rom_files_lookup_headerless_{kind}", "rom_files", [f"headerless_{kind}_hash"])
    op.create_index("ix_rom_user_user_hidden", "rom_user", ["user_id", "hidden"])

    op.create_table(
        "rom_facets",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("rom_id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["rom_id"], ["roms.id"], name=op.f("fk_rom_facets_rom_id_roms"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("kind", "value", "rom_id", name=op.f("pk_rom_facets")),
        **TABLE_OPTS,
    )
    op.create_index("ix_rom_facets_rom_id", "rom_facets", ["rom_id"])
    op.create_index("ix_rom_facets_platform_kind_value", "rom_facets", ["platform_id", "kind", "value"])

    op.create_table(
        "change_counters",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counters")),
        **TABLE_OPTS,
    )
    counters = sa.table("change_counters", sa.column("name", sa.String), sa.column("value", sa.BigInteger))
    op.bulk_insert(counters, [{"name": n, "value": 1} for n in triggers.COUNTERS])

    triggers.install(bind)
    triggers.rebuild_facets(bind)


def downgrade() -> None:
    bind = op.get_bind()
    triggers.uninstall(bind)
    op.drop_table("change_counters")
    op.drop_table("rom_facets")  # its indexes go with it (MariaDB refuses to drop an FK's index first)
    op.drop_index("ix_rom_user_user_hidden", table_name="rom_user")
    for kind in ("crc", "md5", "sha1"):
        op.drop_index(f"ix_rom_files_lookup_headerless_{kind}", table_name="rom_files")
    op.drop_index("ix_rom_files_lookup_chd_sha1", table_name="rom_files")
    op.drop_index("ix_rom_files_lookup_ra_hash", table_name="rom_files")
    op.drop_index("ix_roms_platform_sort", table_name="roms")
    op.drop_index("ix_roms_updated_at", table_name="roms")
    if bind.dialect.name == "postgresql":
        op.drop_index("ix_roms_sort_id", table_name="roms")
        op.execute("ALTER TABLE roms ALTER COLUMN name_sort_key TYPE VARCHAR(500)")
    with op.batch_alter_table("roms") as batch:
        for name in (
            *_JSON_LISTS,
            "meta_player_count",
            "meta_first_release_date",
            "meta_average_rating",
            "meta_verified",
        ):
            batch.drop_column(name)
