"""Bulk enrolment from a ZIP archive: many persons at once, with progress and a per-photo report.

Two forms of archive, both read in memory, member by member (nothing is extracted to disk):

- **photos only**: every image file is one person, named after the file (``Wang Fang.jpg``);
- **a CSV and photos**: ``persons.csv`` at the archive's root, header ``photo,name`` and optionally
  ``home,zone,hours,case_ref``; ``photo`` may list several files of one person, and ``home`` / ``zone``
  several ids, separated by ``;``. Photos the CSV does not name are ignored.

Each person is enrolled the way ``gridwatch registry enroll`` does it (the same refusal reasons: no face,
several faces, a face too small, an undecodable file): a person whose photos are all acceptable is
enrolled (audited by the registry), any refused photo refuses that person and is listed with its reason.
Archives are bounded before anything is decoded: member count, each member's size as declared and as
read, and the compression ratio (a zip bomb is refused, not inflated).
"""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from gridwatch.core.interfaces import FaceAnalyzer
from recognition.enroll import EnrollmentError, enrollment_sample
from recognition.quality import QualityGate
from recognition.registries import Registries

CSV_NAME = "persons.csv"
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
MAX_MEMBERS = 10_000
MAX_PHOTO_BYTES = 20 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed; photos barely compress, a bomb compresses a thousandfold


