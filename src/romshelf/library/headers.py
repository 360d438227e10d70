"""Console cartridge headers: internal title, declared sizes and the checks a good dump passes.

Each format is recognised from the first bytes of the file (magic numbers) or, where the format
has none, from its extension. An :class:`Inspection` is fed every byte of the file during the
single hashing pass (so global checksums cost no second read) and finally returns a JSON-able
dict stored on the RomFile (``header``) with ``valid`` = every check passed (``header_valid``).

Formats: Game Boy / Color (logo, title, CGB/SGB flags, header and global checksums), Game Boy
Advance (title, codes, fixed byte, complement check), NES (iNES / NES 2.0 sizes, mapper, size
check), Famicom Disk System, SNES (LoROM / HiROM detection, copier header, checksum and
complement with mirroring), Nintendo 64 (byte order, title, codes, CRCs as stored) and Mega
Drive / Genesis (system, titles, serial, regions, checksum).

:func:`headerless_skip` gives the size of the copier/emulator header No-Intro strips before
hashing (iNES, FDS, Atari 7800, Lynx, SNES copier headers), for the headerless hashes.
"""

from __future__ import annotations

from typing import Any

MAX_CART_BYTES = 64 * 1024 * 1024  # bigger files are not cartridge dumps
MAX_SUM_BYTES = 16 * 1024 * 1024  # global checksums over at most this many bytes

GB_LOGO = bytes.fromhex(
    "CEED6666CC0D000B03730083000C000D0008111F8889000EDCCC6EE6DDDDD999BBBB67636E0EECCCDDDC999FBBB9333E"
)
GB_EXTENSIONS = {"gb", "gbc", "sgb", "cgb", "dmg"}
GBA_EXTENSIONS = {"gba", "agb"}
SNES_EXTENSIONS = {"sfc", "smc", "swc", "fig", "bs", "st"}
MD_EXTENSIONS = {"md", "gen", "bin", "smd", "32x", "sg"}


def _ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot + 1 :].lower() if dot > 0 else ""


