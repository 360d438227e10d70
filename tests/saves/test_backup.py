"""``romshelf saves export`` / ``import``: backups of a user's saves and states, run through the
real CLI entry. Fixtures are built in code (ROMs, saves, zips, screenshots)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from factories import UserFactory, make_rom
from saves_helpers import zip_bytes
from typer.testing import CliRunner

from romshelf.cli import app
from romshelf.config import Settings
from romshelf.core.context import AppContext
from romshelf.core.db import Base
from romshelf.roms.models import Rom
from romshelf.saves import service
from romshelf.saves.models import Save, Screenshot, State
from romshelf.saves.views import linked_screenshots

PNG = b"\x89PNG\r\n\x1a\n" + b"shot" * 20


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["saves", *args])


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ROMSHELF_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ROMSHELF_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("ROMSHELF_AUTO_MIGRATE", "false")
    return settings


class World:
    """Alice with slot saves (one zip, one public, one with a screenshot), a slotless save, two
    states (one with a screenshot) on two ROMs; Bob with a save that must not be exported."""

    def __init__(self, ctx: AppContext, users: UserFactory) -> None:
        self.ctx = ctx
        self.alice = users.viewer("alice")
        self.bob = users.viewer("bob")
        self.rom = make_rom(ctx, "gba", b"rom one" * 50, fs_name="Game (USA).gba")
        self.rom2 = make_rom(ctx, "snes", b"rom two" * 50, fs_name="Other (Europe).sfc")
        a = self.alice.id
        shot = service.stage(ctx, PNG, "shot.png", label="Screenshot")
        s1 = service.store_save_stream(
            ctx, user_id=a, rom_id=self.rom.id, filename="game.srm", source=b"slot one", slot="main",
            emulator="mgba", screenshot=shot,
        )  # fmt: skip
        service.set_visibility(ctx, a, Save, s1.save.id, True)
        service.store_save_stream(
            ctx, user_id=a, rom_id=self.rom.id, filename="game.srm", source=zip_bytes({"a.sav": b"zipped"}),
            slot="main", emulator="mgba",
        )  # fmt: skip
        service.store_save_stream(ctx, user_id=a, rom_id=self.rom2.id, filename="other.srm", source=b"slotless")
        shot2 = service.stage(ctx, PNG + b"2", "s.jpg", label="Screenshot")
        service.store_state_stream(
            ctx, user_id=a, rom_id=self.rom.id, filename="game.state1", source=b"state one" * 1000,
            emulator="mgba", screenshot=shot2,
        )  # fmt: skip
        service.store_state_stream(ctx, user_id=a, rom_id=self.rom2.id, filename="other.state", source=b"st2")
        service.store_save_stream(ctx, user_id=self.bob.id, rom_id=self.rom.id, filename="bob.srm", source=b"bob")


@pytest.fixture
def world(ctx: AppContext, users: UserFactory, cli_env: Settings) -> World:
    return World(ctx, users)


def snapshot(ctx: AppContext, user_id: int) -> list[tuple[Any, ...]]:
    """What a restore must bring back, independent of ids and timestamps."""
    out = []
    with ctx.db.read() as s:
        saves = list(s.scalars(sa.select(Save).where(Save.user_id == user_id)))
        states = list(s.scalars(sa.select(State).where(State.user_id == user_id)))
        for kind, rows in (("save", saves), ("state", states)):
            shots = linked_screenshots(s, rows)
            for r in rows:
                shot = shots.get(r.id)
                with ctx.storages.assets.open(r.full_path) as fh:
                    data = fh.read()
                shot_data = None
                if shot is not None:
                    with ctx.storages.assets.open(shot.full_path) as fh:
                        shot_data = (shot.file_name, fh.read(), shot.is_public)
                rom_name = s.get(Rom, r.rom_id).fs_name
                out.append(
                    (kind, rom_name, r.file_name, getattr(r, "slot", None), r.emulator, r.is_public, data, shot_data)
                )
    return sorted(out, key=repr)


def wipe_assets(ctx: AppContext, user_id: int) -> None:
    with ctx.db.read() as s:
        saves = [r.id for r in service.list_saves(s, user_id)]
        states = [r.id for r in service.list_states(s, user_id)]
    service.delete_saves(ctx, user_id, saves)
    service.delete_states(ctx, user_id, states)
    assert snapshot(ctx, user_id) == []


def counts(ctx: AppContext) -> tuple[int, int, int]:
    with ctx.db.read() as s:
        return tuple(s.scalar(sa.select(sa.func.count()).select_from(m)) or 0 for m in (Save, State, Screenshot))


def test_export_wipe_import_round_trip(world: World, ctx: AppContext, tmp_path: Path) -> None:
    before = snapshot(ctx, world.alice.id)
    out = tmp_path / "backup"
    r = run("export", "alice", str(out))
    assert r.exit_code == 0, r.output
    assert "exported 3 saves, 2 states and 2 screenshots of alice" in r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["user"] == "alice" and manifest["romshelf_version"]
    items = manifest["items"]
    assert len(items) == 5 and all(i["file_name"] != "bob.srm" for i in items)
    slot_items = [i for i in items if i["slot"] == "main"]
    assert all(i["file"].startswith("saves/gba/Game (USA).gba/mgba/game [") for i in slot_items)
    public = [i for i in slot_items if i["is_public"]]
    assert len(public) == 1 and public[0]["screenshot"]["file"].startswith("screenshots/gba/Game (USA).gba/")
    assert {i["rom"]["md5"] for i in items} == {world.rom.md5_hash, world.rom2.md5_hash}
    for i in items:
        assert (out / i["file"]).stat().st_size == i["size"] and i["created_at"] and i["updated_at"]
    assert sorted(p.name for p in out.rglob("*.part")) == [] and not (out / ".manifest.json.tmp").exists()

    wipe_assets(ctx, world.alice.id)
    r = run("import", "alice", str(out))
    assert r.exit_code == 0, r.output
    assert "stored 5, already there 0, kept existing 0, failed 0" in r.output
    assert snapshot(ctx, world.alice.id) == before  # bytes, tagged names, slots, emulators, visibility, shots

    # Idempotent: the same export again creates nothing.
    n = counts(ctx)
    r = run("import", "alice", str(out))
    assert r.exit_code == 0, r.output
    assert "stored 0, already there 5" in r.output
    assert counts(ctx) == n and snapshot(ctx, world.alice.id) == before


def test_rom_filter_and_non_empty_dir(world: World, tmp_path: Path) -> None:
    out = tmp_path / "b"
    r = run("export", "alice", str(out), "--rom-id", str(world.rom2.id))
    assert r.exit_code == 0, r.output
    items = json.loads((out / "manifest.json").read_text())["items"]
    assert sorted(i["file_name"] for i in items) == ["other.srm", "other.state"]
    r = run("export", "alice", str(out))
    assert r.exit_code == 1 and "not empty" in r.output and "--force" in r.output
    r = run("export", "alice", str(out), "--force")
    assert r.exit_code == 0, r.output
    assert len(json.loads((out / "manifest.json").read_text())["items"]) == 5


def test_unknown_user(world: World, tmp_path: Path) -> None:
    r = run("export", "nobody", str(tmp_path / "x"))
    assert r.exit_code == 1 and "no user named nobody" in r.output
    assert not (tmp_path / "x").exists()
    r = run("export", "alice", str(tmp_path / "ok"))
    assert r.exit_code == 0
    r = run("import", "nobody", str(tmp_path / "ok"))
    assert r.exit_code == 1 and "no user named nobody" in r.output


def test_dry_run_writes_nothing(world: World, ctx: AppContext, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert run("export", "alice", str(out)).exit_code == 0
    wipe_assets(ctx, world.alice.id)
    n = counts(ctx)
    files = sorted(e.key for e in ctx.storages.assets.walk("users"))
    r = run("import", "alice", str(out), "--dry-run")
    assert r.exit_code == 0, r.output
    assert "dry run: would store 5" in r.output
    assert counts(ctx) == n and sorted(e.key for e in ctx.storages.assets.walk("users")) == files


def test_missing_and_corrupt_manifest(world: World, ctx: AppContext, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("import", "alice", str(empty))
    assert r.exit_code == 1 and "manifest.json is missing" in r.output
    (empty / "manifest.json").write_text("{not json")
    r = run("import", "alice", str(empty))
    assert r.exit_code == 1 and "is corrupt" in r.output
    (empty / "manifest.json").write_text(json.dumps({"format": "something else"}))
    r = run("import", "alice", str(empty))
    assert r.exit_code == 1 and "not a romshelf saves export" in r.output
    (empty / "manifest.json").write_text(json.dumps({"format": "romshelf-saves-export", "format_version": 99}))
    r = run("import", "alice", str(empty))
    assert r.exit_code == 1 and "format version 99" in r.output


def test_missing_tampered_and_unsafe_files_are_skipped_and_reported(
    world: World, ctx: AppContext, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    assert run("export", "alice", str(out)).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    by_name = {i["file_name"]: i for i in manifest["items"]}
    (out / by_name["other.srm"]["file"]).unlink()
    (out / by_name["other.state"]["file"]).write_bytes(b"st3")  # same size, other bytes
    manifest["items"].append({**by_name["other.srm"], "file": "../../etc/passwd", "file_name": "x.srm"})
    (out / "manifest.json").write_text(json.dumps(manifest))
    wipe_assets(ctx, world.alice.id)
    r = run("import", "alice", str(out))
    assert r.exit_code == 1, r.output
    assert "stored 3, already there 0, kept existing 0, failed 3" in r.output
    assert "is missing from the export" in r.output
    assert "does not match the manifest" in r.output
    assert "unsafe file path" in r.output
    names = sorted(x[2] for x in snapshot(ctx, world.alice.id))
    assert "other.srm" not in names and "other.state" not in names and "x.srm" not in names


def test_unmatched_rom_is_reported(world: World, ctx: AppContext, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert run("export", "alice", str(out)).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for i in manifest["items"]:
        if i["rom"]["fs_name"] == "Other (Europe).sfc":
            i["rom_id"] = 999_999
            i["rom"].update(md5="0" * 32, sha1="0" * 40, crc="00000000", fs_name="Gone.sfc")
    (out / "manifest.json").write_text(json.dumps(manifest))
    wipe_assets(ctx, world.alice.id)
    r = run("import", "alice", str(out))
    assert r.exit_code == 1
    assert "failed 2" in r.output and "no matching ROM on this server (snes/Gone.sfc)" in r.output
    assert len(snapshot(ctx, world.alice.id)) == 3


def _wipe_database(ctx: AppContext) -> None:
    """A second server: every table emptied (ids start over), as the suite's own cleaner does."""
    db = ctx.db
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.write_engine.begin() as conn:
        if db.engine_name == "postgresql":
            conn.execute(sa.text(f"TRUNCATE {', '.join(f'{t!r}'.replace(chr(39), chr(34)) for t in tables)} CASCADE"))
            return
        if db.engine_name == "mysql":
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=0"))
        for t in tables:
            conn.execute(sa.text(f"DELETE FROM {conn.dialect.identifier_preparer.quote(t)}"))
        if db.engine_name == "mysql":
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=1"))


