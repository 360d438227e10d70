"""The serving process imports only romshelf.app: every table must still be known to the ORM."""

from __future__ import annotations

import subprocess
import sys


def test_app_module_knows_every_table():
    code = (
        "import romshelf.app\n"
        "from romshelf.core.db import Base\n"
        "from romshelf.accounts.models import ClientToken\n"
        "import sqlalchemy as sa\n"
        "assert 'devices' in Base.metadata.tables\n"
        "sa.orm.configure_mappers()\n"
        "[fk.column for t in Base.metadata.sorted_tables for fk in t.foreign_keys]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
