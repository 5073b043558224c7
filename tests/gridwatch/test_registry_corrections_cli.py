"""`gridwatch registry enroll|extend|approvals` on a corrections registry, as a registrar runs them.

The commands run in-process (``main([...])``) on a real photo; the model pack is the session's shared one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.gridwatch.test_registry_cli import PHOTO, SITE, audit_records, listed, run
from tests.support.models import shared_analyzer

CORRECTIONS = """\
  - name: corr
    kind: corrections
    purpose: community corrections supervision
    legal_basis: Community Corrections Law art. 29
    retention_days: 365
"""
TODAY = dt.datetime.now(dt.UTC).date()
APPROVAL = (
    *("--approval-doc", "JZ-2026-017", "--approver", "county bureau of justice", "--situation-code", "2"),
    *("--start", TODAY.isoformat(), "--end", (TODAY + dt.timedelta(days=92)).isoformat()),
)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(SITE.format(data_dir=tmp_path / "data") + CORRECTIONS)
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    return config


def enrol(site: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return run(site, "enroll", "--registry", "corr", "--name", "N-1", *extra, str(PHOTO), capsys=capsys)


def test_enrolment_without_an_approval_is_refused(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = enrol(site, capsys)
    assert code == 2
    assert "error: registry 'corr' is a corrections registry: enrolment needs an approval record" in err
    assert "nothing enrolled" in err
    assert out == ""
    assert listed(site, capsys)[1:] == []


def test_an_approval_longer_than_92_days_is_refused(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    too_long = [*APPROVAL[:-1], (TODAY + dt.timedelta(days=93)).isoformat()]
    code, _, err = enrol(site, capsys, *too_long)
    assert code == 2
    assert "error: end: at most 92 days after start" in err
    assert listed(site, capsys)[1:] == []


def test_an_approval_on_a_watchlist_is_refused(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(site, "enroll", "--registry", "watch", "--name", "N", *APPROVAL, str(PHOTO), capsys=capsys)
    assert code == 2
    assert "is not a corrections registry" in err


def test_enrol_extend_and_read_the_approvals(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = enrol(site, capsys, *APPROVAL)
    assert code == 0, err
    person_id = out.split()[1]
    assert "approved from" in out

    later = TODAY + dt.timedelta(days=92)
    extension = (
        *("--approval-doc", "JZ-2026-017-X", "--approver", "county bureau of justice", "--situation-code", "2"),
        *("--start", later.isoformat(), "--end", (later + dt.timedelta(days=60)).isoformat()),
    )
    code, out, err = run(site, "extend", person_id, *extension, capsys=capsys)
    assert code == 0, err
    assert "(extends ap_" in out

    code, out, err = run(site, "approvals", person_id, capsys=capsys)
    assert code == 0, err
    _header, first, second = out.splitlines()
    assert "JZ-2026-017 / county bureau of justice" in first
    assert "JZ-2026-017-X" in second
    assert first.split()[0] in second  # the extension names the approval it extends

    actions = [r["action"] for r in audit_records(site)]
    assert actions[-4:] == [
        "registry.enroll",
        "registry.approval.add",
        "registry.approval.extend",
        "registry.approval.read",
    ]

    code, _, err = run(
        site, "extend", person_id, *extension[:-1], (later + dt.timedelta(days=100)).isoformat(), capsys=capsys
    )
    assert code == 2
    assert "end: at most 92 days after start" in err