def test_import_on_another_server_matches_roms_by_hash(
    world: World, ctx: AppContext, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(ctx, world.alice.id)
    out = tmp_path / "b"
    assert run("export", "alice", str(out)).exit_code == 0
    old_ids = (world.rom.id, world.rom2.id)

    _wipe_database(ctx)
    other = Settings(
        data_dir=tmp_path / "server2",
        database_url=settings.db_url,
        auto_migrate=False,
        secret_key=settings.secret_key,
        argon2_time_cost=1,
        argon2_memory_cost_kib=64,
        jobs_immediate=True,
    )
    assert other.assets_path != settings.assets_path
    monkeypatch.setenv("ROMSHELF_DATA_DIR", str(other.data_dir))
    ctx2 = AppContext.create(other, db=ctx.db)
    alice = UserFactory(ctx2).viewer("alice")
    # Decoys take the old ids; the real ROMs come later, one under another file name (hash match).
    decoys = [make_rom(ctx2, "gba", f"decoy {n}".encode() * 9, fs_name=f"Decoy {n}.gba") for n in range(3)]
    rom2 = make_rom(ctx2, "snes", b"rom two" * 50, fs_name="Other (Europe) (Rev 1).sfc")
    rom = make_rom(ctx2, "gba", b"rom one" * 50, fs_name="Game (USA).gba")
    assert {rom.id, rom2.id}.isdisjoint(old_ids)
    if ctx.db.engine_name == "sqlite":  # ids start over: the old ids now name decoys
        assert {d.id for d in decoys} >= set(old_ids)

    r = run("import", "alice", str(out))
    assert r.exit_code == 0, r.output
    after = snapshot(ctx2, alice.id)
    rename = {"Other (Europe).sfc": "Other (Europe) (Rev 1).sfc"}
    assert after == sorted(((x[0], rename.get(x[1], x[1]), *x[2:]) for x in before), key=repr)
    with ctx2.db.read() as s:
        assert {r.rom_id for r in service.list_saves(s, alice.id)} == {rom.id, rom2.id}


def test_slotless_conflict_is_kept_unless_replace(world: World, ctx: AppContext, tmp_path: Path) -> None:
    out = tmp_path / "b"
    assert run("export", "alice", str(out)).exit_code == 0
    a = world.alice.id
    service.store_save_stream(ctx, user_id=a, rom_id=world.rom2.id, filename="other.srm", source=b"newer progress")
    r = run("import", "alice", str(out))
    assert r.exit_code == 0, r.output
    assert "already there 4, kept existing 1" in r.output
    r = run("import", "alice", str(out), "--replace")
    assert r.exit_code == 0 and "stored 1" in r.output
    with ctx.db.read() as s:
        row = s.scalar(sa.select(Save).where(Save.user_id == a, Save.file_name == "other.srm"))
        with ctx.storages.assets.open(row.full_path) as fh:
            assert fh.read() == b"slotless"


def test_quota_errors_are_reported_per_item(
    world: World, ctx: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "b"
    assert run("export", "alice", str(out)).exit_code == 0
    wipe_assets(ctx, world.alice.id)
    monkeypatch.setenv("ROMSHELF_USER_QUOTA_BYTES", "200")
    r = run("import", "alice", str(out))
    assert r.exit_code == 1, r.output
    assert "Storage quota exceeded" in r.output and "failed 0" not in r.output
    assert "stored 0" not in r.output  # the small ones still went in


def test_keep_name_stores_a_tagged_slot_name_as_given(ctx: AppContext, users: UserFactory) -> None:
    alice = users.viewer("alice")
    rom = make_rom(ctx, "gba", b"rom" * 10, fs_name="G.gba")
    tagged = "game [2020-01-02_03-04-05].srm"
    kept = service.store_save_stream(
        ctx, user_id=alice.id, rom_id=rom.id, filename=tagged, source=b"a", slot="s", keep_name=True
    )
    assert kept.save.file_name == tagged
    again = service.store_save_stream(
        ctx, user_id=alice.id, rom_id=rom.id, filename=tagged, source=b"b", slot="s", keep_name=True
    )
    assert again.save.file_name == "game [2020-01-02_03-04-05] (2).srm"  # nothing overwritten
    fresh = service.store_save_stream(ctx, user_id=alice.id, rom_id=rom.id, filename=tagged, source=b"c", slot="s")
    assert fresh.save.file_name != tagged and "[2020-01-02_03-04-05]" not in fresh.save.file_name


def test_export_reports_a_stored_file_that_is_gone(world: World, ctx: AppContext, tmp_path: Path) -> None:
    with ctx.db.read() as s:
        state = s.scalar(sa.select(State).where(State.file_name == "other.state"))
    ctx.storages.assets.delete(state.full_path)
    out = tmp_path / "b"
    r = run("export", "alice", str(out))
    assert r.exit_code == 1 and "not exported" in r.output and "other.state" in r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["items"]) == 4 and len(manifest["unreadable"]) == 1


def test_slot_duplicates_and_taken_names(world: World, ctx: AppContext, tmp_path: Path) -> None:
    a = world.alice.id
    for name in ("dup [2021-01-01_00-00-00].srm", "dup [2021-01-01_00-00-01].srm"):
        service.store_save_stream(
            ctx, user_id=a, rom_id=world.rom.id, filename=name, source=b"same", slot="dup", keep_name=True,
            overwrite=True,
        )  # fmt: skip
    before = snapshot(ctx, a)
    out = tmp_path / "b"
    assert run("export", "alice", str(out)).exit_code == 0
    wipe_assets(ctx, a)
    assert run("import", "alice", str(out)).exit_code == 0
    assert snapshot(ctx, a) == before  # both identical versions of the slot came back

    # A name taken by other content: the item lands beside it as "name (2)", and a retry sees it.
    wipe_assets(ctx, a)
    service.store_save_stream(
        ctx, user_id=a, rom_id=world.rom.id, filename="dup [2021-01-01_00-00-00].srm", source=b"other",
        slot="dup", keep_name=True,
    )  # fmt: skip
    r = run("import", "alice", str(out))
    assert r.exit_code == 0 and "stored 7, already there 0" in r.output, r.output
    with ctx.db.read() as s:
        names = {x.file_name for x in service.list_saves(s, a, slot="dup")}
    assert "dup [2021-01-01_00-00-00] (2).srm" in names
    r = run("import", "alice", str(out))
    assert r.exit_code == 0 and "stored 0, already there 7" in r.output, r.output
