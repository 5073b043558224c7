"""Bulk enrolment: many persons at once, with progress, a per-photo report and resumption.

Three sources (``gridwatch registry import SOURCE``):

- a **folder** of ``<person>/<photo>``: each sub-folder is one person, named after it, with its photos;
- a **CSV** of ``person,photo[,home_sources,allowed_zones,allowed_hours,case_ref]`` (photo paths relative
  to the CSV's folder; several rows of one person give them several photos; several sources or zones
  separated by ``;``);
- a **ZIP archive** (also uploaded on the console), read in memory, member by member (nothing is
  extracted to disk), in one of two forms:

- **photos only**: every image file is one person, named after the file (``Wang Fang.jpg``);
- **a CSV and photos**: ``persons.csv`` at the archive's root, header ``photo,name`` and optionally
  ``home,zone,hours,case_ref``; ``photo`` may list several files of one person, and ``home`` / ``zone``
  several ids, separated by ``;``. Photos the CSV does not name are ignored.

Each person is enrolled the way ``gridwatch registry enroll`` does it (the same refusal reasons: no face,
several faces, a face too small, an undecodable file), and a face the registry already knows (it reaches
the registry's threshold against an enrolled person) is refused as a duplicate: a person whose photos are
all acceptable is enrolled (audited by the registry), any refused photo refuses that person and is listed
with its reason and a ``kind`` (``REFUSAL_KINDS``) for counting.

Resumable: with an ``ImportJournal``, every finished person is noted (a hash of the row and the outcome:
no name, no photo path, no person id, so an erasure leaves nothing of the person there) and skipped when
the same import runs again. A person enrolled just before an interruption, but not yet noted, is refused
as a duplicate of themselves on the next run, so nobody is enrolled twice.

Archives are bounded before anything is decoded: member count, each member's size as declared and as
read, and the compression ratio (a zip bomb is refused, not inflated).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from gridwatch.core.interfaces import FaceAnalyzer
from recognition.enroll import EnrollmentError, enrollment_sample
from recognition.quality import QualityGate
from recognition.registries import Registries

CSV_NAME = "persons.csv"
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
MAX_MEMBERS = 10_000
MAX_PHOTO_BYTES = 20 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed; photos barely compress, a bomb compresses a thousandfold
CSV_COLUMNS = ("person", "photo", "home_sources", "allowed_zones", "allowed_hours", "case_ref")
# What a refused photo is, for counting: the reason says it in words.
REFUSAL_KINDS = (
    "no_face",
    "several_faces",
    "too_small",
    "poor_quality",
    "unreadable",
    "duplicate",
    "not_a_photo",
    "conditions",
)
# The search that tells a duplicate is not made at a camera; no registry's `sources` names this.
DUPLICATE_PROBE_SOURCE = "bulk-import"


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
    kind: str = "conditions"


def refusal_kind(reason: str) -> str:
    """The kind of an enrolment refusal (``REFUSAL_KINDS``) from its words (``recognition.enroll``)."""
    if "no face found" in reason:
        return "no_face"
    if "too small" in reason:
        return "too_small"
    if "quality gate" in reason:
        return "poor_quality"
    if "face" in reason:  # the dominant-face rule: several faces alike in size
        return "several_faces"
    return "unreadable"


@dataclass
class ImportReport:
    """Progress and outcome; ``snapshot()`` is safe to call from another thread while the import runs."""

    total: int
    done: int = 0
    enrolled: list[str] = field(default_factory=list)  # person ids
    refused: list[Refusal] = field(default_factory=list)
    finished: bool = False
    error: str | None = None
    photos: int = 0  # photos read and analysed (the throughput counts these)
    resumed: int = 0  # persons a journal said were done in an earlier run (skipped)

    def as_dict(self) -> dict[str, object]:
        return {
            "state": "done" if self.finished else "running",
            "total": self.total,
            "done": self.done,
            "enrolled": len(self.enrolled),
            "refused": [{"photo": r.photo, "reason": r.reason, "kind": r.kind} for r in self.refused],
            "error": self.error,
        }


class ImportSource:
    """Where the persons and photos of an import come from (a ZIP archive, a folder or a CSV)."""

    missing = "no such file"  # the refusal of a photo a row names that is not there

    def rows(self) -> list[ImportRow]:
        raise NotImplementedError

    def others(self) -> list[str]:
        """Files that are not photos (reported, never read)."""
        return []

    def read(self, name: str) -> bytes:
        """A photo's bytes; ``KeyError`` when it is not there, ``OSError`` when it cannot be read."""
        raise NotImplementedError


