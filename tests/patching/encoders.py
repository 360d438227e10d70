"""Small patch encoders for the tests (and the benchmark): every format built in code, byte by
byte, from the published layouts. Deliberately simple (no clever matching), deliberately
independent of romshelf's decoders."""

from __future__ import annotations

import binascii
import hashlib
import struct
import zlib

# --- shared ------------------------------------------------------------------------------------


def diff_runs(src: bytes, tgt: bytes, max_run: int = 1 << 30) -> list[tuple[int, int]]:
    """(offset, length) runs where tgt differs from src (src zero-padded), runs <= max_run."""
    runs = []
    n = len(tgt)
    i = 0
    while i < n:
        if i < len(src) and src[i] == tgt[i]:
            i += 1
            continue
        start = i
        while i < n and i - start < max_run and not (i < len(src) and src[i] == tgt[i]):
            i += 1
        runs.append((start, i - start))
    return runs


def crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    """byuu's number encoding (UPS, BPS)."""
    out = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n == 0:
            out.append(0x80 | x)
            return bytes(out)
        out.append(x)
        n -= 1


def signed(n: int) -> bytes:
    return varint((abs(n) << 1) | (1 if n < 0 else 0))


# --- IPS ---------------------------------------------------------------------------------------


def ips_records(records: list[tuple], *, truncate: int | None = None, eof: bool = True, wide: bool = False) -> bytes:
    """records: (offset, data) or (offset, "rle", count, value)."""
    w = 4 if wide else 3
    out = bytearray(b"IPS32" if wide else b"PATCH")
    for rec in records:
        out += rec[0].to_bytes(w, "big")
        if len(rec) == 2:
            out += len(rec[1]).to_bytes(2, "big") + rec[1]
        else:
            out += b"\0\0" + rec[2].to_bytes(2, "big") + bytes([rec[3]])
    if eof:
        out += b"EEOF" if wide else b"EOF"
    if truncate is not None:
        out += truncate.to_bytes(3, "big")
    return bytes(out)


def ips(src: bytes, tgt: bytes) -> bytes:
    records = []
    for off, length in diff_runs(src, tgt, 0xFFFF):
        if off == 0x454F46:  # would read as "EOF": start one byte earlier
            off, length = off - 1, length + 1
        records.append((off, tgt[off : off + length]))
    return ips_records(records, truncate=len(tgt) if len(tgt) < len(src) else None)


# --- UPS ---------------------------------------------------------------------------------------


def ups(src: bytes, tgt: bytes, *, in_crc: int | None = None) -> bytes:
    out = bytearray(b"UPS1" + varint(len(src)) + varint(len(tgt)))
    pos = 0
    padded = src.ljust(len(tgt), b"\0")
    for off, length in diff_runs(padded, tgt):
        out += varint(off - pos)
        x = bytes(a ^ b for a, b in zip(padded[off : off + length], tgt[off : off + length], strict=True))
        assert 0 not in x
        out += x + b"\0"
        pos = off + length + 1
    out += struct.pack("<II", crc(src) if in_crc is None else in_crc, crc(tgt))
    out += struct.pack("<I", crc(bytes(out)))
    return bytes(out)


# --- BPS ---------------------------------------------------------------------------------------

SOURCE_READ, TARGET_READ, SOURCE_COPY, TARGET_COPY = range(4)


def bps_actions(src: bytes, tgt: bytes, actions: list[tuple], metadata: bytes = b"", *, src_crc=None) -> bytes:
    """actions: (SOURCE_READ, n), (TARGET_READ, data), (SOURCE_COPY, n, abs_offset),
    (TARGET_COPY, n, abs_offset) - offsets absolute, encoded relative like a real encoder."""
    out = bytearray(b"BPS1" + varint(len(src)) + varint(len(tgt)) + varint(len(metadata)) + metadata)
    src_rel = tgt_rel = 0
    for a in actions:
        kind = a[0]
        if kind == SOURCE_READ:
            out += varint(((a[1] - 1) << 2) | SOURCE_READ)
        elif kind == TARGET_READ:
            out += varint(((len(a[1]) - 1) << 2) | TARGET_READ) + a[1]
        elif kind == SOURCE_COPY:
            n, at = a[1], a[2]
            out += varint(((n - 1) << 2) | SOURCE_COPY) + signed(at - src_rel)
            src_rel = at + n
        else:
            n, at = a[1], a[2]
            out += varint(((n - 1) << 2) | TARGET_COPY) + signed(at - tgt_rel)
            tgt_rel = at + n
    out += struct.pack("<II", crc(src) if src_crc is None else src_crc, crc(tgt))
    out += struct.pack("<I", crc(bytes(out)))
    return bytes(out)


def bps(src: bytes, tgt: bytes, metadata: bytes = b"") -> bytes:
    """SourceRead where unchanged (same offset), TargetRead for the changes."""
    actions: list[tuple] = []
    pos = 0
    for off, length in diff_runs(src[: len(tgt)], tgt):
        if off > pos:
            actions.append((SOURCE_READ, off - pos))
        actions.append((TARGET_READ, tgt[off : off + length]))
        pos = off + length
    if pos < len(tgt):
        # past the source's end, unchanged zeros cannot be SourceRead
        tail = len(tgt) - pos
        if pos + tail <= len(src):
            actions.append((SOURCE_READ, tail))
        else:
            actions.append((TARGET_READ, tgt[pos:]))
    return bps_actions(src, tgt, actions, metadata)


