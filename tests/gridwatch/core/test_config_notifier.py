"""The notifier section refuses Kafka settings the producer cannot work with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gridwatch.core.config.notifier import KafkaSinkConfig


@pytest.mark.parametrize(
    "sasl",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "gw"}, id="no-password"),
    ],
)
def test_sasl_without_credentials_is_refused(sasl: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="needs"):
        KafkaSinkConfig(enabled=True, security_protocol="SASL_SSL", **sasl)


def test_sasl_with_credentials_and_disabled_kafka_are_accepted() -> None:
    KafkaSinkConfig(enabled=True, security_protocol="SASL_PLAINTEXT", sasl_username="gw", sasl_password="pw")
    KafkaSinkConfig(enabled=False, security_protocol="SASL_SSL")
