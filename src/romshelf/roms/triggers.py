"""Database triggers that keep the ROM list summaries right, whatever code writes the rows.

Two jobs, on SQLite, PostgreSQL and MariaDB alike:

* **Facets**: every insert/update of a ``roms`` row rewrites its ``rom_facets`` rows (tags,
  regions, languages and the derived ``meta_*`` lists, plus the player count), so the list
  filters and ``filter_values`` read one narrow indexed table. Deleting a ROM removes its facets
  (foreign-key cascade, plus an explicit trigger on SQLite).
* **Change counters**: every write to a table a ROM list depends on bumps a counter in
  ``change_counters`` in the same transaction (``library``: roms, rom_files, platforms;
  ``userdata``: rom_user, collections, collections_roms, smart_collections, users; ``hidden``:
  only the rom_user changes that hide or unhide a ROM). A cached list result is valid while
  the counters it depends on are unchanged, on every replica; a plain list depends on
  ``library`` and ``hidden`` only, so rating or playing a game does not invalidate it.

PostgreSQL uses statement-level triggers (one bump per statement; facets computed from
transition tables), SQLite and MariaDB row-level ones. :func:`ensure` re-creates anything
missing (e.g. after a table rebuild dropped a table's triggers) and is run at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger("romshelf.roms.triggers")

COUNTERS = ("library", "userdata", "hidden")
COUNTED_TABLES: dict[str, str] = {
    "roms": "library",
    "rom_files": "library",
    "platforms": "library",
    "rom_user": "userdata",
    "collections": "userdata",
    "collections_roms": "userdata",
    "smart_collections": "userdata",
    "users": "userdata",
}
# facet kind -> (roms column, is a JSON list)
FACET_SOURCES: dict[str, tuple[str, bool]] = {
    "genres": ("meta_genres", True),
    "franchises": ("meta_franchises", True),
    "collections": ("meta_collections", True),
    "companies": ("meta_companies", True),
    "game_modes": ("meta_game_modes", True),
    "age_ratings": ("meta_age_ratings", True),
    "player_count": ("meta_player_count", False),
    "regions": ("regions", True),
    "languages": ("languages", True),
    "tags": ("tags", True),
}
FACET_COLUMNS = ("platform_id", *(col for col, _ in FACET_SOURCES.values()))
VALUE_MAX = 255
_EVENTS = ("insert", "update", "delete")


# --- per-engine SQL ------------------------------------------------------------------------------


def _facet_select_sqlite(row: str, from_roms: bool) -> str:
    parts = []
    src = "roms AS r, " if from_roms else ""
    for kind, (col, is_list) in FACET_SOURCES.items():
        c = f"{row}.{col}"
        if is_list:
            arr = (
                f"CASE WHEN json_valid({c}) THEN (CASE WHEN json_type({c}) = 'array' THEN {c} ELSE '[]' END) "
                "ELSE '[]' END"
            )
            parts.append(
                f"SELECT {row}.id, {row}.platform_id, '{kind}', substr(j.value, 1, {VALUE_MAX}) "
                f"FROM {src}json_each({arr}) AS j WHERE j.type = 'text' AND j.value <> ''"
            )
        else:
            frm = " FROM roms AS r" if from_roms else ""
            parts.append(
                f"SELECT {row}.id, {row}.platform_id, '{kind}', substr({c}, 1, {VALUE_MAX}){frm} "
                f"WHERE COALESCE({c}, '') <> ''"
            )
    return "\nUNION ALL ".join(parts)


def _facet_select_pg(row: str, source: str) -> str:
    parts = []
    for kind, (col, is_list) in FACET_SOURCES.items():
        c = f"{row}.{col}"
        if is_list:
            parts.append(
                f"SELECT {row}.id, {row}.platform_id, '{kind}', left(e.v #>> '{{}}', {VALUE_MAX}) "
                f"FROM {source} CROSS JOIN LATERAL json_array_elements("
                f"CASE WHEN json_typeof({c}) = 'array' THEN {c} ELSE '[]'::json END) AS e(v) "
                f"WHERE json_typeof(e.v) = 'string' AND (e.v #>> '{{}}') <> ''"
            )
        else:
            parts.append(
                f"SELECT {row}.id, {row}.platform_id, '{kind}', left({c}, {VALUE_MAX}) FROM {source} "
                f"WHERE COALESCE({c}, '') <> ''"
            )
    return "\nUNION ALL ".join(parts)


def _facet_select_mysql(row: str, from_roms: bool) -> str:
    parts = []
    src = "roms AS r, " if from_roms else ""
    for kind, (col, is_list) in FACET_SOURCES.items():
        c = f"{row}.{col}"
        if is_list:
            parts.append(
                f"SELECT {row}.id, {row}.platform_id, '{kind}', LEFT(jt.v, {VALUE_MAX}) "
                f"FROM {src}JSON_TABLE(IF(JSON_TYPE({c}) = 'ARRAY', {c}, '[]'), '$[*]' "
                "COLUMNS (v VARCHAR(2000) PATH '$')) AS jt WHERE jt.v IS NOT NULL AND jt.v <> ''"
            )
        else:
            frm = " FROM roms AS r" if from_roms else ""
            parts.append(
                f"SELECT {row}.id, {row}.platform_id, '{kind}', LEFT({c}, {VALUE_MAX}){frm} "
                f"WHERE COALESCE({c}, '') <> ''"
            )
    return "\nUNION ALL ".join(parts)


_HIDDEN_TRIGGERS = ["trg_rom_user_hidden_ins", "trg_rom_user_hidden_upd", "trg_rom_user_hidden_del"]


def _trigger_names() -> list[str]:
    names = ["trg_roms_facets_ins", "trg_roms_facets_upd", "trg_roms_facets_del", *_HIDDEN_TRIGGERS]
    for table in COUNTED_TABLES:
        names += [f"trg_{table}_bump_{ev}" for ev in _EVENTS]
    return names


def _expected(dialect: str) -> set[str]:
    if dialect == "postgresql":
        return {"trg_roms_facets_ins", "trg_roms_facets_upd", *_HIDDEN_TRIGGERS} | {
            f"trg_{t}_bump" for t in COUNTED_TABLES
        }
    if dialect == "mysql":
        return {n for n in _trigger_names() if n != "trg_roms_facets_del"}
    return set(_trigger_names())


def _statements_sqlite() -> list[str]:
    cols = ", ".join(FACET_COLUMNS)
    out = [
        f"""CREATE TRIGGER trg_roms_facets_ins AFTER INSERT ON roms BEGIN