def _text(raw: bytes) -> str:
    """Printable text of a fixed-width header field (NUL/space padded, ASCII or Shift-JIS)."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        text = raw.decode("shift_jis")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


class ByteSum:
    """Running sums of bytes at even and odd file offsets in [start, end), streamed."""

    __slots__ = ("end", "even", "odd", "pos", "start")

    def __init__(self, start: int = 0, end: int | None = None) -> None:
        self.start = start
        self.end = end
        self.pos = 0
        self.even = 0
        self.odd = 0

    def feed(self, mv: memoryview) -> None:
        n = len(mv)
        lo = max(self.start - self.pos, 0)
        hi = n if self.end is None else min(self.end - self.pos, n)
        if hi > lo:
            part = mv[lo:hi]
            first_even = (self.pos + lo) % 2 == 0
            a, b = sum(part[0::2]), sum(part[1::2])
            if first_even:
                self.even += a
                self.odd += b
            else:
                self.even += b
                self.odd += a
        self.pos += n

    @property
    def total(self) -> int:
        return self.even + self.odd


class BlockSums:
    """Sum of bytes per fixed-size block after ``offset`` (SNES checksum with mirroring)."""

    __slots__ = ("block", "offset", "pos", "sums")

    def __init__(self, offset: int, block: int = 0x8000) -> None:
        self.offset = offset
        self.block = block
        self.pos = 0
        self.sums: list[int] = []

    def feed(self, mv: memoryview) -> None:
        i = 0
        n = len(mv)
        while i < n:
            p = self.pos + i
            if p < self.offset:
                i += min(self.offset - p, n - i)
                continue
            rel = p - self.offset
            idx, within = divmod(rel, self.block)
            take = min(self.block - within, n - i)
            if idx == len(self.sums):
                self.sums.append(0)
            self.sums[idx] += sum(mv[i : i + take])
            i += take
        self.pos += n


class Inspection:
    format = ""

    def __init__(self, name: str, size: int, first: memoryview) -> None:
        self.name = name
        self.size = size
        self.info: dict[str, Any] = {"format": self.format}
        self.parse(bytes(first[: self.head_bytes()]))

    def head_bytes(self) -> int:
        return 0x200

    def parse(self, head: bytes) -> None:
        raise NotImplementedError

    def feed(self, mv: memoryview) -> None:
        """Called with every chunk of the file, in order (override to compute checksums)."""

    def finish(self) -> dict[str, Any]:
        checks = [v for k, v in self.info.items() if k.endswith("_ok") and v is not None]
        self.info["valid"] = all(checks) if checks else None
        return self.info


# --- Game Boy / Game Boy Color ------------------------------------------------------------------
class GameBoy(Inspection):
    format = "gb"

    def parse(self, h: bytes) -> None:
        cgb = h[0x143]
        cgb_mode = {0x80: "supported", 0xC0: "required"}.get(cgb, "none")
        title_raw = h[0x134:0x143] if cgb in (0x80, 0xC0) else h[0x134:0x144]
        computed = 0
        for b in h[0x134:0x14D]:
            computed = (computed - b - 1) & 0xFF
        rom_size_code = h[0x148]
        declared = (0x8000 << rom_size_code) if rom_size_code <= 8 else None
        self.info.update(
            title=_text(title_raw),
            cgb_flag=cgb_mode,
            cgb_flag_value=cgb,
            sgb=h[0x146] == 0x03,
            cartridge_type=h[0x147],
            rom_size_code=rom_size_code,
            rom_size=declared,
            ram_size_code=h[0x149],
            destination="japan" if h[0x14A] == 0 else "overseas",
            old_licensee=h[0x14B],
            new_licensee=_text(h[0x144:0x146]) if h[0x14B] == 0x33 else None,
            version=h[0x14C],
            logo_ok=h[0x104:0x134] == GB_LOGO,
            header_checksum=_hex(h[0x14D], 2),
            header_checksum_computed=_hex(computed, 2),
            header_checksum_ok=h[0x14D] == computed,
            global_checksum=_hex(int.from_bytes(h[0x14E:0x150], "big"), 4),
            global_checksum_computed=None,
            global_checksum_ok=None,
            size_ok=None if declared is None else declared == self.size,
        )
        self._stored_global = int.from_bytes(h[0x14E:0x150], "big")
        self._sum = ByteSum() if self.size <= MAX_SUM_BYTES else None

    def feed(self, mv: memoryview) -> None:
        if self._sum is not None:
            self._sum.feed(mv)

    def finish(self) -> dict[str, Any]:
        if self._sum is not None:
            total = (self._sum.total - (self._stored_global >> 8) - (self._stored_global & 0xFF)) & 0xFFFF
            self.info["global_checksum_computed"] = _hex(total, 4)
            self.info["global_checksum_ok"] = total == self._stored_global
        return super().finish()


# --- Game Boy Advance --------------------------------------------------------------------------
class GameBoyAdvance(Inspection):
    format = "gba"

    def parse(self, h: bytes) -> None:
        computed = 0
        for b in h[0xA0:0xBD]:
            computed = (computed - b) & 0xFF
        computed = (computed - 0x19) & 0xFF
        self.info.update(
            title=_text(h[0xA0:0xAC]),
            game_code=_text(h[0xAC:0xB0]),
            maker_code=_text(h[0xB0:0xB2]),
            unit_code=h[0xB3],
            version=h[0xBC],
            fixed_value_ok=h[0xB2] == 0x96,
            header_checksum=_hex(h[0xBD], 2),
            header_checksum_computed=_hex(computed, 2),
            header_checksum_ok=h[0xBD] == computed,
        )


# --- NES (iNES / NES 2.0) and Famicom Disk System ----------------------------------------------
class Nes(Inspection):
    format = "nes"

    def head_bytes(self) -> int:
        return 16

    def parse(self, h: bytes) -> None:
        f6, f7 = h[6], h[7]
        nes2 = (f7 & 0x0C) == 0x08
        mapper = (f6 >> 4) | (f7 & 0xF0)
        submapper = None
        if nes2:
            mapper |= (h[8] & 0x0F) << 8
            submapper = h[8] >> 4
            prg = _nes2_size(h[4], h[9] & 0x0F, 16 * 1024)
            chr_ = _nes2_size(h[5], h[9] >> 4, 8 * 1024)
        else:
            prg = h[4] * 16 * 1024
            chr_ = h[5] * 8 * 1024
        trainer = bool(f6 & 0x04)
        expected = 16 + (512 if trainer else 0) + (prg or 0) + (chr_ or 0)
        # NES 2.0 files may carry miscellaneous ROM data after CHR; iNES ones should not.
        size_ok = (self.size >= expected if nes2 else self.size == expected) and bool(prg)
        self.info.update(
            header_format="NES 2.0" if nes2 else "iNES",
            mapper=mapper,
            submapper=submapper,
            prg_rom_size=prg,
            chr_rom_size=chr_,
            mirroring="four-screen" if f6 & 0x08 else ("vertical" if f6 & 0x01 else "horizontal"),
            battery=bool(f6 & 0x02),
            trainer=trainer,
            console_type=("nes", "vs-system", "playchoice-10", "extended")[f7 & 0x03],
            dirty_header=(not nes2) and any(h[12:16]),
            expected_size=expected,
            size_ok=size_ok,
        )


def _nes2_size(lsb: int, msb: int, unit: int) -> int | None:
    if msb == 0x0F:  # exponent-multiplier notation
        exponent, multiplier = lsb >> 2, (lsb & 0x03) * 2 + 1
        return (1 << exponent) * multiplier if exponent < 62 else None
    return ((msb << 8) | lsb) * unit


class FamicomDisk(Inspection):
    format = "fds"

    def head_bytes(self) -> int:
        return 0x40

    def parse(self, h: bytes) -> None:
        headered = h[:4] == b"FDS\x1a"
        body = self.size - (16 if headered else 0)
        sides = h[4] if headered else body // 65500
        disk = h[16:] if headered else h
        self.info.update(
            fds_header=headered,
            sides=sides,
            disk_info_ok=disk[1:15] == b"*NINTENDO-HVC*",
            size_ok=body > 0 and body % 65500 == 0,
        )


# --- SNES -------------------------------------------------------------------------------------
_SNES_MAPS = {
    0x20: "LoROM",
    0x21: "HiROM",
    0x22: "LoROM (S-DD1)",
    0x23: "LoROM (SA-1)",
    0x25: "ExHiROM",
    0x30: "LoROM (FastROM)",
    0x31: "HiROM (FastROM)",
    0x32: "LoROM (FastROM, S-DD1)",
    0x35: "ExHiROM (FastROM)",
}


class Snes(Inspection):
    format = "snes"

    def head_bytes(self) -> int:
        return 0x10200

    def parse(self, h: bytes) -> None:
        copier = 512 if self.size % 1024 == 512 else 0
        self._copier = copier
        best: tuple[int, int, str] | None = None
        for base, layout in ((0x7FC0, "LoROM"), (0xFFC0, "HiROM")):
            at = copier + base
            if at + 0x40 > len(h):
                continue
            score = _snes_score(h[at : at + 0x40], layout)
            if best is None or score > best[0]:
                best = (score, at, layout)
        if best is None:
            self.info.update(layout=None, size_ok=False)
            self._blocks = None
            return
        _score, at, layout = best
        hd = h[at : at + 0x40]
        complement = int.from_bytes(hd[0x1C:0x1E], "little")
        checksum = int.from_bytes(hd[0x1E:0x20], "little")
        rom_size_code = hd[0x17]
        self.info.update(
            title=_text(hd[0x00:0x15]),
            layout=layout,
            map_mode=_SNES_MAPS.get(hd[0x15], _hex(hd[0x15], 2)),
            map_mode_value=hd[0x15],
            cartridge_type=hd[0x16],
            rom_size=(1024 << rom_size_code) if rom_size_code < 16 else None,
            ram_size=(1024 << hd[0x18]) if 0 < hd[0x18] < 16 else 0,
            region_code=hd[0x19],
            developer_id=hd[0x1A],
            version=hd[0x1B],
            copier_header=bool(copier),
            checksum=_hex(checksum, 4),
            checksum_complement=_hex(complement, 4),
            complement_ok=(checksum ^ complement) == 0xFFFF,
            checksum_computed=None,
            checksum_ok=None,
        )
        self._stored = checksum
        self._blocks = BlockSums(copier) if self.size - copier <= MAX_SUM_BYTES else None

    def feed(self, mv: memoryview) -> None:
        if self._blocks is not None:
            self._blocks.feed(mv)

    def finish(self) -> dict[str, Any]:
        if self._blocks is not None and self._blocks.sums:
            total = _mirrored_sum(self._blocks.sums, self._blocks.block) & 0xFFFF
            self.info["checksum_computed"] = _hex(total, 4)
            self.info["checksum_ok"] = total == self._stored
        return super().finish()


def _snes_score(hd: bytes, layout: str) -> int:
    score = 0
    complement = int.from_bytes(hd[0x1C:0x1E], "little")
    checksum = int.from_bytes(hd[0x1E:0x20], "little")
    if (checksum ^ complement) == 0xFFFF:
        score += 4
    mode = hd[0x15]
    if mode in _SNES_MAPS:
        score += 2
        if (mode & 0x01) == (1 if layout == "HiROM" else 0):
            score += 2
    if all(0x20 <= b < 0x7F for b in hd[0x00:0x15]):
        score += 1
    reset = int.from_bytes(hd[0x3C:0x3E], "little")
    if reset >= 0x8000:
        score += 1
    return score


def _mirrored_sum(blocks: list[int], block: int) -> int:
    """SNES checksum over a ROM whose size is not a power of two: the part after the largest
    power of two is mirrored (repeated) until it fills the same size again, recursively."""
    n = len(blocks)
    if n == 0:
        return 0
    if n & (n - 1) == 0:
        return sum(blocks)
    base = 1 << (n.bit_length() - 1)
    rest = blocks[base:]
    mirrored = _mirrored_sum(rest, block)
    # The remainder, after its own mirroring, is a power-of-two size r' repeated base / r' times.
    r = 1 << (len(rest) - 1).bit_length()
    return sum(blocks[:base]) + mirrored * (base // r)


# --- Nintendo 64 ------------------------------------------------------------------------------
N64_ORDERS = {
    b"\x80\x37\x12\x40": "big-endian",  # .z64, native
    b"\x37\x80\x40\x12": "byte-swapped",  # .v64
    b"\x40\x12\x37\x80": "little-endian",  # .n64 (word-swapped)
}


def _n64_native(data: bytes, order: str) -> bytes:
    if order == "byte-swapped":
        out = bytearray(data)
        out[0::2], out[1::2] = data[1::2], data[0::2]
        return bytes(out)
    if order == "little-endian":
        out = bytearray(len(data))
        for i in range(4):
            out[i::4] = data[3 - i :: 4]
        return bytes(out)
    return data


class Nintendo64(Inspection):
    format = "n64"

    def head_bytes(self) -> int:
        return 0x40

    def parse(self, h: bytes) -> None:
        order = N64_ORDERS[h[:4]]
        n = _n64_native(h, order)
        self.info.update(
            byte_order=order,
            title=_text(n[0x20:0x34]),
            media_format=chr(n[0x3B]) if 0x20 <= n[0x3B] < 0x7F else None,
            cartridge_id=_text(n[0x3C:0x3E]),
            country_code=chr(n[0x3E]) if 0x20 <= n[0x3E] < 0x7F else None,
            version=n[0x3F],
            crc1=_hex(int.from_bytes(n[0x10:0x14], "big"), 8),
            crc2=_hex(int.from_bytes(n[0x14:0x18], "big"), 8),
            size_ok=self.size % 4 == 0 and self.size >= 0x101000,
        )


# --- Mega Drive / Genesis ----------------------------------------------------------------------
class MegaDrive(Inspection):
    format = "md"

    def parse(self, h: bytes) -> None:
        stored = int.from_bytes(h[0x18E:0x190], "big")
        rom_end = int.from_bytes(h[0x1A4:0x1A8], "big")
        self.info.update(
            system=_text(h[0x100:0x110]),
            copyright=_text(h[0x110:0x120]),
            title_domestic=_text(h[0x120:0x150]),
            title=_text(h[0x150:0x180]) or _text(h[0x120:0x150]),
            serial=_text(h[0x180:0x18E]),
            regions=_text(h[0x1F0:0x1F3]),
            rom_end=_hex(rom_end, 8),
            checksum=_hex(stored, 4),
            checksum_computed=None,
            checksum_ok=None,
        )
        self._stored = stored
        self._sum = ByteSum(start=0x200) if self.size <= MAX_SUM_BYTES else None

    def feed(self, mv: memoryview) -> None:
        if self._sum is not None:
            self._sum.feed(mv)

    def finish(self) -> dict[str, Any]:
        if self._sum is not None:
            s = self._sum
            # Big-endian 16-bit words from 0x200: high bytes at even offsets.
            total = (s.even * 256 + s.odd) & 0xFFFF
            self.info["checksum_computed"] = _hex(total, 4)
            self.info["checksum_ok"] = total == self._stored
        return super().finish()


def inspect(name: str, size: int, first: memoryview) -> Inspection | None:
    """The inspection for this file's format, or None if it is not a known cartridge dump."""
    if size > MAX_CART_BYTES or len(first) < 16:
        return None
    ext = _ext(name)
    head4 = bytes(first[:4])
    if head4 == b"NES\x1a":
        return Nes(name, size, first)
    if head4 == b"FDS\x1a" or (ext == "fds" and bytes(first[1:15]) == b"*NINTENDO-HVC*"):
        return FamicomDisk(name, size, first) if len(first) >= 0x40 else None
    if head4 in N64_ORDERS and len(first) >= 0x40:
        return Nintendo64(name, size, first)
    if len(first) >= 0x150 and (ext in GB_EXTENSIONS or bytes(first[0x104:0x134]) == GB_LOGO):
        return GameBoy(name, size, first)
    if ext in GBA_EXTENSIONS and len(first) >= 0xC0:
        return GameBoyAdvance(name, size, first)
    if len(first) >= 0x200 and bytes(first[0x100:0x104]) == b"SEGA" and (ext in MD_EXTENSIONS or size <= 0x800000):
        return MegaDrive(name, size, first)
    if ext in SNES_EXTENSIONS and len(first) >= 0x8000:
        return Snes(name, size, first)
    return None


def headerless_skip(name: str, size: int, first: memoryview) -> int:
    """Bytes of emulator/copier header No-Intro leaves out of its hashes (0 if none)."""
    if len(first) < 16:
        return 0
    head = bytes(first[:16])
    if head[:4] in (b"NES\x1a", b"FDS\x1a"):
        return 16
    if len(first) >= 128 and bytes(first[1:10]) == b"ATARI7800":
        return 128
    if head[:4] == b"LYNX" and len(first) >= 64:
        return 64
    if _ext(name) in SNES_EXTENSIONS and size % 1024 == 512 and size > 512:
        return 512
    return 0
