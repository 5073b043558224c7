"""`service.gate_intake`: the bounds in front of recognition are config, checked with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.core.config.loader import ConfigError, load_config
from tests.gridwatch.core.test_config_rules import write_site


def test_gate_intake_bounds_are_config(tmp_path: Path) -> None:
    site = write_site(tmp_path)
    (site / "service.yaml").write_text("service:\n  gate_intake: {queue_per_gate: 4, wait_s: 5, retry_after_s: 3}\n")
    intake = load_config(site, {}).config.service.gate_intake
    assert (intake.queue_per_gate, intake.wait_s, intake.retry_after_s) == (4, 5.0, 3)
    (site / "service.yaml").write_text("service:\n  gate_intake:\n    queue_per_gate: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(site, {})
    [issue] = caught.value.issues
    assert (issue.file.name, issue.line, issue.key_path) == ("service.yaml", 3, "service.gate_intake.queue_per_gate")
