"""Key files and key ids: private keys never readable by others, never overwritten."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from wire.errors import WireError
from wire.keys import (
    KeyFileError,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    public_key_path,
    write_keypair,
)

# RFC 8037 appendix A.1 (key) and A.3 (its RFC 7638 thumbprint).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 0, so a file mode can only come from the code under test."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_rfc8037_thumbprint_vector() -> None:
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(RFC8037_X))
    assert key_id(public) == RFC8037_THUMBPRINT


def test_rfc8037_private_key_gives_the_same_key_id() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    assert key_id(private.public_key()) == RFC8037_THUMBPRINT


def test_key_id_of_a_private_key_is_that_of_its_public_half() -> None:
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    assert key_id(private) == RFC8037_THUMBPRINT


def test_key_id_is_43_base64url_characters() -> None:
    kid = key_id(generate_private_key().public_key())
    assert len(kid) == 43
    assert set(kid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_write_keypair_modes_and_round_trip(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "gateway.pem"
    key = write_keypair(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pub_path = tmp_path / "gateway.pem.pub"
    assert public_key_path(path) == pub_path
    assert stat.S_IMODE(pub_path.stat().st_mode) == 0o644
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = load_private_key(path)
    assert loaded.private_bytes_raw() == key.private_bytes_raw()
    assert key_id(load_public_key(pub_path)) == key_id(key.public_key())
    assert key_id(load_public_key(str(pub_path))) == key_id(key.public_key())
    assert key_id(load_public_key(pub_path.read_bytes())) == key_id(key.public_key())


def test_write_keypair_keeps_a_given_key(tmp_path: Path) -> None:
    key = generate_private_key()
    write_keypair(tmp_path / "k.pem", key)
    assert load_private_key(tmp_path / "k.pem").private_bytes_raw() == key.private_bytes_raw()


def test_refuses_to_overwrite_a_private_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.pem"
    write_keypair(path)
    before = path.read_bytes(), public_key_path(path).read_bytes()
    with pytest.raises(KeyFileError, match="already exists") as caught:
        write_keypair(path)
    assert str(path) in str(caught.value)
    assert (path.read_bytes(), public_key_path(path).read_bytes()) == before


def test_refuses_when_only_the_public_file_exists(tmp_path: Path) -> None:
    path = tmp_path / "gateway.pem"
    public_key_path(path).write_text("someone else's key")
    with pytest.raises(KeyFileError, match="already exists"):
        write_keypair(path)
    assert not path.exists()


def test_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    path = tmp_path / "gateway.pem"
    path.symlink_to(tmp_path / "elsewhere.pem")
    with pytest.raises(KeyFileError, match="already exists"):
        write_keypair(path)
    assert not (tmp_path / "elsewhere.pem").exists()


def test_missing_directory_is_reported_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "gateway.pem"
    with pytest.raises(KeyFileError) as caught:
        write_keypair(path)
    assert str(path) in str(caught.value)


def test_missing_key_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.pem"
    with pytest.raises(KeyFileError, match="no such key file") as caught:
        load_private_key(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, WireError)


def test_garbage_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "junk.pem"
    path.write_text("hello")
    with pytest.raises(KeyFileError, match="not an unencrypted PEM private key"):
        load_private_key(path)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(path)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(b"hello")


def test_other_key_types_are_refused(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    private = tmp_path / "ec.pem"
    private.write_bytes(ec_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public = tmp_path / "ec.pem.pub"
    public.write_bytes(
        ec_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="expected an Ed25519 key") as caught:
        load_private_key(private)
    assert str(private) in str(caught.value)
    with pytest.raises(KeyFileError, match="expected an Ed25519 key"):
        load_public_key(public)


def test_public_key_file_is_not_a_private_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.pem"
    write_keypair(path)
    with pytest.raises(KeyFileError):
        load_private_key(public_key_path(path))


def test_loading_a_readable_private_key_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gateway.pem"
    write_keypair(path)
    path.chmod(0o644)
    load_private_key(path)
    assert any("should be 0600" in r.getMessage() for r in caplog.records)


def test_vector_key_matches_its_public_file_and_id(vector: dict[str, str]) -> None:
    vectors = Path(__file__).parent / "vectors"
    private = load_private_key(vectors / vector["private_key_file"])
    public = load_public_key(vectors / vector["public_key_file"])
    assert key_id(private.public_key()) == key_id(public) == vector["key_id"]
