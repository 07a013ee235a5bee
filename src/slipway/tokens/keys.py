"""The manager's signing key: created on first start in DATA_DIR, public half published."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes
    public_pem: str


def algorithm_for(key: object) -> str:
    """The JWT algorithm of a (public or private) key: the key decides, never a token's
    header, so a token cannot pick a weaker check."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise ValueError(f"unsupported elliptic curve {key.curve.name}; use P-256")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    raise ValueError(f"unsupported signing key type {type(key).__name__}")


def _kid(public_pem: str) -> str:
    digest = hashlib.sha256(public_pem.encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def load_or_create(data_dir: Path) -> SigningKey:
    """Read DATA_DIR/keys/signing.pem, creating it (mode 0600) when absent."""
    key_dir = data_dir / "keys"
    path = key_dir / "signing.pem"
    if path.exists():
        private_pem = path.read_bytes()
        key = serialization.load_pem_private_key(private_pem, password=None)
    else:
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # P-256 (ES256): signing is several times cheaper than with RSA-2048, and every
        # attempt signs two tokens. A key of an earlier version (RSA) keeps working.
        key = ec.generate_private_key(ec.SECP256R1())
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
        os.replace(tmp, path)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return SigningKey(kid=_kid(public_pem), private_pem=private_pem, public_pem=public_pem)
