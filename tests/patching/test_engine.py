"""The patch engine, format by format: happy paths, checksum mismatches (applied, not
validated), truncated patches and hostile ones (huge size claims, offsets past the end,
runaway numbers). Every patch is built in code by tests/patching/encoders.py."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from factories import random_bytes
from patching import encoders as enc

from romshelf.patching.engine import PatchError, ToolMissing, apply_patch, detect

MiB = 1024 * 1024


@pytest.fixture
def run(tmp_path):
    counter = iter(range(10**6))

    def _run(rom: bytes, patch: bytes, *, max_bytes: int = 64 * MiB, **kw):
        n = next(counter)
        rp, pp, op = tmp_path / f"rom{n}", tmp_path / f"patch{n}", tmp_path / f"out{n}"
        rp.write_bytes(rom)
        pp.write_bytes(patch)
        try:
            result = apply_patch(rp, pp, op, max_bytes=max_bytes, **kw)
        except PatchError:
            assert not op.exists(), "a failed patch leaves no output behind"
            raise
        return result, op.read_bytes()

    return _run


def mutate(data: bytes, seed: int, n: int = 40, grow: int = 0) -> bytes:
    out = bytearray(data)
    rnd = random_bytes(n * 8, seed=seed)
    for i in range(n):
        at = int.from_bytes(rnd[i * 8 : i * 8 + 4], "little") % len(out)
        length = 1 + rnd[i * 8 + 4] % 30
        out[at : at + length] = random_bytes(min(length, len(out) - at), seed=seed * 1000 + i)
    return bytes(out) + random_bytes(grow, seed=seed + 7) if grow >= 0 else bytes(out[:grow])


SRC = random_bytes(300_000, seed=1)


# --- detection and limits ----------------------------------------------------------------------


def test_detect_by_magic_not_extension():
    assert detect(b"PATCH\0\0\0") == "IPS"
    assert detect(b"IPS32\0\0\0") == "IPS"
    assert detect(b"UPS1\x80\x80") == "UPS"
    assert detect(b"BPS1\x80") == "BPS"
    assert detect(b"PPF30\x02") == "PPF"
    assert detect(b"APS10\x01\x00") == "APS (N64)"
    assert detect(b"APS1\x00\x00\x01\x00") == "APS (GBA)"
    assert detect(b"NINJA2\x00") == "RUP"
    assert detect(b"\xd6\xc3\xc4\x00\x00") == "xdelta/VCDIFF"
    with pytest.raises(PatchError, match=r"Unsupported or invalid patch format \(the file starts with 50 4b 03 04"):
        detect(b"PK\x03\x04rest")


def test_empty_unknown_and_oversized(run):
    with pytest.raises(PatchError, match="Patch file is empty"):
        run(SRC, b"")
    with pytest.raises(PatchError, match="Unsupported or invalid patch format"):
        run(SRC, b"not a patch at all")
    with pytest.raises(PatchError, match=r"ROM file is too large to patch \(300000 bytes, max 1000\)"):
        run(SRC, enc.ips_records([]), max_bytes=1000)
    with pytest.raises(PatchError, match="Patch file is too large"):
        run(b"x", enc.ips_records([(0, b"y" * 2000)]), max_bytes=1000)


# --- IPS ---------------------------------------------------------------------------------------


def test_ips_happy_path_rle_growth_and_truncation(run):
    tgt = mutate(SRC, 2)
    result, out = run(SRC, enc.ips(SRC, tgt))
    assert out == tgt and result.validated and result.format == "IPS"
    patch = enc.ips_records([(0, b"HEAD"), (10, "rle", 1000, 0xAB), (len(SRC) + 5, b"tail")])
    result, out = run(SRC, patch)
    assert out[:4] == b"HEAD" and out[10:1010] == b"\xab" * 1000
    assert out[len(SRC) : len(SRC) + 5] == bytes(5)  # the gap past the old end is zeros
    assert out[len(SRC) + 5 :] == b"tail" and result.size == len(SRC) + 9
    # Lunar IPS truncation extension
    result, out = run(SRC, enc.ips_records([(3, b"zz")], truncate=1000))
    assert out == SRC[:3] + b"zz" + SRC[5:1000]
    # EBP-style metadata after EOF is ignored
    result, out = run(SRC, enc.ips_records([(0, b"Q")]) + b'{"title": "x"}')
    assert out == b"Q" + SRC[1:]


def test_ips32(run):
    big_off = 0x01000000 + 10
    result, out = run(SRC, enc.ips_records([(1, b"ab"), (big_off, b"cd")], wide=True))
    assert result.format == "IPS32" and out[1:3] == b"ab" and out[big_off:] == b"cd"


def test_ips_truncated(run):
    patch = enc.ips(SRC, mutate(SRC, 3))
    for cut in (7, 9, len(patch) - 20, len(patch) - 3, len(patch) - 1):
        with pytest.raises(PatchError, match="IPS patch"):
            run(SRC, patch[:cut])
    with pytest.raises(PatchError, match="no EOF marker"):
        run(SRC, enc.ips_records([(0, b"x")], eof=False))


def test_ips_hostile_offsets_hit_the_size_limit(run):
    with pytest.raises(PatchError, match=r"more than the limit of 1\.0 MiB"):
        run(b"x" * 100, enc.ips_records([(0xFFFFF0, b"far away")]), max_bytes=MiB)
    with pytest.raises(PatchError, match="limit"):
        run(b"x" * 100, enc.ips_records([(0xFFFFFF - 5, "rle", 0xFFFF, 1)]), max_bytes=MiB)
    with pytest.raises(PatchError, match="truncation size"):
        run(b"x" * 100, enc.ips_records([], truncate=0xFFFFFF), max_bytes=MiB)


# --- UPS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("grow", [0, 5000, -5000])
def test_ups_happy_path(run, grow):
    tgt = mutate(SRC, 4, grow=grow)
    result, out = run(SRC, enc.ups(SRC, tgt))
    assert out == tgt
    assert result.validated and result.format == "UPS" and result.size == len(tgt)


def test_ups_wrong_source_is_applied_but_not_validated(run):
    tgt = mutate(SRC, 5)
    other = mutate(SRC, 6)
    result, out = run(other, enc.ups(SRC, tgt))
    assert not result.validated
    assert any("input CRC32" in n for n in result.notes)
    assert len(out) == len(tgt)


def test_ups_damaged_truncated_and_hostile(run):
    patch = enc.ups(SRC, mutate(SRC, 7))
    damaged = bytearray(patch)
    damaged[20] ^= 0x55
    with pytest.raises(PatchError, match="UPS patch is damaged or truncated"):
        run(SRC, bytes(damaged))
    for cut in (3, 10, len(patch) // 2, len(patch) - 1):
        with pytest.raises(PatchError, match="UPS"):
            run(SRC, patch[:cut])

    def sealed(body: bytes) -> bytes:
        body += struct.pack("<II", zlib.crc32(SRC), 0)
        return body + struct.pack("<I", zlib.crc32(body))

    # an output of a terabyte, with a valid CRC: refused before anything is written
    with pytest.raises(PatchError, match=r"claims an output of 1\.0 TiB"):
        run(SRC, sealed(b"UPS1" + enc.varint(len(SRC)) + enc.varint(1 << 40)))
    # a hunk far past the end
    with pytest.raises(PatchError, match="past the end of the output"):
        run(SRC, sealed(b"UPS1" + enc.varint(len(SRC)) + enc.varint(len(SRC)) + enc.varint(1 << 50) + b"\x01\x00"))
    # a number that never ends
    with pytest.raises(PatchError, match="number too long"):
        run(SRC, sealed(b"UPS1" + b"\x00" * 40))
    # XOR data that never ends (no terminator before the footer)
    with pytest.raises(PatchError, match="truncated"):
        run(SRC, sealed(b"UPS1" + enc.varint(len(SRC)) + enc.varint(len(SRC)) + enc.varint(0) + b"\x01" * 50))


# --- BPS ---------------------------------------------------------------------------------------


def test_bps_linear_happy_path(run):
    for grow in (0, 3000, -3000):
        tgt = mutate(SRC, 8, grow=grow)
        result, out = run(SRC, enc.bps(SRC, tgt, metadata=b"<meta>hello</meta>"))
        assert out == tgt and result.validated and result.format == "BPS"
        assert result.description == "<meta>hello</meta>"


def test_bps_every_action_including_overlapping_target_copy(run):
    src = b"0123456789abcdefghij"
    actions = [
        (enc.SOURCE_READ, 4),  # "0123"
        (enc.TARGET_READ, b"XY"),  # "XY"
        (enc.SOURCE_COPY, 6, 10),  # "abcdef" from source offset 10
        (enc.TARGET_COPY, 9, 4),  # 9 bytes from target offset 4, written at 12: "XYabcdefX" (overlaps)
        (enc.TARGET_COPY, 4, 0),  # "0123" (a backwards relative offset)
        (enc.SOURCE_COPY, 4, 16),  # "ghij"
    ]
    tgt = b"0123" + b"XY" + b"abcdef" + b"XYabcdefX" + b"0123" + b"ghij"
    result, out = run(src, enc.bps_actions(src, tgt, actions))
    assert out == tgt and result.validated
    # a true run-length copy: the source overlaps what is being written (period 2)
    tgt = b"ab" + b"ab" * 500_000
    result, out = run(b"", enc.bps_actions(b"", tgt, [(enc.TARGET_READ, b"ab"), (enc.TARGET_COPY, 1_000_000, 0)]))
    assert out == tgt and result.validated


def test_bps_wrong_source(run):
    tgt = mutate(SRC, 9)
    other = mutate(SRC, 10)
    result, _out = run(other, enc.bps(SRC, tgt))
    assert not result.validated and any("source CRC32" in n for n in result.notes)
    with pytest.raises(PatchError, match="reads past the end of the source ROM"):
        run(SRC[:1000], enc.bps(SRC, tgt))


def test_bps_damaged_truncated_and_hostile(run):
    patch = enc.bps(SRC, mutate(SRC, 11))
    with pytest.raises(PatchError, match="damaged or truncated"):
        run(SRC, patch[:-10] + patch[-9:])
    with pytest.raises(PatchError, match="truncated or not a BPS patch"):
        run(SRC, patch[:10])
    with pytest.raises(PatchError, match=r"claims an output of 1\.0 TiB"):
        run(SRC, _bps_claim())
    src = b"abcdefgh"
    with pytest.raises(PatchError, match="not written yet"):
        run(src, enc.bps_actions(src, b"abcd", [(enc.TARGET_COPY, 4, 0)]))
    with pytest.raises(PatchError, match="outside the source ROM"):
        run(src, enc.bps_actions(src, b"abcd", [(enc.SOURCE_COPY, 4, 6)]))
    with pytest.raises(PatchError, match="writes past the end of the target"):
        run(src, enc.bps_actions(src, b"ab", [(enc.SOURCE_READ, 8)]))
    with pytest.raises(PatchError, match="ended after 2 of 4 output bytes"):
        run(src, enc.bps_actions(src, b"abcd", [(enc.SOURCE_READ, 2)]))


def _bps_claim() -> bytes:
    body = b"BPS1" + enc.varint(0) + enc.varint(1 << 40) + enc.varint(0)
    body += struct.pack("<II", 0, 0)
    return body + struct.pack("<I", zlib.crc32(body))


# --- PPF ---------------------------------------------------------------------------------------

ISO = random_bytes(0x9320 + 4096, seed=12)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_ppf_happy_path(run, version):
    tgt = mutate(ISO, 13)
    kw: dict = {}
    if version == 2:
        kw = {"block": ISO[0x9320 : 0x9320 + 1024], "input_size": len(ISO)}
    if version == 3:
        kw = {"block": ISO[0x9320 : 0x9320 + 1024]}
    result, out = run(ISO, enc.ppf_from(version, ISO, tgt, diz=b"FILE_ID.DIZ text\r\n", **kw))
    assert out == tgt and result.validated and result.format == f"PPF{version}"
    assert result.description == "test patch"


def test_ppf_block_check_and_size_mismatch(run):
    tgt = mutate(ISO, 14)
    other = mutate(ISO, 15, n=400)
    result, _out = run(other, enc.ppf_from(3, ISO, tgt, block=ISO[0x9320 : 0x9320 + 1024]))
    assert not result.validated and "block" in result.notes[-1]
    result, _ = run(ISO[:-1], enc.ppf_from(2, ISO, tgt, block=ISO[0x9320 : 0x9320 + 1024], input_size=len(ISO)))
    assert not result.validated


def test_ppf3_undo_data_and_gi_images(run):
    records = [(5, b"abc"), (0x80A0 + 10, b"Z")]
    undo = [ISO[5:8], ISO[0x80AA:0x80AB]]
    result, out = run(ISO, enc.ppf(3, records, undo=undo, image_type=1, block=ISO[0x80A0 : 0x80A0 + 1024]))
    assert result.validated
    assert out[5:8] == b"abc" and out[0x80AA] == ord("Z") and len(out) == len(ISO)


def test_ppf_truncated_and_hostile(run):
    patch = enc.ppf_from(3, ISO, mutate(ISO, 16))
    with pytest.raises(PatchError, match="PPF3 patch is truncated"):
        run(ISO, patch[:-2])
    with pytest.raises(PatchError, match="truncated"):
        run(ISO, patch[:30])
    with pytest.raises(PatchError, match="limit"):
        run(ISO, enc.ppf(3, [(1 << 40, b"x")]), max_bytes=MiB)
    with pytest.raises(PatchError, match="invalid header"):
        run(ISO, b"PPF30\x07" + bytes(60))


# --- APS ---------------------------------------------------------------------------------------


def n64_rom() -> bytes:
    rom = bytearray(random_bytes(64 * 1024, seed=17))
    rom[0x10:0x18] = bytes.fromhex("a1b2c3d4e5f60718")
    rom[0x3C:0x3F] = b"NSM"
    return bytes(rom)


def test_aps_n64(run):
    rom = n64_rom()
    header = (1, b"NSM", bytes.fromhex("a1b2c3d4e5f60718"))
    patch = enc.aps_n64([(0x100, b"hello"), (0x200, "rle", 100, 0xEE)], len(rom) + 10, n64=header)
    result, out = run(rom, patch)
    assert result.validated and result.format == "APS (N64)"
    assert out[0x100:0x105] == b"hello" and out[0x200:0x264] == b"\xee" * 100 and len(out) == len(rom) + 10
    wrong = (1, b"NSE", bytes.fromhex("a1b2c3d4e5f60718"))
    result, _ = run(rom, enc.aps_n64([(0, b"x")], len(rom), n64=wrong))
    assert not result.validated
    # Doctor V64 images are byte-swapped: the header check swaps too
    v64 = bytearray(rom)
    v64[0::2], v64[1::2] = rom[1::2], rom[0::2]
    result, _ = run(bytes(v64), enc.aps_n64([(0, b"x")], len(rom), n64=(0, b"NSM", header[2])))
    assert result.validated
    # a simple (non-N64) APS patch shrinks the file
    result, out = run(rom, enc.aps_n64([(1, b"Q")], 1000))
    assert result.validated and out == rom[:1] + b"Q" + rom[2:1000]


def test_aps_n64_truncated_and_hostile(run):
    rom = n64_rom()
    patch = enc.aps_n64([(0x100, b"hello world")], len(rom))
    with pytest.raises(PatchError, match="APS \\(N64\\) patch is truncated"):
        run(rom, patch[:-3])
    with pytest.raises(PatchError, match="past the output size"):
        run(rom, enc.aps_n64([(len(rom) - 2, b"abcd")], len(rom)))
    with pytest.raises(PatchError, match="limit"):
        run(rom, enc.aps_n64([], 0xFFFFFFFF), max_bytes=MiB)


def test_aps_gba(run):
    src = random_bytes(4 * 0x10000, seed=18)
    tgt = mutate(src, 19, grow=0x10000)
    patch = enc.aps_gba(src, tgt)
    assert detect(patch[:16]) == "APS (GBA)"
    result, out = run(src, patch)
    assert out == tgt and result.validated and result.format == "APS (GBA)"
    other = mutate(src, 20)
    result, _ = run(other, patch)
    assert not result.validated and "CRC16" in result.notes[-1]
    with pytest.raises(PatchError, match="whole 64 KiB block"):
        run(src, patch[:-100])
    bad = bytearray(enc.aps_gba(src, tgt))
    bad[12:16] = struct.pack("<I", 0x7FFFFFFF)
    with pytest.raises(PatchError, match="past the target size"):
        run(src, bytes(bad))
    with pytest.raises(PatchError, match="claims an output"):
        run(src, b"APS1" + struct.pack("<II", len(src), 0xFFFFFFFF), max_bytes=MiB)


# --- RUP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("grow", [0, 4000, -4000])
def test_rup_happy_path_and_undo(run, grow):
    tgt = mutate(SRC, 21, grow=grow)
    patch = enc.rup(SRC, tgt, extra_entries=2)
    result, out = run(SRC, patch)
    assert out == tgt and result.validated and result.format == "RUP"
    assert result.description == "Test Title"
    # RUP is reversible: the patched ROM goes back to the original
    result, back = run(tgt, patch)
    assert back == SRC and result.validated and "(undone)" in result.notes[1]


def test_rup_wrong_rom_truncated_invalid(run):
    tgt = mutate(SRC, 22)
    patch = enc.rup(SRC, tgt)
    result, _ = run(mutate(SRC, 23), patch)
    assert not result.validated
    with pytest.raises(PatchError, match="RUP patch is truncated"):
        run(SRC, patch[:-30])
    with pytest.raises(PatchError, match="invalid command"):
        run(SRC, patch[:-1] + b"\x07")
    with pytest.raises(PatchError, match="limit"):
        huge = patch[:-1] + b"\x02" + bytes([8]) + (1 << 60).to_bytes(8, "little") + b"\x01\x01\x41" + b"\x00"
        run(SRC, huge, max_bytes=MiB)


# --- xdelta / VCDIFF ---------------------------------------------------------------------------


def xdelta_encode(tmp_path: Path, src: bytes, tgt: bytes, *flags: str) -> bytes:
    s, t, p = tmp_path / "xs", tmp_path / "xt", tmp_path / "xp"
    s.write_bytes(src)
    t.write_bytes(tgt)
    subprocess.run(["xdelta3", "-e", "-f", *flags, "-s", str(s), str(t), str(p)], check=True)
    return p.read_bytes()


def test_xdelta(run, tmp_path):
    tgt = mutate(SRC, 24, grow=1000)
    patch = xdelta_encode(tmp_path, SRC, tgt)
    result, out = run(SRC, patch)
    assert out == tgt and result.validated and result.format == "xdelta/VCDIFF"
    # the wrong ROM: xdelta3's window checksums fail; applied anyway, not validated
    result, out = run(mutate(SRC, 25), patch)
    assert not result.validated and len(out) == len(tgt)
    # plain VCDIFF (no xdelta3 extensions, no checksum)
    result, out = run(SRC, xdelta_encode(tmp_path, SRC, tgt, "-A", "-S", "none", "-n"))
    assert out == tgt and result.validated


def test_xdelta_errors(run, tmp_path):
    tgt = mutate(SRC, 26)
    patch = xdelta_encode(tmp_path, SRC, tgt)
    with pytest.raises(PatchError, match="xdelta3 could not apply the patch"):
        run(SRC, patch[: len(patch) // 2])
    with pytest.raises(PatchError, match="larger than the limit"):
        big = b"romshelf" * (MiB // 4)  # 2 MiB that compresses to a few bytes
        run(b"", xdelta_encode(tmp_path, b"", big), max_bytes=MiB)
    with pytest.raises(ToolMissing, match="xdelta3 is not installed on the server"):
        run(SRC, patch, xdelta3="/nonexistent/xdelta3")


def test_md5_of_outputs_are_stable(run):
    """Applying the same patch twice gives identical bytes (no state leaks between runs)."""
    tgt = mutate(SRC, 28)
    a = run(SRC, enc.bps(SRC, tgt))[1]
    b = run(SRC, enc.bps(SRC, tgt))[1]
    assert hashlib.md5(a).digest() == hashlib.md5(b).digest() == hashlib.md5(tgt).digest()