# --- PPF ---------------------------------------------------------------------------------------


def ppf(
    version: int,
    records: list[tuple[int, bytes]],
    *,
    description: bytes = b"test patch",
    block: bytes | None = None,
    input_size: int = 0,
    image_type: int = 0,
    undo: list[bytes] | None = None,
    diz: bytes | None = None,
) -> bytes:
    out = bytearray(b"PPF" + str(version * 10).encode() + bytes([version - 1]) + description.ljust(50, b" "))
    if version == 2:
        out += struct.pack("<I", input_size) + (block or bytes(1024))
    elif version == 3:
        out += bytes([image_type, 1 if block is not None else 0, 1 if undo is not None else 0, 0])
        if block is not None:
            out += block
    for i, (off, data) in enumerate(records):
        out += struct.pack("<Q" if version == 3 else "<I", off) + bytes([len(data)]) + data
        if undo is not None:
            out += undo[i]
    if diz is not None:
        out += b"@BEGIN_FILE_ID.DIZ" + diz + b"@END_FILE_ID.DIZ"
        out += struct.pack("<I", len(diz)) if version == 2 else struct.pack("<H", len(diz))
    return bytes(out)


def ppf_from(version: int, src: bytes, tgt: bytes, **kw) -> bytes:
    records = []
    for off, length in diff_runs(src, tgt, 255):
        records.append((off, tgt[off : off + length]))
    return ppf(version, records, **kw)


# --- APS ---------------------------------------------------------------------------------------


def aps_n64(records: list[tuple], out_size: int, *, n64: tuple[int, bytes, bytes] | None = None) -> bytes:
    """records: (offset, data) or (offset, "rle", count, value); n64 = (format, cart3, crc8)."""
    out = bytearray(b"APS10" + bytes([1 if n64 else 0, 0]) + b"test".ljust(50, b" "))
    if n64:
        out += bytes([n64[0]]) + n64[1] + n64[2] + bytes(5)
    out += struct.pack("<I", out_size)
    for rec in records:
        out += struct.pack("<I", rec[0])
        if len(rec) == 2:
            out += bytes([len(rec[1])]) + rec[1]
        else:
            out += b"\0" + bytes([rec[3], rec[2]])
    return bytes(out)


def aps_gba(src: bytes, tgt: bytes, *, block_crc_src: int | None = None) -> bytes:
    block = 0x10000
    out = bytearray(b"APS1" + struct.pack("<II", len(src), len(tgt)))
    padded_src = src.ljust(len(tgt) + block, b"\0")
    padded_tgt = tgt.ljust(len(tgt) + block, b"\0")
    for off in range(0, len(tgt), block):
        a, b = padded_src[off : off + block], padded_tgt[off : off + block]
        if a == b:
            continue
        s_crc = binascii.crc_hqx(src[off : off + block], 0xFFFF) if block_crc_src is None else block_crc_src
        out += struct.pack("<IHH", off, s_crc, binascii.crc_hqx(b, 0xFFFF))
        out += bytes(x ^ y for x, y in zip(a, b, strict=True))
    return bytes(out)


# --- RUP ---------------------------------------------------------------------------------------


def _vlv(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "little") if n else b""
    return bytes([len(raw)]) + raw


def rup(src: bytes, tgt: bytes, *, name: bytes = b"game.bin", extra_entries: int = 0) -> bytes:
    head = bytearray(b"NINJA2" + b"\0" + b"author".ljust(84, b"\0") + b"1.0".ljust(11, b"\0"))
    head += b"Test Title".ljust(256, b"\0")
    head = head.ljust(0x800, b"\0")
    out = bytearray(head)
    for k in range(extra_entries):  # decoy entries for other ROMs
        out += b"\x01" + _vlv(5) + b"decoy" + b"\0" + _vlv(4) + _vlv(4)
        out += hashlib.md5(b"x%d" % k).digest() + hashlib.md5(b"y%d" % k).digest()
        out += b"\x02" + _vlv(0) + _vlv(4) + b"\x01\x02\x03\x04"
    out += b"\x01" + _vlv(len(name)) + name + b"\0" + _vlv(len(src)) + _vlv(len(tgt))
    out += hashlib.md5(src).digest() + hashlib.md5(tgt).digest()
    a, b = src, tgt
    if len(src) < len(tgt):
        overflow = bytes(x ^ 0xFF for x in tgt[len(src) :])
        out += b"A" + _vlv(len(overflow)) + overflow
        b = tgt[: len(src)]
    elif len(src) > len(tgt):
        overflow = bytes(x ^ 0xFF for x in src[len(tgt) :])
        out += b"M" + _vlv(len(overflow)) + overflow
        a = src[: len(tgt)]
    for off, length in diff_runs(a, b):
        x = bytes(p ^ q for p, q in zip(a[off : off + length], b[off : off + length], strict=True))
        out += b"\x02" + _vlv(off) + _vlv(length) + x
    out += b"\x00"
    return bytes(out)
