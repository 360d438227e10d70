"""The storage interface every stored file goes through, and its local-disk implementation.

Keys are library-relative, '/'-separated paths (``roms/gb/Tetris (World).gb``), validated by
:func:`romshelf.core.paths.safe_key`: a client name never reaches the file system unchecked.

Atomic writes: bytes go to a temporary file in the target folder, are fsync'ed, then renamed
over the target (or hard-linked into place when the target must not exist yet), then the folder
is fsync'ed. A crash leaves the old file or the new one, never half a file; a failed or aborted
write leaves nothing behind.

Other backends (S3-compatible object storage) implement the same :class:`Storage` protocol.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_mod
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from romshelf.core.errors import AppError, Conflict, PayloadTooLarge
from romshelf.core.paths import safe_key

CHUNK = 1024 * 1024  # 1 MiB reads and writes: large enough for disk speed, small for memory
TMP_PREFIX = ".romshelf-tmp-"


class StorageError(AppError):
    status_code = 500


class FileExists(Conflict):
    """The target of a no-overwrite write or a move already exists."""


class FileMissing(AppError):
    status_code = 404

    def default_detail(self) -> str:
        return "File not found"


@dataclass(frozen=True, slots=True)
class FileStat:
    size: int
    mtime: float
    is_dir: bool


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    key: str
    is_dir: bool
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    mtime: float


class AtomicWriter(Protocol):
    """A file being written; nothing is visible at ``key`` until :meth:`commit`."""

    key: str
    size: int

    def write(self, data: bytes) -> None: ...
    def commit(self) -> StoredFile: ...
    def abort(self) -> None: ...


class Storage(Protocol):
    def writer(
        self, key: str, *, overwrite: bool = True, max_bytes: int | None = None, staging: bool = False
    ) -> AtomicWriter: ...
    def write(
        self,
        key: str,
        source: bytes | BinaryIO | Iterable[bytes],
        *,
        overwrite: bool = True,
        max_bytes: int | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> StoredFile: ...
    def open(self, key: str) -> BinaryIO: ...
    def iter_bytes(
        self, key: str, start: int = 0, length: int | None = None, chunk_size: int = CHUNK
    ) -> Iterator[bytes]: ...
    def stat(self, key: str) -> FileStat | None: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str, *, missing_ok: bool = True) -> bool: ...
    def delete_tree(self, key: str) -> bool: ...
    def move(self, src: str, dst: str, *, overwrite: bool = False, sync_source: bool = True) -> None: ...
    def list(self, key: str = "") -> Iterator[Entry]: ...
    def walk(self, key: str = "") -> Iterator[Entry]: ...
    def makedirs(self, key: str) -> None: ...
    def local_path(self, key: str) -> Path | None: ...


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _LocalWriter:
    def __init__(
        self, storage: LocalStorage, key: str, overwrite: bool, max_bytes: int | None, staging: bool = False
    ) -> None:
        self.key = key
        self._staging = staging
        self.size = 0
        self._overwrite = overwrite
        self._max = max_bytes
        self._final = storage.path(key)
        if not overwrite and self._final.exists():
            raise FileExists(f"File {self._final.name} already exists")
        self._tmp = self._final.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:  # the folder usually exists: create it only when the open says it is missing
            self._fh: BinaryIO | None = open(self._tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        except FileNotFoundError:
            self._final.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self._tmp, "xb")  # noqa: SIM115
        self._done = False

    def write(self, data: bytes) -> None:
        if self._fh is None:
            raise StorageError("write after commit or abort")
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            self.abort()
            raise PayloadTooLarge(f"File exceeds the maximum allowed size of {self._max} bytes")
        self._fh.write(data)

    def commit(self) -> StoredFile:
        if self._fh is None:
            raise StorageError("commit after abort")
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            os.chmod(self._tmp, 0o644)
            if self._overwrite:
                os.replace(self._tmp, self._final)
            else:
                try:
                    os.link(self._tmp, self._final)  # atomic create-if-absent
                except FileExistsError:
                    raise FileExists(f"File {self._final.name} already exists") from None
                finally:
                    self._tmp.unlink(missing_ok=True)
            if not self._staging:
                _fsync_dir(self._final.parent)
            st = self._final.stat()
            self._done = True
            return StoredFile(self.key, st.st_size, st.st_mtime)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        if not self._done:
            self._tmp.unlink(missing_ok=True)
            self._done = True

    def __enter__(self) -> _LocalWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None or not self._done:
            self.abort()


class LocalStorage:
    """Files under one root folder on local disk."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self._root_str = str(self.root)
        self._root_prefix = self._root_str.rstrip(os.sep) + os.sep

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The real path of a key; the key is validated and must stay under the root."""
        if key == "":
            return self.root
        safe_key(key)
        joined = os.path.normpath(os.path.join(self._root_str, key))
        # A string prefix test (the path is normalised and absolute): much cheaper than walking
        # Path.parents, and a scan calls this once per file.
        if not joined.startswith(self._root_prefix):
            raise StorageError(f"Path escapes storage root: {key!r}", status_code=400)
        return Path(joined)

    def local_path(self, key: str) -> Path | None:
        return self.path(key)

    # --- writing ---------------------------------------------------------------------------
    def writer(
        self, key: str, *, overwrite: bool = True, max_bytes: int | None = None, staging: bool = False
    ) -> _LocalWriter:
        """An atomic writer for ``key``. ``staging=True`` is for a file that will be moved into
        place later (an upload being staged): its bytes are still fsync'ed, but its folder entry
        need not survive a crash, so the folder fsync is skipped (the later move syncs the
        destination folder)."""
        return _LocalWriter(self, key, overwrite, max_bytes, staging)

    def write(
        self,
        key: str,
        source: bytes | BinaryIO | Iterable[bytes],
        *,
        overwrite: bool = True,
        max_bytes: int | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> StoredFile:
        with self.writer(key, overwrite=overwrite, max_bytes=max_bytes) as w:
            for chunk in _chunks(source):
                if chunk:
                    w.write(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
            return w.commit()

    def makedirs(self, key: str) -> None:
        self.path(key).mkdir(parents=True, exist_ok=True)

    # --- reading ---------------------------------------------------------------------------
    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileMissing(f"File not found: {key}") from None

    def iter_bytes(
        self, key: str, start: int = 0, length: int | None = None, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        with self.open(key) as fh:
            if start:
                fh.seek(start)
            remaining = length
            while remaining is None or remaining > 0:
                n = chunk_size if remaining is None else min(chunk_size, remaining)
                data = fh.read(n)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def stat(self, key: str) -> FileStat | None:
        try:
            st = os.stat(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileStat(st.st_size, st.st_mtime, stat_mod.S_ISDIR(st.st_mode))

    def exists(self, key: str) -> bool:
        return os.path.exists(self.path(key))

    def list(self, key: str = "") -> Iterator[Entry]:
        base = self.path(key)
        try:
            it = os.scandir(base)
        except (FileNotFoundError, NotADirectoryError):
            return
        with it:
            for de in it:
                if de.name.startswith(TMP_PREFIX):
                    continue
                try:
                    st = de.stat()
                except FileNotFoundError:
                    continue
                is_dir = stat_mod.S_ISDIR(st.st_mode)
                child = f"{key}/{de.name}" if key else de.name
                yield Entry(de.name, child, is_dir, 0 if is_dir else st.st_size, st.st_mtime)

    def walk(self, key: str = "") -> Iterator[Entry]:
        """Every file below ``key`` (recursive, sorted by name at each level)."""
        entries = sorted(self.list(key), key=lambda e: e.name)
        for e in entries:
            if e.is_dir:
                yield from self.walk(e.key)
            else:
                yield e

    # --- removing and moving ------------------------------------------------------------------
    def delete(self, key: str, *, missing_ok: bool = True) -> bool:
        try:
            os.unlink(self.path(key))
            _fsync_dir(self.path(key).parent)
            return True
        except FileNotFoundError:
            if missing_ok:
                return False
            raise FileMissing(f"File not found: {key}") from None
        except IsADirectoryError:
            raise StorageError(f"{key} is a folder", status_code=400) from None

    def delete_tree(self, key: str) -> bool:
        p = self.path(key)
        if p == self.root:
            raise StorageError("refusing to delete the storage root", status_code=400)
        if not p.exists():
            return False
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
        return True

    def remove_empty_parents(self, key: str, stop_at: str = "") -> None:
        """Remove the now-empty folders above ``key`` up to (not including) ``stop_at``."""
        stop = self.path(stop_at) if stop_at else self.root
        parent = self.path(key).parent
        while parent != stop and parent != self.root and stop in parent.parents:
            try:
                parent.rmdir()
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    break
                raise
            parent = parent.parent

    def move(self, src: str, dst: str, *, overwrite: bool = False, sync_source: bool = True) -> None:
        """Rename ``src`` to ``dst`` and fsync the destination folder (and the source folder,
        unless ``sync_source=False``: for a staging area whose leftovers are swept anyway)."""
        s, d = self.path(src), self.path(dst)
        try:
            src_stat = os.stat(s)
        except FileNotFoundError:
            raise FileMissing(f"File not found: {src}") from None
        if not d.parent.is_dir():
            d.parent.mkdir(parents=True, exist_ok=True)
        if stat_mod.S_ISDIR(src_stat.st_mode):
            if d.exists() and not overwrite:
                raise FileExists(f"{d.name} already exists")
            os.rename(s, d)
        elif overwrite:
            os.replace(s, d)
        else:
            try:
                os.link(s, d)
            except FileExistsError:
                raise FileExists(f"{d.name} already exists") from None
            os.unlink(s)
        _fsync_dir(d.parent)
        if sync_source and s.parent != d.parent:
            _fsync_dir(s.parent)

    def cleanup_temp_files(self, key: str = "", older_than: float = 3600.0) -> int:
        """Remove temporary files left by a crash (older than ``older_than`` seconds)."""
        import time

        cutoff = time.time() - older_than
        removed = 0
        for dirpath, _dirs, files in os.walk(self.path(key)):
            for name in files:
                if name.startswith(TMP_PREFIX):
                    p = Path(dirpath) / name
                    with contextlib.suppress(OSError):
                        if p.stat().st_mtime < cutoff:
                            p.unlink()
                            removed += 1
        return removed


def _chunks(source: bytes | BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            data = read(CHUNK)
            if not data:
                return
            yield data
    else:
        yield from source  # type: ignore[misc]


@dataclass
class Storages:
    """The stores the app uses, each rooted in its own folder (or bucket prefix)."""

    library: LocalStorage  # ROM files, RomM layout
    assets: LocalStorage  # saves, states, screenshots (per user)
    resources: LocalStorage  # covers and other media romshelf generates
    tmp: LocalStorage  # upload chunks and other work files (same filesystem as library is best)

    @classmethod
    def local(cls, library: Path, assets: Path, resources: Path, tmp: Path) -> Storages:
        return cls(LocalStorage(library), LocalStorage(assets), LocalStorage(resources), LocalStorage(tmp))