INSERT OR IGNORE INTO rom_facets (rom_id, platform_id, kind, value)
{_facet_select_sqlite("NEW", False)};
END""",
        f"""CREATE TRIGGER trg_roms_facets_upd AFTER UPDATE OF {cols} ON roms BEGIN
DELETE FROM rom_facets WHERE rom_id = OLD.id;
INSERT OR IGNORE INTO rom_facets (rom_id, platform_id, kind, value)
{_facet_select_sqlite("NEW", False)};
END""",
        """CREATE TRIGGER trg_roms_facets_del AFTER DELETE ON roms BEGIN
DELETE FROM rom_facets WHERE rom_id = OLD.id;
END""",
    ]
    for table, counter in COUNTED_TABLES.items():
        for ev in _EVENTS:
            out.append(
                f"CREATE TRIGGER trg_{table}_bump_{ev} AFTER {ev.upper()} ON {table} BEGIN "
                f"UPDATE change_counters SET value = value + 1 WHERE name = '{counter}'; END"
            )
    bump = "UPDATE change_counters SET value = value + 1 WHERE name = 'hidden';"
    out += [
        f"CREATE TRIGGER trg_rom_user_hidden_ins AFTER INSERT ON rom_user WHEN NEW.hidden BEGIN {bump} END",
        "CREATE TRIGGER trg_rom_user_hidden_upd AFTER UPDATE OF hidden, rom_id, user_id ON rom_user "
        f"WHEN OLD.hidden OR NEW.hidden BEGIN {bump} END",
        f"CREATE TRIGGER trg_rom_user_hidden_del AFTER DELETE ON rom_user WHEN OLD.hidden BEGIN {bump} END",
    ]
    return out


def _statements_mysql() -> list[str]:
    changed = " OR ".join(f"NOT (OLD.{c} <=> NEW.{c})" for c in FACET_COLUMNS)
    out = [
        f"""CREATE TRIGGER trg_roms_facets_ins AFTER INSERT ON roms FOR EACH ROW
