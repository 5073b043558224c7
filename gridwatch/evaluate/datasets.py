"""Labelled data for `gridwatch eval`: a folder of identity folders, or a CSV of pairs.

- Identity folders: every sub-folder of DATA is one identity, named by the folder; every image in
  it (``.jpg .jpeg .png .bmp .webp``) is a photo of that identity. Files beside the folders
  (a manifest, a README) and dot-files are ignored.
- Pairs CSV: the header is exactly ``path_a,path_b,same``, optionally followed by ``group_a,group_b``
  (a demographic or capture group of each photo, for per-group rates); ``same`` is 1 (same person)
  or 0; paths are relative to the CSV's folder (absolute paths are taken as they are). Pairs carry no
  identities, so they give verification metrics only.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
PAIRS_HEADER = ["path_a", "path_b", "same"]
GROUP_COLUMNS = ["group_a", "group_b"]
MAX_REPORTED_PROBLEMS = 10


class DatasetError(ValueError):
    """The labelled data cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Photo:
    path: Path
    identity: str | None  # None for photos that come from a pairs CSV


@dataclass(frozen=True, slots=True)
class Pair:
    a: Path
    b: Path
    same: bool
    group_a: str | None = None
    group_b: str | None = None


@dataclass(frozen=True)
class Dataset:
    kind: str  # "folders" or "pairs"
    source: Path
    photos: list[Photo]
    pairs: list[Pair] = field(default_factory=list)

    @property
    def identities(self) -> list[str]:
        return sorted({p.identity for p in self.photos if p.identity is not None})


def load_dataset(path: Path, *, exclude: Collection[str] = ()) -> Dataset:
    """``exclude``: names of sub-folders that are not identities (e.g. ``group`` photos)."""
    if path.is_dir():
        return load_identity_folders(path, exclude=exclude)
    if path.is_file():
        return load_pairs_csv(path)
    raise DatasetError(f"{path}: no such file or directory (give a folder of identity folders or a pairs CSV)")


def load_identity_folders(root: Path, *, exclude: Collection[str] = ()) -> Dataset:
    photos: list[Photo] = []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in exclude]
    for folder in sorted(folders):
        photos += [
            Photo(f, folder.name)
            for f in sorted(folder.iterdir())
            if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
        ]
    if not photos:
        raise DatasetError(f"{root}: no identity folders with photos ({', '.join(sorted(IMAGE_SUFFIXES))}) in it")
    return Dataset("folders", root, photos)


def load_pairs_csv(path: Path) -> Dataset:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise DatasetError(f"{path}: empty file; the first line must be the header {','.join(PAIRS_HEADER)}")
    header = [cell.strip() for cell in rows[0]]
    if header not in (PAIRS_HEADER, PAIRS_HEADER + GROUP_COLUMNS):
        raise DatasetError(
            f"{path}:1: bad header {','.join(header)!r}; expected exactly {','.join(PAIRS_HEADER)!r} "
            f"or {','.join(PAIRS_HEADER + GROUP_COLUMNS)!r}"
        )
    width = len(header)
    base = path.parent
    pairs: list[Pair] = []
    problems: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != width:
            problems.append(f"{path}:{line}: expected {width} columns ({','.join(header)}), got {len(row)}")
            continue
        cells = [cell.strip() for cell in row]
        if cells[2] not in ("0", "1"):
            problems.append(f"{path}:{line}: same must be 1 or 0, got {cells[2]!r}")
            continue
        resolved = []
        for column, value in zip(PAIRS_HEADER[:2], cells[:2], strict=True):
            photo = Path(value) if Path(value).is_absolute() else base / value
            if not photo.is_file():
                problems.append(f"{path}:{line}: {column} {value!r}: no such file ({photo})")
            resolved.append(photo)
        groups = (cells[3] or None, cells[4] or None) if width > len(PAIRS_HEADER) else (None, None)
        pairs.append(Pair(resolved[0], resolved[1], cells[2] == "1", *groups))
    if problems:
        more = len(problems) - MAX_REPORTED_PROBLEMS
        listed = problems[:MAX_REPORTED_PROBLEMS] + ([f"... and {more} more"] if more > 0 else [])
        raise DatasetError("\n".join(listed))
    if not pairs:
        raise DatasetError(f"{path}: no pairs after the header")
    unique = list(dict.fromkeys(p for pair in pairs for p in (pair.a, pair.b)))
    return Dataset("pairs", path, [Photo(p, None) for p in unique], pairs)
