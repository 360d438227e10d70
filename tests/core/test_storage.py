"""The storage interface: atomic writes, no-clobber creation, ranges, path safety."""

from __future__ import annotations

import os
import threading

import pytest

from romshelf.core.errors import PayloadTooLarge
from romshelf.core.paths import UnsafePath, check_plain_filename, safe_key, sanitize_filename
from romshelf.core.storage import TMP_PREFIX, FileExists, FileMissing, LocalStorage


@pytest.fixture
def store(tmp_path):
    return LocalStorage(tmp_path / "store")


def leftovers(store: LocalStorage) -> list[str]:
    return [n for _d, _s, files in os.walk(store.root) for n in files if n.startswith(TMP_PREFIX)]


def test_write_read_stat_list_delete(store):
    stored = store.write("roms/gb/a.gb", b"hello")
    assert stored.size == 5 and store.exists("roms/gb/a.gb")
    assert b"".join(store.iter_bytes("roms/gb/a.gb")) == b"hello"
    assert b"".join(store.iter_bytes("roms/gb/a.gb", 1, 3)) == b"ell"
    st = store.stat("roms/gb/a.gb")
    assert st is not None and st.size == 5 and not st.is_dir
    assert [e.name for e in store.list("roms/gb")] == ["a.gb"]
    assert [e.key for e in store.walk("roms")] == ["roms/gb/a.gb"]
    assert store.delete("roms/gb/a.gb") is True
    assert store.delete("roms/gb/a.gb") is False
    with pytest.raises(FileMissing):
        store.delete("roms/gb/a.gb", missing_ok=False)
    assert store.stat("roms/gb/a.gb") is None


def test_write_from_iterable_and_file(store, tmp_path):
    store.write("x.bin", iter([b"ab", b"", b"cd"]))
    assert store.path("x.bin").read_bytes() == b"abcd"
    src = tmp_path / "src"
    src.write_bytes(b"z" * 3_000_000)
    with open(src, "rb") as fh:
        assert store.write("y.bin", fh).size == 3_000_000


def test_overwrite_replaces_atomically(store):
    store.write("f", b"old")
    store.write("f", b"new")
    assert store.path("f").read_bytes() == b"new"
    assert leftovers(store) == []


def test_no_overwrite_refuses_existing(store):
    store.write("f", b"first", overwrite=False)
    with pytest.raises(FileExists):
        store.write("f", b"second", overwrite=False)
    assert store.path("f").read_bytes() == b"first"
    assert leftovers(store) == []


def test_concurrent_no_overwrite_writers_one_wins(store):
    results: list[str] = []

    def writer(i: int) -> None:
        w = store.writer("slot.sav", overwrite=False) if i == 0 else None
        try:
            store.write("race.sav", str(i).encode() * 1000, overwrite=False)
            results.append("ok")
        except FileExists:
            results.append("exists")
        if w:
            w.abort()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("exists") == 7
    data = store.path("race.sav").read_bytes()
    assert len(data) == 1000 and len(set(data)) == 1  # one writer's bytes, never a mix
    assert leftovers(store) == []


def test_failed_write_leaves_nothing(store):
    def boom():
        yield b"partial"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        store.write("half.bin", boom())
    assert not store.exists("half.bin") and leftovers(store) == []


def test_failed_overwrite_keeps_old_file(store):
    store.write("keep.bin", b"precious")

    def boom():
        yield b"new"
        raise RuntimeError

    with pytest.raises(RuntimeError):
        store.write("keep.bin", boom())
    assert store.path("keep.bin").read_bytes() == b"precious"


def test_max_bytes(store):
    with pytest.raises(PayloadTooLarge):
        store.write("big.bin", [b"x" * 600, b"x" * 600], max_bytes=1000)
    assert not store.exists("big.bin") and leftovers(store) == []
    assert store.write("ok.bin", b"x" * 1000, max_bytes=1000).size == 1000


def test_writer_abort(store):
    w = store.writer("w.bin")
    w.write(b"abc")
    w.abort()
    assert not store.exists("w.bin") and leftovers(store) == []


def test_move_no_clobber_and_folders(store):
    store.write("a/one", b"1")
    store.write("b/two", b"2")
    with pytest.raises(FileExists):
        store.move("a/one", "b/two")
    store.move("a/one", "c/one")
    assert store.path("c/one").read_bytes() == b"1" and not store.exists("a/one")
    store.write("dir1/x", b"x")
    store.move("dir1", "dir2")
    assert store.path("dir2/x").read_bytes() == b"x"
    with pytest.raises(FileMissing):
        store.move("nope", "x")


def test_delete_tree_and_empty_parents(store):
    store.write("roms/gb/Game/disc1.bin", b"1")
    store.write("roms/gb/Game/sub/disc2.bin", b"2")
    assert store.delete_tree("roms/gb/Game") is True
    assert not store.exists("roms/gb/Game")
    store.write("roms/nes/only.nes", b"n")
    store.delete("roms/nes/only.nes")
    store.remove_empty_parents("roms/nes/only.nes", stop_at="roms")
    assert not store.exists("roms/nes") and store.exists("roms")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "a//b", "a/./b", "a\\b", "a\x00b", ""])
def test_unsafe_keys_rejected(store, key):
    with pytest.raises(UnsafePath):
        safe_key(key)
    if key:
        with pytest.raises(UnsafePath):
            store.write(key, b"x")


def test_sanitize_filename_matches_romm_rules():
    assert sanitize_filename("a/b\\c:d|e.sav") == "c-d-e.sav"
    assert sanitize_filename('we*i?r"d<>+.sav') == "weird.sav"
    assert sanitize_filename("  spaced.sav  ") == "spaced.sav"
    for bad in ["", "..", ".", "a/..", "/", "x" * 451]:
        with pytest.raises(UnsafePath):
            sanitize_filename(bad)


def test_check_plain_filename():
    assert check_plain_filename("Tetris (World).gb") == "Tetris (World).gb"
    for bad in ["", " ", "..", "a/b", "a\\b", "a\x00b", "x" * 451, "tab\tname"]:
        with pytest.raises(UnsafePath):
            check_plain_filename(bad)


def test_cleanup_temp_files(store):
    store.makedirs("d")
    (store.path("d") / f"{TMP_PREFIX}stale").write_bytes(b"x")
    os.utime(store.path("d") / f"{TMP_PREFIX}stale", (1, 1))
    assert store.cleanup_temp_files() == 1
