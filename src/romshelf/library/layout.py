"""The library on disk: RomM's two folder layouts, what is skipped, and what a ROM is.

* **Layout A** (preferred): ``library/roms/{platform}/...`` - chosen when ``library/roms`` exists
  (or when neither layout exists yet: new libraries are created in A).
* **Layout B**: ``library/{platform}/roms/...`` - chosen when ``library/roms`` is absent and some
  ``library/*/roms`` folder exists.

Inside a platform's folder each file is a single-file ROM and each folder is one multi-file ROM
whose every file (recursively) is a RomFile; files in sub-folders named after a category
(``manual/``, ``screenshots/``, ``soundtrack/``, ``translation/``, ``dlc/``, ``update/``...)
get that category. Hidden files and folders, system clutter (``.DS_Store``, ``Thumbs.db``,
``@eaDir``, ``__MACOSX``...) and temporary/bookkeeping files (``*.tmp``, ``*.db``, ``*.log``...)
are skipped everywhere.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Literal

from romshelf.core.storage import Storage
from romshelf.roms.models import ROM_FILE_CATEGORIES

ROMS_FOLDER = "roms"
MAX_DEPTH = 16  # folder ROMs deeper than this are cut off (symlink loops)

EXCLUDED_EXTENSIONS = frozenset({"db", "ini", "tmp", "bak", "lock", "log", "cache", "crdownload", "part", "partial"})
EXCLUDED_FILE_NAMES = (
    ".DS_Store",
    ".localized",
    ".Trashes",
    ".stfolder",
    "@SynoResource",
    "*:Zone.Identifier",
    "gamelist.xml",
    "metadata.pegasus.txt",
    "Thumbs.db",
    "desktop.ini",
)
EXCLUDED_DIR_NAMES = (
    "@eaDir",
    "assets",
    "__MACOSX",
    "#recycle",
    "$RECYCLE.BIN",
    ".Trash-*",
    ".stfolder",
    ".Spotlight-V100",
    ".fseventsd",
    ".DocumentRevisions-V100",
    "System Volume Information",
)


def _pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(n)})" for n in names), re.IGNORECASE)


_EXCLUDED_FILE_RE = _pattern(EXCLUDED_FILE_NAMES)
_EXCLUDED_DIR_RE = _pattern(EXCLUDED_DIR_NAMES)

# Folder name (lowercase) -> RomFile category: the category, its plural, and common spellings.
CATEGORY_FOLDERS: dict[str, str] = {}
for _cat in ROM_FILE_CATEGORIES:
    CATEGORY_FOLDERS[_cat] = _cat
    CATEGORY_FOLDERS[_cat + "s"] = _cat
CATEGORY_FOLDERS["patches"] = "patch"  # RomM only knows "patch(s)"; "patches" is what people write


def is_excluded_file(name: str) -> bool:
    """True for names the library never treats as ROM files (hidden, clutter, temporary)."""
    if not name or name[0] == ".":
        return True
    dot = name.rfind(".")
    if dot > 0 and name[dot + 1 :].lower() in EXCLUDED_EXTENSIONS:
        return True
    return _EXCLUDED_FILE_RE.match(name) is not None


def is_excluded_dir(name: str) -> bool:
    if not name or name[0] == ".":
        return True
    return _EXCLUDED_DIR_RE.match(name) is not None


def category_of(folders: list[str]) -> str | None:
    """Category of a file from the folders between the ROM folder and the file."""
    for part in folders:
        cat = CATEGORY_FOLDERS.get(part.lower())
        if cat is not None:
            return cat
    return None


@dataclass(frozen=True)
class Layout:
    kind: Literal["A", "B"]

    def platform_path(self, fs_slug: str) -> str:
        """Library-relative folder of a platform's ROMs (``Rom.fs_path``)."""
        return f"{ROMS_FOLDER}/{fs_slug}" if self.kind == "A" else f"{fs_slug}/{ROMS_FOLDER}"