INSERT IGNORE INTO rom_facets (rom_id, platform_id, kind, value)
{_facet_select_mysql("NEW", False)}""",
        f"""CREATE TRIGGER trg_roms_facets_upd AFTER UPDATE ON roms FOR EACH ROW
BEGIN
  IF {changed} THEN
    DELETE FROM rom_facets WHERE rom_id = OLD.id;
    INSERT IGNORE INTO rom_facets (rom_id, platform_id, kind, value)
    {_facet_select_mysql("NEW", False)};
  END IF;
END""",
    ]
    for table, counter in COUNTED_TABLES.items():
        for ev in _EVENTS:
            out.append(
                f"CREATE TRIGGER trg_{table}_bump_{ev} AFTER {ev.upper()} ON {table} FOR EACH ROW "
                f"UPDATE change_counters SET value = value + 1 WHERE name = '{counter}'"
            )
    bump = "UPDATE change_counters SET value = value + 1 WHERE name = 'hidden'"
    out += [
        f"CREATE TRIGGER trg_rom_user_hidden_ins AFTER INSERT ON rom_user FOR EACH ROW "
        f"BEGIN IF NEW.hidden THEN {bump}; END IF; END",
        "CREATE TRIGGER trg_rom_user_hidden_upd AFTER UPDATE ON rom_user FOR EACH ROW BEGIN "
        "IF (OLD.hidden OR NEW.hidden) AND NOT (OLD.hidden <=> NEW.hidden AND OLD.rom_id <=> NEW.rom_id "
        f"AND OLD.user_id <=> NEW.user_id) THEN {bump}; END IF; END",
        f"CREATE TRIGGER trg_rom_user_hidden_del AFTER DELETE ON rom_user FOR EACH ROW "
        f"BEGIN IF OLD.hidden THEN {bump}; END IF; END",
    ]
    return out


def _statements_pg() -> list[str]:
    changed = " OR ".join(f"o.{c}::text IS DISTINCT FROM n.{c}::text" for c in FACET_COLUMNS)
    changed_rows = f"(SELECT n.* FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id WHERE {changed}) AS n"
    out = [
        f"""CREATE OR REPLACE FUNCTION romshelf_roms_facets_ins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO rom_facets (rom_id, platform_id, kind, value)
  {_facet_select_pg("n", "new_rows AS n")}
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$""",
        f"""CREATE OR REPLACE FUNCTION romshelf_roms_facets_upd() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM rom_facets AS f USING new_rows AS n JOIN old_rows AS o ON o.id = n.id
    WHERE f.rom_id = n.id AND ({changed});
  INSERT INTO rom_facets (rom_id, platform_id, kind, value)
  {_facet_select_pg("n", changed_rows)}
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$""",
        """CREATE TRIGGER trg_roms_facets_ins AFTER INSERT ON roms REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION romshelf_roms_facets_ins()""",
        """CREATE TRIGGER trg_roms_facets_upd AFTER UPDATE ON roms
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION romshelf_roms_facets_upd()""",
    ]
    for counter in COUNTERS:
        out.append(
            f"""CREATE OR REPLACE FUNCTION romshelf_bump_{counter}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE change_counters SET value = value + 1 WHERE name = '{counter}';
  RETURN NULL;
