from __future__ import annotations

import io
import json
from pathlib import Path

from gridwatch.core.config.notifier import KafkaSinkConfig
from gridwatch.core.events import Alert
from notifier.format import format_alert_line
from notifier.sinks import ConsoleSink, JsonlSink, KafkaSink, cloudevent_headers
from tests.notifier.conftest import AlertFactory


async def test_console_sink_writes_one_readable_line(make_alert: AlertFactory) -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    await sink.start()
    alert = make_alert("p-42", explanation="seen at\ngate-north\n  twice")
    await sink.deliver(alert)
    await sink.stop()
    await sink.stop()
    lines = out.getvalue().splitlines()
    assert lines == [format_alert_line(alert)]
    line = lines[0]
    for part in (
        "2024-05-01T10:00:01Z",
        "WARNING",
        "rule=seen-at-gate",
        "registry=watch",
        "person=p-42",
        "source=gate-north",
        "similarity=0.612",
        "| seen at gate-north twice",
    ):
        assert part in line


async def test_jsonl_sink_appends_alert_json(tmp_path: Path, make_alert: AlertFactory) -> None:
    path = tmp_path / "deep" / "alerts.jsonl"
    first, second = make_alert(), make_alert()
    sink = JsonlSink(path)
    await sink.start()
    await sink.deliver(first)
    await sink.stop()
    sink = JsonlSink(path)
    await sink.start()
    await sink.deliver(second)
    await sink.stop()
    await sink.stop()
    alerts = [Alert.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert alerts == [first, second]
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["schema"] == "gridwatch.alert/v1"


def test_cloudevent_headers(make_alert: AlertFactory) -> None:
    alert = make_alert("p-7")
    headers = dict(cloudevent_headers(alert, "site-a"))
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == alert.alert_id.encode()
    assert headers["ce_source"] == b"gridwatch/site-a"
    assert headers["ce_type"] == b"gridwatch.alert.v1"
    assert headers["ce_time"].decode().endswith("Z")
    assert headers["content-type"] == b"application/json"


def test_kafka_sink_passes_sasl_settings_and_hides_them() -> None:
    config = KafkaSinkConfig(
        enabled=True,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="gw",
        sasl_password="s3cret-value",
    )
    sink = KafkaSink(config, service_name="site-a")
    kwargs = sink._producer_kwargs()
    assert kwargs["acks"] == "all"
    assert kwargs["enable_idempotence"] is True
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "gw",
        "s3cret-value",
    )
    assert "s3cret" not in repr(sink)
    assert "s3cret" not in repr(config)
    plain = KafkaSink(KafkaSinkConfig(enabled=True))._producer_kwargs()
    assert not any(key.startswith("sasl") for key in plain)