def detect_layout(storage: Storage) -> Layout:
    st = storage.stat(ROMS_FOLDER)
    if st is not None and st.is_dir:
        return Layout("A")
    for entry in storage.list(""):
        if entry.is_dir and not is_excluded_dir(entry.name):
            inner = storage.stat(f"{entry.name}/{ROMS_FOLDER}")
            if inner is not None and inner.is_dir:
                return Layout("B")
    return Layout("A")


def platform_folders(storage: Storage, layout: Layout) -> list[str]:
    """The platform folder names (``fs_slug``) present in the library, sorted."""
    out = []
    if layout.kind == "A":
        for entry in storage.list(ROMS_FOLDER):
            if entry.is_dir and not is_excluded_dir(entry.name):
                out.append(entry.name)
    else:
        for entry in storage.list(""):
            if entry.is_dir and not is_excluded_dir(entry.name) and entry.name != ROMS_FOLDER:
                inner = storage.stat(f"{entry.name}/{ROMS_FOLDER}")
                if inner is not None and inner.is_dir:
                    out.append(entry.name)
    return sorted(out)


@dataclass(slots=True)
class FsFile:
    """One file of a ROM as found on disk."""

    file_path: str  # library-relative folder (RomFile.file_path)
    file_name: str
    size: int
    mtime: float
    top_level: bool = True
    category: str | None = None

    @property
    def key(self) -> str:
        return f"{self.file_path}/{self.file_name}"


@dataclass(slots=True)
class FsRom:
    """One ROM as found on disk: a file, or a folder with its files (sorted by path)."""

    fs_path: str
    fs_name: str
    is_dir: bool
    files: list[FsFile] = field(default_factory=list)
    error: str | None = None  # the folder could not be read completely (permissions, I/O)

    @property
    def key(self) -> str:
        return f"{self.fs_path}/{self.fs_name}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


def _walk_folder(storage: Storage, rom: FsRom, key: str, folders: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for entry in sorted(storage.list(key), key=lambda e: e.name):
        if entry.is_dir:
            if not is_excluded_dir(entry.name):
                _walk_folder(storage, rom, entry.key, [*folders, entry.name], depth + 1)
        elif not is_excluded_file(entry.name):
            rom.files.append(
                FsFile(
                    file_path=key,
                    file_name=entry.name,
                    size=entry.size,
                    mtime=entry.mtime,
                    top_level=not folders,
                    category=category_of(folders) if folders else None,
                )
            )


def read_rom(storage: Storage, fs_path: str, name: str, is_dir: bool, size: int = 0, mtime: float = 0.0) -> FsRom:
    rom = FsRom(fs_path, name, is_dir)
    if is_dir:
        try:
            _walk_folder(storage, rom, rom.key, [], 0)
        except OSError as e:
            rom.error = f"cannot read folder: {e.strerror or e}"
    else:
        rom.files.append(FsFile(fs_path, name, size, mtime))
    return rom


def list_roms(storage: Storage, fs_path: str) -> list[FsRom]:
    """Every ROM in a platform folder (stat only, nothing is read), sorted by name.

    Raises OSError if the platform folder itself cannot be listed; a folder ROM that cannot be
    read completely comes back with ``error`` set (callers must not take it as gone)."""
    roms = []
    for entry in storage.list(fs_path):
        if entry.is_dir:
            if not is_excluded_dir(entry.name):
                roms.append(read_rom(storage, fs_path, entry.name, True))
        elif not is_excluded_file(entry.name):
            roms.append(FsRom(fs_path, entry.name, False, [FsFile(fs_path, entry.name, entry.size, entry.mtime)]))
    roms.sort(key=lambda r: r.fs_name)
    return roms


def read_rom_at(storage: Storage, fs_path: str, name: str) -> FsRom | None:
    """The ROM named ``name`` in a platform folder, as it is on disk now (None if absent)."""
    st = storage.stat(f"{fs_path}/{name}")
    if st is None:
        return None
    return read_rom(storage, fs_path, name, st.is_dir, st.size, st.mtime)


__all__ = [
    "CATEGORY_FOLDERS",
    "FsFile",
    "FsRom",
    "Layout",
    "category_of",
    "detect_layout",
    "is_excluded_dir",
    "is_excluded_file",
    "list_roms",
    "platform_folders",
    "read_rom_at",
]