class ImportArchiveError(ValueError):
    """The archive as a whole cannot be imported (not a ZIP, too many members, a bomb, a bad CSV)."""


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One person to enrol: a display name, their photos (archive paths) and conditions."""

    line: int  # CSV line, or the member's position in a photos-only archive
    name: str
    photos: tuple[str, ...]
    home_sources: tuple[str, ...] = ()
    allowed_zones: tuple[str, ...] = ()
    allowed_hours: str | None = None
    case_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    photo: str
    reason: str


@dataclass
class ImportReport:
    """Progress and outcome; ``snapshot()`` is safe to call from another thread while the import runs."""

    total: int
    done: int = 0
    enrolled: list[str] = field(default_factory=list)  # person ids
    refused: list[Refusal] = field(default_factory=list)
    finished: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "state": "done" if self.finished else "running",
            "total": self.total,
            "done": self.done,
            "enrolled": len(self.enrolled),
            "refused": [{"photo": r.photo, "reason": r.reason} for r in self.refused],
            "error": self.error,
        }


class ArchiveReader:
    """The members of a ZIP archive, bounded; see the module docstring."""

    def __init__(self, data: bytes) -> None:
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError) as exc:
            raise ImportArchiveError(f"not a ZIP archive: {exc}") from None
        members = [m for m in self._zip.infolist() if not m.is_dir() and not _hidden(m.filename)]
        if len(members) > MAX_MEMBERS:
            raise ImportArchiveError(f"too many files in the archive ({len(members)} > {MAX_MEMBERS})")
        for member in members:
            if member.file_size > MAX_PHOTO_BYTES:
                raise ImportArchiveError(f"{member.filename}: larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
            if member.compress_size and member.file_size / member.compress_size > MAX_RATIO:
                raise ImportArchiveError(f"{member.filename}: compressed suspiciously well (a zip bomb?)")
        self._members = {m.filename: m for m in members}

    def names(self) -> list[str]:
        return list(self._members)

    def read(self, name: str) -> bytes:
        member = self._members.get(name)
        if member is None:
            raise KeyError(name)
        with self._zip.open(member) as handle:
            data = handle.read(MAX_PHOTO_BYTES + 1)  # never trust the declared size alone
        if len(data) > MAX_PHOTO_BYTES:
            raise ImportArchiveError(f"{name}: larger than declared")
        return data

    def rows(self) -> list[ImportRow]:
        """The persons of the archive: from ``persons.csv`` when there is one, else one per photo."""
        if CSV_NAME in self._members:
            return _csv_rows(self.read(CSV_NAME))
        photos = [n for n in self._members if PurePosixPath(n).suffix.lower() in PHOTO_SUFFIXES]
        return [ImportRow(i + 1, PurePosixPath(n).stem.strip() or n, (n,)) for i, n in enumerate(sorted(photos))]

    def others(self) -> list[str]:
        """Members of a photos-only archive that are not photos (reported, never read)."""
        if CSV_NAME in self._members:
            return []
        return sorted(n for n in self._members if PurePosixPath(n).suffix.lower() not in PHOTO_SUFFIXES)


class BulkImport:
    """Enrols the rows of one archive into one registry, one person at a time (run it in a worker thread)."""

    def __init__(
        self,
        registries: Registries,
        analyzer: FaceAnalyzer,
        gate: QualityGate,
        registry: str,
        archive: ArchiveReader,
        *,
        actor: str,
        known: Callable[[ImportRow], str | None] = lambda row: None,
        on_enrolled: Callable[[str, bytes], object] | None = None,
    ) -> None:
        """``known(row)``: a reason when a row's conditions name sources, zones or schedules the config lacks;
        ``on_enrolled(person_id, first_photo)``: after each enrolment (the reference photo is kept there)."""
        self._on_enrolled = on_enrolled
        self._registries = registries
        self._analyzer = analyzer
        self._gate = gate
        self._registry = registry
        self._archive = archive
        self._actor = actor
        self._known = known
        self._rows = archive.rows()
        self._others = archive.others()
        self._lock = threading.Lock()
        self._report = ImportReport(total=len(self._rows) + len(self._others))

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return self._report.as_dict()

    @property
    def report(self) -> ImportReport:
        return self._report

    def run(self) -> ImportReport:
        try:
            for name in self._others:
                self._refuse([Refusal(name, "not a photo (jpg, jpeg, png, bmp or webp)")])
            for row in self._rows:
                self._enrol(row)
        except Exception as exc:  # the archive or the store failed mid-way: say so in the report
            with self._lock:
                self._report.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with self._lock:
                self._report.finished = True
        return self._report

    def _enrol(self, row: ImportRow) -> None:
        refusals: list[Refusal] = []
        samples = []
        first_photo: bytes | None = None
        reason = self._known(row)
        if reason is not None:
            refusals.append(Refusal(row.photos[0] if row.photos else f"line {row.line}", reason))
        for photo in row.photos:
            if refusals:
                break
            try:
                data = self._archive.read(photo)
            except KeyError:
                refusals.append(Refusal(photo, "not in the archive"))
                continue
            try:
                samples.append(enrollment_sample(self._analyzer, self._gate, data, what=photo))
            except EnrollmentError as exc:
                refusals.append(Refusal(photo, str(exc)))
                continue
            # The reference photo never shows a bystander: other faces are covered (see EnrollmentSample).
            first_photo = samples[-1].reference(data) if first_photo is None else first_photo
        if refusals:
            self._refuse(refusals)
            return
        try:
            person = self._registries.enroll(
                self._registry,
                row.name,
                [(s.photo_sha256, s.embedding) for s in samples],
                actor=self._actor,
                home_sources=row.home_sources,
                allowed_zones=row.allowed_zones,
                allowed_hours=row.allowed_hours,
                case_ref=row.case_ref,
            )
        except ValueError as exc:  # a condition of the wrong form (e.g. a case number with free text)
            self._refuse([Refusal(row.photos[0], str(exc))])
            return
        if self._on_enrolled is not None and first_photo is not None:
            self._on_enrolled(person.person_id, first_photo)
        with self._lock:
            self._report.enrolled.append(person.person_id)
            self._report.done += 1

    def _refuse(self, refusals: Sequence[Refusal]) -> None:
        with self._lock:
            self._report.refused += refusals
            self._report.done += 1


def _csv_rows(data: bytes) -> list[ImportRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportArchiveError(f"{CSV_NAME}: not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "photo" not in header or "name" not in header:
        raise ImportArchiveError(f"{CSV_NAME}: the header needs `photo` and `name` (got {', '.join(header) or 'none'})")
    extra = set(header) - {"photo", "name", "home", "zone", "hours", "case_ref"}
    if extra:
        raise ImportArchiveError(f"{CSV_NAME}: unknown column(s) {', '.join(sorted(extra))}")
    rows: list[ImportRow] = []
    for record in reader:
        line = reader.line_num
        name = (record.get("name") or "").strip()
        photos = _split(record.get("photo"))
        if not name or not photos:
            raise ImportArchiveError(f"{CSV_NAME}:{line}: every row needs a name and a photo")
        rows.append(
            ImportRow(
                line=line,
                name=name,
                photos=photos,
                home_sources=_split(record.get("home")),
                allowed_zones=_split(record.get("zone")),
                allowed_hours=(record.get("hours") or "").strip() or None,
                case_ref=(record.get("case_ref") or "").strip() or None,
            )
        )
    return rows


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(";") if part.strip())


def _hidden(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)