END $$"""
        )
    for table, counter in COUNTED_TABLES.items():
        out.append(
            f"CREATE TRIGGER trg_{table}_bump AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION romshelf_bump_{counter}()"
        )
    out += [
        "CREATE TRIGGER trg_rom_user_hidden_ins AFTER INSERT ON rom_user FOR EACH ROW WHEN (NEW.hidden) "
        "EXECUTE FUNCTION romshelf_bump_hidden()",
        "CREATE TRIGGER trg_rom_user_hidden_upd AFTER UPDATE OF hidden, rom_id, user_id ON rom_user FOR EACH ROW "
        "WHEN (OLD.hidden OR NEW.hidden) EXECUTE FUNCTION romshelf_bump_hidden()",
        "CREATE TRIGGER trg_rom_user_hidden_del AFTER DELETE ON rom_user FOR EACH ROW WHEN (OLD.hidden) "
        "EXECUTE FUNCTION romshelf_bump_hidden()",
    ]
    return out


def _drop_statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        out = [
            "DROP TRIGGER IF EXISTS trg_roms_facets_ins ON roms",
            "DROP TRIGGER IF EXISTS trg_roms_facets_upd ON roms",
        ]
        out += [f"DROP TRIGGER IF EXISTS trg_{t}_bump ON {t}" for t in COUNTED_TABLES]
        out += [f"DROP TRIGGER IF EXISTS {name} ON rom_user" for name in _HIDDEN_TRIGGERS]
        out += [
            "DROP FUNCTION IF EXISTS romshelf_roms_facets_ins()",
            "DROP FUNCTION IF EXISTS romshelf_roms_facets_upd()",
        ]
        out += [f"DROP FUNCTION IF EXISTS romshelf_bump_{c}()" for c in COUNTERS]
        return out
    return [f"DROP TRIGGER IF EXISTS {name}" for name in _trigger_names()]


def _dialect(conn: Connection) -> str:
    name = conn.dialect.name
    return "mysql" if name in ("mysql", "mariadb") else name


# --- public ----------------------------------------------------------------------------------------


def install(conn: Connection) -> None:
    """(Re)create every trigger (and PostgreSQL trigger function) of this module."""
    dialect = _dialect(conn)
    for stmt in _drop_statements(dialect):
        conn.exec_driver_sql(stmt)
    statements = {"sqlite": _statements_sqlite, "postgresql": _statements_pg, "mysql": _statements_mysql}[dialect]()
    for stmt in statements:
        conn.exec_driver_sql(stmt)


def uninstall(conn: Connection) -> None:
    for stmt in _drop_statements(_dialect(conn)):
        conn.exec_driver_sql(stmt)


def rebuild_facets(conn: Connection, rom_ids: Iterable[int] | None = None) -> None:
    """Recompute ``rom_facets`` from the ``roms`` columns (all ROMs, or only ``rom_ids``)."""
    dialect = _dialect(conn)
    ids = None if rom_ids is None else [int(i) for i in rom_ids]
    if ids is not None and not ids:
        return
    where = "" if ids is None else f" WHERE rom_id IN ({', '.join(str(i) for i in ids)})"
    conn.exec_driver_sql(f"DELETE FROM rom_facets{where}")
    if dialect == "sqlite":
        select = _facet_select_sqlite("r", True)
        prefix = "INSERT OR IGNORE INTO"
        suffix = ""
    elif dialect == "postgresql":
        select = _facet_select_pg("r", "roms AS r")
        prefix = "INSERT INTO"
        suffix = " ON CONFLICT DO NOTHING"
    else:
        select = _facet_select_mysql("r", True)
        prefix = "INSERT IGNORE INTO"
        suffix = ""
    if ids is not None:
        id_list = ", ".join(str(i) for i in ids)
        select = select.replace("WHERE ", f"WHERE r.id IN ({id_list}) AND ")
    conn.exec_driver_sql(f"{prefix} rom_facets (rom_id, platform_id, kind, value)\n{select}{suffix}")


def ensure_counters(conn: Connection) -> None:
    """Insert the counter rows if they are missing (e.g. after a test emptied every table)."""
    present = set(conn.execute(sa.text("SELECT name FROM change_counters")).scalars())
    for name in COUNTERS:
        if name not in present:
            try:
                with conn.begin_nested():
                    conn.execute(sa.text("INSERT INTO change_counters (name, value) VALUES (:n, 1)"), {"n": name})
            except sa.exc.IntegrityError:
                pass  # another process inserted it


def present_triggers(conn: Connection) -> set[str]:
    dialect = _dialect(conn)
    if dialect == "sqlite":
        q = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    elif dialect == "postgresql":
        q = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
    else:
        q = "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()"
    return {str(n) for n in conn.exec_driver_sql(q).scalars()}


def missing_triggers(conn: Connection) -> set[str]:
    return _expected(_dialect(conn)) - present_triggers(conn)


def ensure(conn: Connection) -> bool:
    """Re-create the triggers if any is missing (and rebuild the facets they maintain).

    Returns True if something had to be repaired. Does not commit.
    """
    ensure_counters(conn)
    missing = missing_triggers(conn)
    if not missing:
        return False
    log.warning("re-creating missing ROM list triggers", extra={"missing": ",".join(sorted(missing))})
    install(conn)
    rebuild_facets(conn)
    conn.execute(sa.text("UPDATE change_counters SET value = value + 1"))
    return True
