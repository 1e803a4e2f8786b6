"""Both clients get the same security settings: librdkafka's names are derived from the
one reading of them (`Settings.kafka_security`), so the two cannot drift apart."""

from __future__ import annotations

from pipeline.kafka.confluent import security_config
from pipeline.settings import Settings


def test_plaintext_by_default() -> None:
    assert security_config(Settings()) == {"security.protocol": "plaintext"}


def test_sasl_ssl_maps_every_option() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="vigil",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile="/etc/ssl/ca.pem",
    )
    assert security_config(settings) == {
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "vigil",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ssl/ca.pem",
    }
    assert set(settings.kafka_security()) == {
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "ssl_cafile",
    }
