"""Helpers for download tests: multipart/byteranges parsing, a seekable file over HTTP Range
requests (so zipfile can read a multi-GiB archive's directory without downloading it), and the
CRC32 of long runs of zero bytes (sparse test files) without reading them."""

from __future__ import annotations

import io
import re
import zlib


def parse_byteranges(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """[(Content-Range value, part bytes)] of a multipart/byteranges body."""
    m = re.search(r"boundary=([^;]+)", content_type)
    assert m, content_type
    boundary = m.group(1).encode()
    assert body.endswith(b"--" + boundary + b"--\r\n")
    parts = []
    for chunk in body.split(b"--" + boundary)[1:-1]:
        chunk = chunk.removeprefix(b"\r\n")
        head, _, data = chunk.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n"))
        parts.append((headers[b"Content-Range"].decode(), data))
    return parts


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable file whose reads are HTTP Range requests (checks every 206)."""

    def __init__(self, client, url: str, headers: dict[str, str]) -> None:
        self.client, self.url, self.headers = client, url, headers
        r = client.head(url, headers=headers)
        assert r.status_code == 200, r.text
        self.size = int(r.headers["content-length"])
        self.etag = r.headers["etag"]
        self.pos = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        if n <= 0:
            return b""
        end = self.pos + n - 1
        r = self.client.get(
            self.url, headers={**self.headers, "Range": f"bytes={self.pos}-{end}", "If-Range": self.etag}
        )
        self.requests += 1
        assert r.status_code == 206, (r.status_code, r.text[:200])
        assert r.headers["content-range"] == f"bytes {self.pos}-{end}/{self.size}"
        assert len(r.content) == n
        self.pos += n
        return r.content

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


# --- CRC32 of n zero bytes, by GF(2) matrix powers (zlib's crc32_combine, written out) ------


def _gf2_times(mat: list[int], vec: int) -> int:
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def crc32_zeros(n: int) -> int:
    block = 1 << 20
    if n <= block:
        return zlib.crc32(bytes(n))
    whole, rest = divmod(n, block)
    crc_block = zlib.crc32(bytes(block))
    crc = 0
    length = 0
    # doubling over whole blocks
    acc, acc_len = crc_block, block
    k = whole
    while k:
        if k & 1:
            crc = crc32_combine(crc, acc, acc_len) if length else acc
            length += acc_len
        acc = crc32_combine(acc, acc, acc_len)
        acc_len *= 2
        k >>= 1
    if rest:
        crc = crc32_combine(crc, zlib.crc32(bytes(rest)), rest)
    return crc
