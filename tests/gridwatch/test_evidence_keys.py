"""Registries need the data key (their templates, evidence and reference photos are sealed at rest):
the config, the start check, the service and the CLI."""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from gridwatch.cli import main
from gridwatch.core.config.loader import load_config
from gridwatch.core.config.registries import EvidenceConfig, RegistryConfig
from gridwatch.core.crypto import DATA_KEY_ENV, OLD_DATA_KEYS_ENV, DataKeyError, Keyring, new_data_key
from gridwatch.core.events import Sighting, SourceKind
from gridwatch.core.interfaces import Frame
from gridwatch.core.registry_keys import RegistryKeys
from gridwatch.service import Service
from gridwatch.wiring import require_keyring
from recognition.evidence import EvidenceStore
from recognition.recognizer import SourceInfo
from tests.support.models import shared_analyzer
from tests.support.paths import TESTDATA

KEY = base64.b64encode(new_data_key()).decode()
BIDEN = TESTDATA / "faces" / "biden" / "biden.jpg"
BIDEN_AGAIN = TESTDATA / "faces" / "biden" / "biden2.jpg"


def write_config(root: Path, evidence: str, *, registries: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "gridwatch.yaml"
    config.write_text(
        f"""
service:
  name: evidence-keys
  data_dir: {root / "data"}
  http: {{enabled: false}}
notifier:
  console: {{enabled: true}}
  kafka: {{enabled: false}}
"""
        + (
            f"""
registries:
  - name: wanted
    purpose: evidence key test
    legal_basis: test fixture
    retention_days: 1
    evidence: {evidence}
  - name: plain
    purpose: evidence key test
    legal_basis: test fixture
    retention_days: 1
"""
            if registries
            else ""
        )
    )
    return config


def test_evidence_defaults_keep_nothing() -> None:
    registry = RegistryConfig(name="r", purpose="test", legal_basis="test", retention_days=1)
    assert registry.evidence == EvidenceConfig(keep=False, retention_days=30, reference_photo=False)
    assert not registry.evidence.needs_key


@pytest.mark.parametrize(
    "evidence",
    [{"retention_days": 0}, {"retention_days": 3651}, {"keep": "sometimes"}, {"encrypt": False}],
)
def test_evidence_settings_are_strict_and_bounded(evidence: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EvidenceConfig.model_validate(evidence)


@pytest.mark.parametrize("evidence", ["{keep: true}", "{reference_photo: true}", "{keep: true, retention_days: 7}"])
def test_a_registry_keeping_evidence_without_a_key_is_refused(tmp_path: Path, evidence: str) -> None:
    config = load_config(write_config(tmp_path, evidence)).config
    with pytest.raises(DataKeyError) as raised:
        require_keyring(config, {})
    message = str(raised.value)
    assert "wanted, plain" in message  # every registry: templates are sealed whatever the evidence settings
    assert DATA_KEY_ENV in message
    assert "head -c 32 /dev/urandom | base64" in message


def test_with_a_key_the_check_gives_the_keyring(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "{keep: true}")).config
    keyring = require_keyring(config, {DATA_KEY_ENV: KEY})
    assert keyring is not None
    assert keyring.open(keyring.seal(b"x", b"aad"), b"aad") == b"x"


def test_registries_keeping_no_evidence_still_need_the_key_for_their_templates(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "{keep: false, retention_days: 7}")).config
    with pytest.raises(DataKeyError, match=f"{DATA_KEY_ENV} is not set"):
        require_keyring(config, {})


def test_a_config_without_registries_needs_no_key(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "{keep: false}", registries=False)).config
    assert require_keyring(config, {}) is None


def test_a_malformed_key_is_refused_even_when_nothing_needs_it(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "{keep: false}")).config
    with pytest.raises(DataKeyError, match="exactly 32 random bytes"):
        require_keyring(config, {DATA_KEY_ENV: base64.b64encode(b"short").decode()})
    with pytest.raises(DataKeyError, match=OLD_DATA_KEYS_ENV):
        require_keyring(config, {DATA_KEY_ENV: KEY, OLD_DATA_KEYS_ENV: "!!"})


async def test_the_service_refuses_to_start_before_opening_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_KEY_ENV, raising=False)
    monkeypatch.delenv(OLD_DATA_KEYS_ENV, raising=False)
    service = Service(load_config(write_config(tmp_path, "{keep: true}")))
    try:
        with pytest.raises(DataKeyError, match="wanted"):
            await service.start()
        assert not (tmp_path / "data").exists()
    finally:
        await service.stop()


def test_gridwatch_run_without_the_key_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (DATA_KEY_ENV, OLD_DATA_KEYS_ENV)}
    result = subprocess.run(
        [sys.executable, "-m", "gridwatch", "run", "-c", str(write_config(tmp_path, "{keep: true}")), "--for", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{DATA_KEY_ENV} is not set" in result.stderr
    assert "head -c 32 /dev/urandom | base64" in result.stderr


async def test_the_running_service_seals_the_evidence_of_a_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DATA_KEY_ENV, KEY)
    monkeypatch.delenv(OLD_DATA_KEYS_ENV, raising=False)
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    site = write_config(tmp_path, "{keep: true, retention_days: 3}")
    assert main(["registry", "enroll", "-c", str(site), "--registry", "wanted", "--name", "W", str(BIDEN)]) == 0
    person_id = capsys.readouterr().out.split()[1]

    service = Service(load_config(site))
    seen: list[Sighting] = []

    async def on_sighting(sighting: Sighting) -> None:
        seen.append(sighting)

    service.tap_sightings(on_sighting)
    await service.start()
    try:
        assert service._recognition is not None
        on_frame = service._recognition.frame_handler(SourceInfo("cam-1", SourceKind.CAMERA))
        image = np.asarray(cv2.imread(str(BIDEN_AGAIN)), dtype=np.uint8)
        await on_frame(Frame("cam-1", 1, dt.datetime.now(dt.UTC), image))
        [sighting] = seen
        assert (sighting.person_id, sighting.registry) == (person_id, "wanted")
        assert sighting.evidence_ref is not None
        keyring = Keyring.from_env({DATA_KEY_ENV: KEY})
        assert keyring is not None
        # Sealed under the registry's data key, which the master key unwraps from the site's key file.
        keys = RegistryKeys(keyring, tmp_path / "data" / "keys" / "registry-keys.json")
        store = EvidenceStore(service.registries.store.database, keys)
        [stored] = [o for o in store.objects(sighting_id=sighting.sighting_id) if o.kind == "face"]
        assert stored.key_id == keys.keyring("wanted").key_id != keyring.key_id
        face = store.get(sighting.evidence_ref, registry="wanted", person_id=person_id)
        assert cv2.imdecode(np.frombuffer(face, np.uint8), cv2.IMREAD_COLOR) is not None
        assert sorted(o.kind for o in store.objects(sighting_id=sighting.sighting_id)) == ["face", "frame"]
    finally:
        await service.stop()


async def test_a_reload_may_not_add_a_registry_without_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_KEY_ENV, raising=False)
    monkeypatch.delenv(OLD_DATA_KEYS_ENV, raising=False)
    monkeypatch.setattr("gridwatch.wiring.build_analyzer", lambda *args, **kwargs: shared_analyzer())
    service = Service(load_config(write_config(tmp_path / "before", "{keep: false}", registries=False)))
    await service.start()
    try:
        with pytest.raises(DataKeyError, match="wanted"):
            await service.apply_config(load_config(write_config(tmp_path / "after", "{keep: false}")))
        assert service.config.config.registries == []  # the running config stays
    finally:
        await service.stop()
