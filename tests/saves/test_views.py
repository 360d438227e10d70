"""Asset views shared with the ROM detail: screenshot linking and visibility of others' assets."""

from __future__ import annotations

from factories import make_rom

from romshelf.saves.models import Save, Screenshot, State
from romshelf.saves.views import assets_for_rom


def _add(ctx, obj):
    with ctx.db.session() as s:
        s.add(obj)
        s.commit()
        s.refresh(obj)
        return obj


def test_assets_for_rom(ctx, users):
    a, b = users.viewer("a"), users.viewer("b")
    rom = make_rom(ctx, "gba", b"x" * 10, fs_name="Game.gba")
    own = _add(ctx, Save(rom_id=rom.id, user_id=a.id, file_name="game.srm", file_path="u/a", emulator="mgba"))
    _add(ctx, Screenshot(rom_id=rom.id, user_id=a.id, file_name="game.png", file_path="u/a/shots"))
    _add(ctx, Save(rom_id=rom.id, user_id=b.id, file_name="b.srm", file_path="u/b", is_public=True))
    _add(ctx, Save(rom_id=rom.id, user_id=b.id, file_name="secret.srm", file_path="u/b"))
    _add(ctx, State(rom_id=rom.id, user_id=a.id, file_name="game.state", file_path="u/a"))
    with ctx.db.read() as s:
        got = assets_for_rom(s, rom.id, a.id)
    assert [x.id for x in got.user_saves] == [own.id]
    assert got.user_saves[0].screenshot is not None and got.user_saves[0].screenshot.file_name == "game.png"
    assert got.user_saves[0].download_path.startswith(f"/api/saves/{own.id}/content?timestamp=2")
    assert " " not in got.user_saves[0].download_path
    assert sorted(x.file_name for x in got.all_user_saves) == ["b.srm", "game.srm"]
    assert {x.username for x in got.all_user_saves} == {"a", "b"}
    assert [x.file_name for x in got.user_states] == ["game.state"]
    assert got.user_states[0].screenshot is not None  # "game.png" stem matches "game.state"'s stem
    assert got.all_user_screenshots == []  # not a gallery screenshot
