"""File-name parts, No-Intro/TOSEC tag parsing and the name sort key.

Behaviour follows RomM's (reference/romm_roms.md §3.4, §4, §5.3); the code is romshelf's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# "game.tar.gz" -> "tar.gz"; "Game.GBA" -> "GBA"; folder names usually have none.
EXTENSION_RE = re.compile(r"\.(([a-z]+\.)*\w+)$")
TRAILING_TAGS_RE = re.compile(r"(?:\s*(?:\([^()]*\)|\[[^\[\]]*\]))+\s*$")
TAG_GROUP_RE = re.compile(r"\(([^)]+)\)|\[([^]]+)\]")

REGIONS: dict[str, str] = {
    "A": "Australia",
    "AS": "Asia",
    "B": "Brazil",
    "C": "Canada",
    "CH": "China",
    "E": "Europe",
    "F": "France",
    "FN": "Finland",
    "G": "Germany",
    "GR": "Greece",
    "H": "Holland",
    "HK": "Hong Kong",
    "I": "Italy",
    "J": "Japan",
    "K": "Korea",
    "NL": "Netherlands",
    "NO": "Norway",
    "PD": "Public Domain",
    "R": "Russia",
    "S": "Spain",
    "SW": "Sweden",
    "T": "Taiwan",
    "U": "USA",
    "UK": "England",
    "UNK": "Unknown",
    "UNL": "Unlicensed",
    "W": "World",
}
LANGUAGES: dict[str, str] = {
    "Ar": "Arabic",
    "Da": "Danish",
    "De": "German",
    "El": "Greek",
    "En": "English",
    "Es": "Spanish",
    "Fi": "Finnish",
    "Fr": "French",
    "It": "Italian",
    "Ja": "Japanese",
    "Ko": "Korean",
    "Nl": "Dutch",
    "No": "Norwegian",
    "Pl": "Polish",
    "Pt": "Portuguese",
    "Ru": "Russian",
    "Sr": "Serbian",
    "Sv": "Swedish",
    "Zh": "Chinese",
    "nolang": "No Language",
}
_REGIONS_CI: dict[str, str] = {**{k.lower(): v for k, v in REGIONS.items()}, **{v.lower(): v for v in REGIONS.values()}}
_LANGUAGES_CI: dict[str, str] = {
    **{k.lower(): v for k, v in LANGUAGES.items()},
    **{v.lower(): v for v in LANGUAGES.values()},
}

_VERSION_RE = re.compile(r"^(?:version|ver|v)(?:[\s._-](.*)|([.\d].*))", re.IGNORECASE)
_REG_RE = re.compile(r"^reg[\s|-](.*)$", re.IGNORECASE)
_REV_RE = re.compile(r"^rev[\s|-](.*)$", re.IGNORECASE)
# GoodTools dump flags in square brackets ([a] alternate, [b] bad dump, [f] fixed, [h] hack,
# [o] overdump, [p] pirate, [t] trained, optionally numbered: [b1]). RomM's rules would read
# "[b]" as Brazil; a bracketed lowercase flag is a tag, never a region.
_DUMP_FLAG_RE = re.compile(r"^[abfhopt]\d*$")

SORT_ARTICLES = ("the", "a", "an", "le", "la", "les", "el", "los", "las", "il", "lo", "gli", "der", "die", "das", "het")
_ARTICLE_RE = re.compile(r"^(" + "|".join(SORT_ARTICLES) + r")\s+(.+)$", re.IGNORECASE | re.DOTALL)
_DIGITS_RE = re.compile(r"\d+")
SORT_KEY_MAX = 500


def split_extension(name: str) -> tuple[str, str]:
    """``("Game (USA)", "gba")`` for ``"Game (USA).gba"``; ``(name, "")`` without an extension."""
    m = EXTENSION_RE.search(name)
    if not m:
        return name, ""
    return name[: m.start()], m.group(1)


def name_no_ext(name: str) -> str:
    return split_extension(name)[0]


def extension(name: str) -> str:
    return split_extension(name)[1]


def name_no_tags(name: str) -> str:
    """The name without extension and without the trailing ``(...)`` / ``[...]`` groups."""
    stem = name_no_ext(name)
    return TRAILING_TAGS_RE.sub("", stem).strip() or stem.strip()


def name_sort_key(name: str) -> str:
    """Lowercase; one leading article moved to the end; digit runs zero-padded to 12; max 500 chars.

    ``"The Legend of Zelda 2"`` -> ``"legend of zelda 000000000002, the"``, so "Zelda 10" sorts
    after "Zelda 9" and "The Legend..." files under L.
    """
    key = (name or "").strip().lower()
    m = _ARTICLE_RE.match(key)
    if m:
        key = f"{m.group(2).strip()}, {m.group(1)}"
    key = _DIGITS_RE.sub(lambda d: d.group(0).zfill(12), key)
    return key[:SORT_KEY_MAX]


@dataclass
class ParsedTags:
    regions: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    revision: str = ""
    version: str = ""
    tags: list[str] = field(default_factory=list)


def _add(target: list[str], value: str) -> None:
    if value and value not in target:
        target.append(value)


def parse_tags(fs_name: str) -> ParsedTags:
    """Read regions, languages, revision, version and other tags from every (...) / [...] group.

    Each group is split on commas; per part the first rule that matches wins: exact region code,
    exact language code, region name/code ignoring case, language name/code ignoring case,
    ``v1.1``-style version, ``Reg-X`` region, ``Rev X`` revision, else a plain tag.
    """
    out = ParsedTags()
    for m in TAG_GROUP_RE.finditer(fs_name):
        bracketed = m.group(1) is None
        group = m.group(2) if bracketed else m.group(1)
        for raw in group.split(","):
            part = raw.strip()
            if not part:
                continue
            low = part.lower()
            if bracketed and _DUMP_FLAG_RE.match(part):
                _add(out.tags, part)
            elif part in REGIONS:
                _add(out.regions, REGIONS[part])
            elif part in LANGUAGES:
                _add(out.languages, LANGUAGES[part])
            elif low in _REGIONS_CI:
                _add(out.regions, _REGIONS_CI[low])
            elif low in _LANGUAGES_CI:
                _add(out.languages, _LANGUAGES_CI[low])
            elif vm := _VERSION_RE.match(part):
                out.version = (vm.group(1) if vm.group(1) is not None else vm.group(2) or "").strip()
            elif rm := _REG_RE.match(part):
                region = rm.group(1).strip()
                if region:
                    _add(out.regions, _REGIONS_CI.get(region.lower(), region))
                else:
                    _add(out.tags, part)
            elif rv := _REV_RE.match(part):
                out.revision = rv.group(1).strip()
            else:
                _add(out.tags, part)
    return out
