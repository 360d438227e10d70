"""``romshelf patch ROM PATCH -o OUT`` uses the same engine as the server."""

from __future__ import annotations

from factories import random_bytes
from patching import encoders as enc
from typer.testing import CliRunner

from romshelf.cli import app

SRC = random_bytes(50_000, seed=41)
TGT = SRC[:100] + b"cli!" + SRC[104:] + b"more"


def write(tmp_path, patch: bytes):
    rom, p = tmp_path / "game.gba", tmp_path / "hack.bin"
    rom.write_bytes(SRC)
    p.write_bytes(patch)
    return rom, p


def test_cli_applies_a_patch(tmp_path, monkeypatch):
    monkeypatch.setenv("ROMSHELF_DATA_DIR", str(tmp_path / "data"))
    rom, patch = write(tmp_path, enc.bps(SRC, TGT))
    out = tmp_path / "out" / "patched.gba"
    result = CliRunner().invoke(app, ["patch", str(rom), str(patch), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == TGT
    assert "BPS patch applied" in result.output and "validated" in result.output
    # no half-written leftovers beside the output
    assert sorted(p.name for p in out.parent.iterdir()) == ["patched.gba"]
    # refuses to overwrite unless told
    result = CliRunner().invoke(app, ["patch", str(rom), str(patch), "-o", str(out)])
    assert result.exit_code == 1 and "exists" in result.output
    result = CliRunner().invoke(app, ["patch", str(rom), str(patch), "-o", str(out), "--force"])
    assert result.exit_code == 0


def test_cli_errors_and_strict(tmp_path, monkeypatch):
    monkeypatch.setenv("ROMSHELF_DATA_DIR", str(tmp_path / "data"))
    rom, patch = write(tmp_path, enc.ips(SRC, TGT)[:-10])
    out = tmp_path / "o.gba"
    result = CliRunner().invoke(app, ["patch", str(rom), str(patch), "-o", str(out)])
    assert result.exit_code == 2 and "IPS patch is truncated" in result.output
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    rom, patch = write(tmp_path, enc.ups(random_bytes(50_000, seed=1), TGT))
    result = CliRunner().invoke(app, ["patch", str(rom), str(patch), "-o", str(out)])
    assert result.exit_code == 0 and "NOT validated" in result.output
    result = CliRunner().invoke(app, ["patch", str(rom), str(patch), "-o", str(out), "--force", "--strict"])
    assert result.exit_code == 3
    monkeypatch.setenv("ROMSHELF_PATCH_MAX_BYTES", "1000")
    result = CliRunner().invoke(app, ["patch", str(rom), str(patch), "-o", str(tmp_path / "x.gba")])
    assert result.exit_code == 2 and "ROM file is too large to patch (50000 bytes, max 1000)" in result.output
