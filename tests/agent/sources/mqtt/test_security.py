"""The MQTT source over TLS and with a user name and password from a file."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.errors import ConfigError
from agent.queue.store import QueueStore
from agent.sources.mqtt.config import MqttTls
from agent.sources.mqtt.source import MqttSource
from tests.agent.sources.mqtt.conftest import (
    mqtt_config,
    produced,
    running,
    wait_until,
)
from tests.fixtures.mosquitto import Mosquitto, running_mosquitto

PASSWORD = "pl4nt-s3cret"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) paths."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return ca_path, cert_path, key_path


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    ca, cert, key = make_certificates(tmp_path / "pki")
    with running_mosquitto(
        tmp_path / "tls-broker", [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
    ) as broker:
        yield broker, ca


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "agent", PASSWORD], check=True)
    passwords.chmod(0o600)
    with running_mosquitto(
        tmp_path / "auth-broker", ["allow_anonymous false", f"password_file {passwords}"]
    ) as broker:
        yield broker


def _publish_tls(broker: Mosquitto, ca: Path, count: int) -> None:
    lines = b"".join(produced("plant/l1/produced", f"t{i}")[1] + b"\n" for i in range(count))
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            broker.host,
            "-p",
            str(broker.port),
            "--cafile",
            str(ca),
            "-q",
            "1",
            "-t",
            "plant/l1/produced",
            "-l",
        ],
        input=lines,
        check=True,
    )


async def test_messages_arrive_over_tls_verified_against_the_ca(
    tls_broker: tuple[Mosquitto, Path], queue: QueueStore
) -> None:
    broker, ca = tls_broker
    config = mqtt_config(broker, tls=MqttTls(ca_file=ca))
    source = MqttSource(config, queue, "edge-test")
    async with running(source):
        await asyncio.to_thread(_publish_tls, broker, ca, 500)
        await wait_until(lambda: source.stats().queued == 500, "500 events over TLS")


async def test_an_untrusted_broker_certificate_is_refused(
    tls_broker: tuple[Mosquitto, Path], queue: QueueStore
) -> None:
    broker, _ = tls_broker
    source = MqttSource(mqtt_config(broker, tls=MqttTls()), queue, "edge-test")
    async with running(source, connected=False):
        await wait_until(lambda: source.stats().reconnects >= 1, "a failed attempt")
        stats = source.stats()
    assert not stats.connected
    assert stats.last_error is not None and "CERTIFICATE_VERIFY_FAILED" in stats.last_error


async def test_user_and_password_from_a_file_and_never_logged(
    auth_broker: Mosquitto, queue: QueueStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(PASSWORD + "\n")
    config = mqtt_config(auth_broker, username="agent", password_file=password_file)
    source = MqttSource(config, queue, "edge-test")
    caplog.set_level(logging.DEBUG)
    async with running(source):  # connected: the trailing newline is not part of the password
        await asyncio.to_thread(
            subprocess.run,
            [
                "mosquitto_pub",
                "-h",
                auth_broker.host,
                "-p",
                str(auth_broker.port),
                "-u",
                "agent",
                "-P",
                PASSWORD,
                "-q",
                "1",
                "-t",
                "plant/l1/produced",
                "-m",
                produced("plant/l1/produced", 1)[1].decode(),
            ],
            check=True,
        )
        await wait_until(lambda: source.stats().queued == 1, "the event")
    assert PASSWORD not in caplog.text


async def test_a_wrong_password_is_refused_and_retried(
    auth_broker: Mosquitto, queue: QueueStore, tmp_path: Path
) -> None:
    password_file = tmp_path / "mqtt-password"
    password_file.write_text("wrong\n")
    config = mqtt_config(auth_broker, username="agent", password_file=password_file)
    source = MqttSource(config, queue, "edge-test")
    async with running(source, connected=False):
        await wait_until(lambda: source.stats().reconnects >= 2, "two refused attempts")
        stats = source.stats()
    assert not stats.connected
    assert stats.last_error is not None and "refused" in stats.last_error


def test_an_unreadable_password_file_is_a_config_error(tmp_path: Path) -> None:
    broker = Mosquitto(directory=tmp_path, port=1883)
    config = mqtt_config(broker, username="agent", password_file=tmp_path / "missing")
    with pytest.raises(ConfigError, match="password_file"):
        MqttSource(config, None, "edge-test")  # type: ignore[arg-type]