def _read_bounded(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise OSError(f"larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    return data


class FolderSource(ImportSource):
    """A folder of ``<person>/<photo>``: one person per sub-folder, named after it."""

    def __init__(self, root: Path) -> None:
        self._root = root
        entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
        self._rows: list[ImportRow] = []
        self._others: list[str] = []
        for entry in entries:
            if not entry.is_dir():
                self._others.append(entry.name)
                continue
            files = sorted(p for p in entry.iterdir() if p.is_file() and not p.name.startswith("."))
            photos = tuple(f"{entry.name}/{p.name}" for p in files if p.suffix.lower() in PHOTO_SUFFIXES)
            self._others += [f"{entry.name}/{p.name}" for p in files if p.suffix.lower() not in PHOTO_SUFFIXES]
            if photos:
                self._rows.append(ImportRow(len(self._rows) + 1, entry.name, photos))
        if len(self._rows) + len(self._others) > MAX_MEMBERS * 100:
            raise ImportArchiveError(f"too many files in {root}")

    def rows(self) -> list[ImportRow]:
        return list(self._rows)

    def others(self) -> list[str]:
        return list(self._others)

    def read(self, name: str) -> bytes:
        path = self._root / name
        if not path.is_file():
            raise KeyError(name)
        return _read_bounded(path)


class CsvSource(ImportSource):
    """A CSV of ``person,photo[,home_sources,allowed_zones,allowed_hours,case_ref]``; photos relative to it."""

    def __init__(self, path: Path) -> None:
        self._root = path.parent
        self._rows = _person_rows(path.read_bytes(), path.name)

    def rows(self) -> list[ImportRow]:
        return list(self._rows)

    def read(self, name: str) -> bytes:
        path = self._root / name
        if not path.is_file():
            raise KeyError(name)
        return _read_bounded(path)


class ImportJournal:
    """What an import of one source into one registry has done so far: a JSON-lines file, one line per person.

    A line holds a hash of the row (registry, name, photos) and the outcome; never a name, a photo path or a
    person id (the file lives in the data directory, beside sealed templates, and outlives erasures).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._done: dict[str, str] = {}

    def load(self) -> int:
        """Read what earlier runs did; the number of persons they finished."""
        if self._path.exists():
            for line in self._path.read_text().splitlines():
                try:
                    record = json.loads(line)
                    self._done[record["row"]] = record["outcome"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by the interruption
        return len(self._done)

    @staticmethod
    def key(registry: str, row: ImportRow) -> str:
        text = json.dumps([registry, row.name, list(row.photos)], ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def done(self, key: str) -> bool:
        return key in self._done

    def note(self, key: str, outcome: str) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a") as handle:
            handle.write(json.dumps({"row": key, "outcome": outcome}) + "\n")
            handle.flush()
        self._done[key] = outcome


class ArchiveReader(ImportSource):
    """The members of a ZIP archive, bounded; see the module docstring."""

    missing = "not in the archive"

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
        archive: ImportSource,
        *,
        actor: str,
        known: Callable[[ImportRow], str | None] = lambda row: None,
        on_enrolled: Callable[[str, bytes], object] | None = None,
        journal: ImportJournal | None = None,
        on_progress: Callable[[ImportReport], object] | None = None,
    ) -> None:
        """``known(row)``: a reason when a row's conditions name sources, zones or schedules the config lacks;
        ``on_enrolled(person_id, first_photo)``: after each enrolment (the reference photo is kept there);
        ``journal``: makes the import resumable (see the module docstring); ``on_progress(report)``: after
        each person, in the importing thread."""
        self._on_enrolled = on_enrolled
        self._journal = journal
        self._on_progress = on_progress
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
                self._refuse([Refusal(name, "not a photo (jpg, jpeg, png, bmp or webp)", "not_a_photo")])
            for row in self._rows:
                key = None if self._journal is None else ImportJournal.key(self._registry, row)
                if key is not None and self._journal is not None and self._journal.done(key):
                    with self._lock:
                        self._report.resumed += 1
                        self._report.done += 1
                else:
                    outcome = self._enrol(row)
                    if key is not None and self._journal is not None:
                        self._journal.note(key, outcome)
                if self._on_progress is not None:
                    self._on_progress(self._report)
        except Exception as exc:  # the archive or the store failed mid-way: say so in the report
            with self._lock:
                self._report.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with self._lock:
                self._report.finished = True
        return self._report

    def _enrol(self, row: ImportRow) -> str:
        """Enrol one person: "enrolled" or "refused"."""
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
                refusals.append(Refusal(photo, self._archive.missing, "unreadable"))
                continue
            except OSError as exc:
                refusals.append(Refusal(photo, f"cannot read ({exc.strerror or exc})", "unreadable"))
                continue
            with self._lock:
                self._report.photos += 1
            try:
                samples.append(enrollment_sample(self._analyzer, self._gate, data, what=photo))
            except EnrollmentError as exc:
                refusals.append(Refusal(photo, str(exc), refusal_kind(str(exc))))
                continue
            duplicate = self._duplicate_of(samples[-1].embedding)
            if duplicate is not None:
                refusals.append(Refusal(photo, f"{photo}: {duplicate}", "duplicate"))
                continue
            # The reference photo never shows a bystander: other faces are covered (see EnrollmentSample).
            first_photo = samples[-1].reference(data) if first_photo is None else first_photo
        if refusals:
            self._refuse(refusals)
            return "refused"
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
            return "refused"
        if self._on_enrolled is not None and first_photo is not None:
            self._on_enrolled(person.person_id, first_photo)
        with self._lock:
            self._report.enrolled.append(person.person_id)
            self._report.done += 1
        return "enrolled"

    def _duplicate_of(self, embedding: npt.NDArray[np.float32]) -> str | None:
        """Words naming the enrolled person this face reaches the registry's threshold against, or None."""
        threshold = self._registries.configs[self._registry].threshold  # an auto threshold solved for the size now
        decisions = self._registries.decide(embedding[None, :], DUPLICATE_PROBE_SOURCE, also=(self._registry,))
        for decision in decisions[0]:
            candidate = decision.candidate
            if decision.registry == self._registry and candidate is not None and candidate.similarity >= threshold:
                return f"duplicate of enrolled person {candidate.person_id} (similarity {candidate.similarity:.2f})"
        return None

    def _refuse(self, refusals: Sequence[Refusal]) -> None:
        with self._lock:
            self._report.refused += refusals
            self._report.done += 1


def _person_rows(data: bytes, name: str) -> list[ImportRow]:
    """The rows of a ``person,photo[,...]`` CSV (``CSV_COLUMNS``): the rows of one person give them their photos."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportArchiveError(f"{name}: not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "person" not in header or "photo" not in header:
        raise ImportArchiveError(f"{name}: the header needs `person` and `photo` (got {', '.join(header) or 'none'})")
    extra = set(header) - set(CSV_COLUMNS)
    if extra:
        raise ImportArchiveError(f"{name}: unknown column(s) {', '.join(sorted(extra))}")
    persons: dict[str, ImportRow] = {}
    for record in reader:
        line = reader.line_num
        person = (record.get("person") or "").strip()
        photos = _split(record.get("photo"))
        if not person or not photos:
            raise ImportArchiveError(f"{name}:{line}: every row needs a person and a photo")
        row = ImportRow(
            line=line,
            name=person,
            photos=photos,
            home_sources=_split(record.get("home_sources")),
            allowed_zones=_split(record.get("allowed_zones")),
            allowed_hours=(record.get("allowed_hours") or "").strip() or None,
            case_ref=(record.get("case_ref") or "").strip() or None,
        )
        earlier = persons.get(person)
        if earlier is None:
            persons[person] = row
            continue
        conditions = (row.home_sources, row.allowed_zones, row.allowed_hours, row.case_ref)
        if any(conditions) and conditions != (
            earlier.home_sources,
            earlier.allowed_zones,
            earlier.allowed_hours,
            earlier.case_ref,
        ):
            raise ImportArchiveError(f"{name}:{line}: {person!r} has other conditions than on line {earlier.line}")
        persons[person] = ImportRow(
            earlier.line,
            person,
            earlier.photos + photos,
            earlier.home_sources,
            earlier.allowed_zones,
            earlier.allowed_hours,
            earlier.case_ref,
        )
    return list(persons.values())


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
