"""`gridwatch registry import`: bulk enrolment from a ZIP, a folder or a CSV of the shared test photos, with a
per-photo report (reason and kind), progress, the throughput, and resumption after an interruption.

The command runs in-process on real photos and the session's model pack; archives are built in memory.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from gridwatch.cli import main
from recognition.bulk_import import MAX_RATIO, ArchiveReader, ImportArchiveError
from tests.gridwatch.test_registry_cli import SITE, audit_records
from tests.support.keys import site_keys
from tests.support.models import shared_analyzer
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(SITE.format(data_dir=tmp_path / "data"))
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    return config


def archive(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "import.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def run(site: Path, path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, str]], str]:
    code = main(["registry", "import", "-c", str(site), "--registry", "watch", "--actor", "registrar-1", str(path)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def listed(site: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["registry", "list", "-c", str(site), "--actor", "registrar-1"]) == 0
    return capsys.readouterr().out


def test_a_zip_of_photos_enrols_one_person_per_photo_and_lists_the_refusals(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = {
        "Joe Biden.jpg": (FACES / "biden" / "biden.jpg").read_bytes(),
        "Barack Obama.jpg": (FACES / "obama" / "obama.jpg").read_bytes(),
        "Kit.jpeg": (FACES / "kit_harington" / "kit1.jpeg").read_bytes(),
        "Two People.jpg": (FACES / "group" / "two_people.jpg").read_bytes(),
        "broken.jpg": b"\xff\xd8\xff not a jpeg",
        "notes.txt": b"not a photo",
        "__MACOSX/._Kit.jpeg": b"resource fork",
    }
    code, refusals, err = run(site, archive(tmp_path, members), capsys)
    assert code == 1  # some photos were refused
    assert "enrolled 3 of 6" in err
    reasons = {r["photo"]: r["refused"] for r in refusals}
    assert set(reasons) == {"Two People.jpg", "broken.jpg", "notes.txt"}
    assert "face" in reasons["Two People.jpg"]
    assert "not a photo" in reasons["notes.txt"]
    names = listed(site, capsys)
    for name in ("Joe Biden", "Barack Obama", "Kit"):
        assert name in names
    enrolments = [r for r in audit_records(site) if r["action"] == "registry.enroll"]
    assert len(enrolments) == 3
    assert {r["actor"] for r in enrolments} == {"registrar-1"}


def test_a_csv_names_persons_with_several_photos_and_conditions(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = (
        "photo,name,home,zone,hours,case_ref\n"
        "rose1.jpg;rose2.jpg,Rose Leslie,lobby-b3,estate-north,night,\n"
        "alex2.jpg,Alex,no-such-camera,,,\n"
        "missing.jpg,Nobody,,,,\n"
    )
    members = {
        "persons.csv": csv.encode(),
        "rose1.jpg": (FACES / "rose_leslie" / "rose1.jpg").read_bytes(),
        "rose2.jpg": (FACES / "rose_leslie" / "rose2.jpg").read_bytes(),
        "alex2.jpg": (FACES / "alex_lacamoire" / "alex2.jpg").read_bytes(),
    }
    code, refusals, err = run(site, archive(tmp_path, members), capsys)
    assert code == 1
    assert "enrolled 1 of 3" in err
    assert {r["photo"]: r["refused"] for r in refusals} == {
        "alex2.jpg": "unknown source 'no-such-camera' (known: gate-north, gate-north-face, lobby-b3)",
        "missing.jpg": "not in the archive",
    }
    row = next(line for line in listed(site, capsys).splitlines() if "Rose Leslie" in line)
    assert "home=lobby-b3" in row
    assert "zones=estate-north" in row
    assert "hours=night" in row


@pytest.mark.parametrize(
    ("members", "message"),
    [
        pytest.param({"persons.csv": b"file,who\nx.jpg,X\n"}, "needs `photo` and `name`", id="csv-header"),
        pytest.param({"persons.csv": b"photo,name,colour\nx.jpg,X,red\n"}, "unknown column", id="csv-column"),
        pytest.param({"bomb.jpg": b"\0" * (4 * 1024 * 1024)}, "zip bomb", id="bomb"),
    ],
)
def test_a_bad_archive_is_refused_as_a_whole(members: dict[str, bytes], message: str, tmp_path: Path) -> None:
    data = archive(tmp_path, members).read_bytes()
    with pytest.raises(ImportArchiveError, match=message):
        ArchiveReader(data).rows()


def test_not_a_zip_is_refused_before_anything_is_read(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "photos.zip"
    path.write_bytes(b"PK but not really")
    code, _, err = run(site, path, capsys)
    assert code == 2
    assert "not a ZIP archive" in err
    assert MAX_RATIO > 10  # photos never compress that well: the bound only catches bombs


def test_a_registry_keeping_reference_photos_stores_them_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    from sqlalchemy import select

    from gridwatch.core.crypto import new_data_key
    from gridwatch.core.db import Database
    from gridwatch.core.db.schema import evidence
    from recognition.evidence import EvidenceStore

    key = new_data_key()
    config = tmp_path / "gridwatch.yaml"
    config.write_text(SITE.format(data_dir=tmp_path / "data") + "    evidence: {reference_photo: true}\n")
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    photo = FACES / "obama" / "obama.jpg"
    enrol = ["registry", "enroll", "-c", str(config), "--registry", "watch", "--name", "Ref", str(photo)]

    monkeypatch.delenv("GRIDWATCH_DATA_KEY", raising=False)
    assert main(enrol) == 2  # the photo would be kept, and there is no key to seal it with
    assert "GRIDWATCH_DATA_KEY" in capsys.readouterr().err

    monkeypatch.setenv("GRIDWATCH_DATA_KEY", base64.b64encode(key).decode())
    assert main(enrol) == 0, capsys.readouterr().err
    with Database(f"sqlite:///{tmp_path / 'data' / 'gridwatch.sqlite3'}") as database:
        rows = database.transaction(
            lambda c: c.execute(select(evidence.c.object_id, evidence.c.person_id, evidence.c.blob)).all(), what="t"
        )
        [(object_id, person_id, blob)] = rows
        assert not blob.startswith(b"\xff\xd8")  # sealed, not a JPEG
        keys = site_keys(tmp_path / "data", master=key)
        image = EvidenceStore(database, keys).get(object_id, registry="watch", person_id=person_id)
    assert image.startswith(b"\xff\xd8")  # a fresh JPEG, without the original file's metadata
    assert image != photo.read_bytes()


def photo_folder(tmp_path: Path) -> Path:
    """A folder of <person>/<photo>: good persons, a photo without a face, one with two, a broken file and a
    person already in it under another name (the 720p copy of an enrolled photo)."""
    import cv2
    import numpy as np

    root = tmp_path / "photos"
    layout = {
        "Joe Biden": [FACES / "biden" / "biden.jpg", FACES / "biden" / "biden2.jpg"],
        "Kit": [FACES / "kit_harington" / "kit1.jpeg"],
        "Barack Obama": [FACES / "obama" / "obama.jpg"],
        "Obama Again": [FACES / "obama" / "obama-720p.jpg"],
        "Two People": [FACES / "group" / "two_people.jpg"],
    }
    for person, photos in layout.items():
        (root / person).mkdir(parents=True)
        for photo in photos:
            (root / person / photo.name).write_bytes(photo.read_bytes())
    (root / "Wall").mkdir()
    ok, wall = cv2.imencode(".jpg", np.full((240, 320, 3), 128, np.uint8))
    assert ok
    (root / "Wall" / "wall.jpg").write_bytes(wall.tobytes())
    (root / "Far Away").mkdir()
    obama = cv2.imread(str(FACES / "obama" / "obama.jpg"))
    ok, small = cv2.imencode(".jpg", cv2.resize(obama, (100, 125)))  # a face of about 25 px
    assert ok
    (root / "Far Away" / "small.jpg").write_bytes(small.tobytes())
    (root / "Broken").mkdir()
    (root / "Broken" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    return root


def test_a_folder_import_reports_each_photo_with_its_kind_and_the_throughput(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, refusals, err = run(site, photo_folder(tmp_path), capsys)
    assert code == 1
    kinds = {r["photo"]: r["kind"] for r in refusals}
    assert kinds == {
        "Broken/broken.jpg": "unreadable",
        "Far Away/small.jpg": "too_small",
        "Obama Again/obama-720p.jpg": "duplicate",
        "Two People/two_people.jpg": "several_faces",
        "Wall/wall.jpg": "no_face",
    }
    duplicate = next(r["refused"] for r in refusals if r["kind"] == "duplicate")
    assert "duplicate of enrolled person p_" in duplicate
    assert "enrolled 3 of 8" in err
    assert "photos/s" in err
    assert "throughput: 9 photo(s) analysed" in err  # the broken file is read too; not a face
    assert "8/8 persons" in err  # the progress bar's last state (one line per 10 % on a pipe)
    names = listed(site, capsys)
    for name in ("Joe Biden", "Kit", "Barack Obama"):
        assert name in names
    assert "Obama Again" not in names


def test_an_interrupted_import_resumes_and_enrols_nobody_twice(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridwatch.registry_cli import ProgressBar

    folder = photo_folder(tmp_path)
    shown = ProgressBar.show

    def interrupted(self: ProgressBar, done: int, total: int, photos: int) -> None:
        shown(self, done, total, photos)
        if done == 3:
            raise KeyboardInterrupt  # Ctrl-C after the third person

    with monkeypatch.context() as patch:
        patch.setattr(ProgressBar, "show", interrupted)
        code, _, _ = run(site, folder, capsys)
    assert code == 130  # interrupted
    first = [r for r in audit_records(site) if r["action"] == "registry.enroll"]
    assert len(first) == 1  # Barack Obama, then Broken and Far Away (refused): folders in name order

    code, refusals, err = run(site, folder, capsys)
    assert code == 1
    assert "resuming: 3 person(s) done by an earlier run are skipped" in err
    assert "3 done by an earlier run" in err
    enrolments = [r for r in audit_records(site) if r["action"] == "registry.enroll"]
    assert len(enrolments) == 3  # Joe Biden and Kit added; nobody twice
    assert {r["photo"] for r in refusals} == {
        "Obama Again/obama-720p.jpg",
        "Two People/two_people.jpg",
        "Wall/wall.jpg",
    }

    # Enrolled, but the journal never heard of it (killed in between): the face is known, so it is a duplicate.
    journal = next((tmp_path / "data" / "imports").iterdir())
    journal.write_text("".join(journal.read_text().splitlines(keepends=True)[:4]))  # Kit's line and after: gone
    code, refusals, err = run(site, folder, capsys)
    assert len([r for r in audit_records(site) if r["action"] == "registry.enroll"]) == 3
    assert {r["photo"]: r["kind"] for r in refusals}["Kit/kit1.jpeg"] == "duplicate"


def test_a_csv_gives_a_person_several_photos_and_conditions(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "list"
    photos.mkdir()
    for photo in (FACES / "rose_leslie" / "rose1.jpg", FACES / "rose_leslie" / "rose2.jpg"):
        (photos / photo.name).write_bytes(photo.read_bytes())
    csv = photos / "persons.csv"
    csv.write_text(
        "person,photo,home_sources,allowed_zones,allowed_hours,case_ref\n"
        "Rose Leslie,rose1.jpg,lobby-b3,estate-north,night,\n"
        "Rose Leslie,rose2.jpg,,,,\n"
        "Nobody,missing.jpg,,,,\n"
    )
    code, refusals, err = run(site, csv, capsys)
    assert code == 1
    assert refusals == [{"photo": "missing.jpg", "refused": "no such file", "kind": "unreadable"}]
    assert "enrolled 1 of 2" in err
    row = next(line for line in listed(site, capsys).splitlines() if "Rose Leslie" in line)
    assert "home=lobby-b3" in row
    assert "zones=estate-north" in row
