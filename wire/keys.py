"""Gateway signing keys: Ed25519 key files and their RFC 7638 key ids.

A gateway holds its private key in a PEM file readable by its owner only; the relay registers
the public half under its key id, the JWK SHA-256 thumbprint, which also goes in every
signature's ``keyid`` parameter.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from wire.encoding import canonical_json
from wire.errors import WireError

logger = logging.getLogger(__name__)

PUBLIC_SUFFIX = ".pub"
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644


class KeyFileError(WireError):
    """A key file is missing, unreadable, not Ed25519, or would be overwritten."""

    def __init__(self, path: Path | str | None, message: str) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.path = None if path is None else Path(path)
        self.message = message


def generate_private_key() -> Ed25519PrivateKey:
    """Return a fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def public_key_path(path: Path | str) -> Path:
    """Where the public half of the key at ``path`` is written: ``PATH.pub``."""
    path = Path(path)
    return path.with_name(path.name + PUBLIC_SUFFIX)


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM of ``private_key``, unencrypted (the file mode protects it)."""
    return private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM of ``public_key``, the form the relay registers."""
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def write_keypair(
    path: Path | str, private_key: Ed25519PrivateKey | None = None
) -> Ed25519PrivateKey:
    """Write a private key at ``path`` (mode 0600) and its public key at ``path.pub``.

    A new key is generated unless one is given. Refuses to overwrite either file, so an
    existing gateway identity is never lost by a repeated ``keygen``. Returns the private key.
    """
    path = Path(path)
    pub_path = public_key_path(path)
    for target in (path, pub_path):
        if target.exists() or target.is_symlink():
            raise KeyFileError(target, "already exists; refusing to overwrite a key file")
    key = private_key if private_key is not None else generate_private_key()
    _write_exclusive(path, private_key_pem(key), _PRIVATE_MODE)
    try:
        _write_exclusive(pub_path, public_key_pem(key.public_key()), _PUBLIC_MODE)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    logger.info("wrote key pair %s (key id %s)", path, key_id(key.public_key()))
    return key


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (never briefly wider) and fsync it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except FileExistsError as exc:
        raise KeyFileError(path, "already exists; refusing to overwrite a key file") from exc
    except OSError as exc:
        raise KeyFileError(path, f"cannot create: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeyFileError(path, f"cannot write: {exc.strerror}") from exc


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(path, "no such key file") from exc
    except OSError as exc:
        raise KeyFileError(path, f"cannot read: {exc.strerror}") from exc


def load_private_key(path: Path | str) -> Ed25519PrivateKey:
    """Load an unencrypted PEM Ed25519 private key; warns when others may read the file."""
    path = Path(path)
    data = _read(path)
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(path, "not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(path, f"expected an Ed25519 key, found {type(key).__name__}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        logger.warning("private key %s has mode %o; it should be 0600", path, mode)
    return key


def load_public_key(source: Path | str | bytes) -> Ed25519PublicKey:
    """Load a PEM Ed25519 public key from a file path or from PEM bytes."""
    where: Path | None = None
    if isinstance(source, bytes):
        data = source
    else:
        where = Path(source)
        data = _read(where)
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(where, "not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(where, f"expected an Ed25519 key, found {type(key).__name__}")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """RFC 7638 JWK SHA-256 thumbprint (RFC 8037 OKP form), base64url without padding.

    Given a private key, the id is that of its public half.
    """
    public_key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(public_key.public_bytes_raw())}
    return _b64url(hashlib.sha256(canonical_json(jwk)).digest())
