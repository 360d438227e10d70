"""One-pass CRC32/MD5/SHA-1 hashing: values, the threaded path, skipping, constant memory,
archive members and CHD headers."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
import zipfile

from factories import hashes, random_bytes

from romshelf.core import hashing
from romshelf.core.hashing import ConcatReader, Hasher, hash_bytes, hash_file, hash_stream
from romshelf.library import archives


def test_formats_match_romm():
    d = hash_bytes(b"hello")
    assert d.crc == "3610a686" and len(d.crc) == 8
    assert d.md5 == "5d41402abc4b2a76b9719d911017c592"
    assert d.sha1 == "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
    assert hash_bytes(b"\x00" * 3).crc == "ff41d912"  # leading zero digits kept
    assert hash_bytes(b"").columns() == {"crc_hash": "", "md5_hash": "", "sha1_hash": ""}


def test_threaded_and_inline_paths_agree(tmp_path):
    data = random_bytes(hashing.READ_SIZE * 2 + 12345, seed=7)
    expected = hashes(data)
    for threaded in (True, False):
        h = Hasher()
        n = hash_stream(io.BytesIO(data), [h], size_hint=len(data), threaded=threaded)
        assert n == len(data)
        assert h.digests().columns() == expected
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    seen = []
    assert hash_file(path, progress=seen.append).columns() == expected
    assert sum(seen) == len(data)


def test_several_hashers_and_skip_in_one_pass():
    data = random_bytes(hashing.READ_SIZE + 100, seed=8)
    whole, headerless, other = Hasher(), Hasher(skip=16), Hasher()
    hash_stream(io.BytesIO(data), [whole, headerless, other], size_hint=len(data))
    assert whole.digests().columns() == hashes(data)
    assert headerless.digests().columns() == hashes(data[16:])
    assert other.digests() == whole.digests()
    # a skip longer than the first chunk boundary
    h = Hasher(skip=hashing.READ_SIZE + 10)
    hash_stream(io.BytesIO(data), [h], threaded=True)
    assert h.digests().columns() == hashes(data[hashing.READ_SIZE + 10 :])


def test_short_reads_are_handled():
    class Trickle(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data = data

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            n = min(len(b), 1000, len(self.data))
            b[:n] = self.data[:n]
            self.data = self.data[n:]
            return n

    data = random_bytes(50_000, seed=9)
    h = Hasher()
    hash_stream(Trickle(data), [h], size_hint=len(data))
    assert h.digests().columns() == hashes(data)


def test_large_file_hashes_in_constant_memory(tmp_path):
    path = tmp_path / "large.bin"
    block = random_bytes(1024 * 1024, seed=10)
    with open(path, "wb") as fh:
        for _ in range(48):
            fh.write(block)
    tracemalloc.start()
    try:
        d = hash_file(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert d.size == 48 * 1024 * 1024
    # Buffers in flight, not the file: far below its 48 MiB.
    assert peak < (hashing.BUFFERS + 1) * hashing.READ_SIZE + 2 * 1024 * 1024


def test_concat_reader_reads_parts_in_order():
    parts = [b"ABCDEF", b"", b"GHIJK"]
    h = Hasher()
    with ConcatReader([lambda p=p: io.BytesIO(p) for p in parts]) as r:
        hash_stream(r, [h], size_hint=11)
    assert h.digests().columns() == hashes(b"ABCDEFGHIJK")


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_hash_over_members_in_sorted_order_with_archive_members():
    members = {"b.bin": b"BBBB", "a.bin": b"AA", "__MACOSX/._a.bin": b"junk", ".DS_Store": b"junk", "dir/": b""}
    found = archives.hash_archive(io.BytesIO(_zip(members)), "Game (USA).zip")
    assert found is not None
    assert found.digests.columns() == hashes(b"AA" + b"BBBB")
    assert found.members == [
        {"name": "a.bin", "size": 2, **hashes(b"AA")},
        {"name": "b.bin", "size": 4, **hashes(b"BBBB")},
    ]


def test_tar_gz_and_lone_gz():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("z.bin", b"zz"), ("m.bin", b"mmm")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    found = archives.hash_archive(io.BytesIO(buf.getvalue()), "Game.tar.gz")
    assert found is not None
    assert found.digests.columns() == hashes(b"mmm" + b"zz")
    assert [m["name"] for m in found.members] == ["m.bin", "z.bin"]
    gz = archives.hash_archive(io.BytesIO(gzip.compress(b"payload")), "Game.bin.gz")
    assert gz is not None and gz.members is None
    assert gz.digests.columns() == hashes(b"payload")


def test_unreadable_archives_return_none():
    assert archives.hash_archive(io.BytesIO(b"not a zip at all"), "Game.zip") is None
    assert archives.hash_archive(io.BytesIO(b"7z\xbc\xaf\x27\x1c"), "Game.7z") is None
    assert archives.hash_archive(io.BytesIO(_zip({".hidden": b"x"})), "Game.zip") is None
    assert archives.hash_archive(io.BytesIO(b"data"), "Game.bin") is None


def test_chd_v5_sha1():
    sha1 = bytes(range(20))
    head = bytearray(124)
    head[0:8] = b"MComprHD"
    head[8:12] = (124).to_bytes(4, "big")
    head[12:16] = (5).to_bytes(4, "big")
    head[84:104] = sha1
    assert archives.chd_sha1(bytes(head)) == sha1.hex()
    head[12:16] = (4).to_bytes(4, "big")
    assert archives.chd_sha1(bytes(head)) == ""
    assert archives.chd_sha1(b"garbage") == ""
