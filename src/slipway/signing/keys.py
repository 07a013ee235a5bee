"""The signing key pair, in the format podman, skopeo and cosign read.

A sigstore private key is a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign also writes
`ENCRYPTED COSIGN PRIVATE KEY`) whose body is go-securesystemslib's `encrypted` JSON:
scrypt (N=32768, r=8, p=1) derives a key from the passphrase, NaCl secretbox seals the
PKCS#8 DER of an ECDSA P-256 key. podman 4.3 and skopeo 1.9 read it
(`--sign-by-sigstore-private-key`) but cannot make one (`skopeo generate-sigstore-key`
came with 1.10), hence `slipway signing keygen`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

PRIVATE_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
# go-securesystemslib's only accepted scrypt parameters besides its legacy ones
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
# the key as a worker is handed it (for_transit): its passphrase is 256 random bits, which
# no work factor strengthens; slipway's worker reads the parameters from the PEM
TRANSIT_SCRYPT_N = 2


class SigningKeyError(ValueError):
    """A key that cannot be used; the message says why and what to do (never the key)."""


@dataclass(frozen=True)
class SigningKey:
    """A decrypted private key, with the encrypted PEM and passphrase it came from (what
    the worker is handed: the container tools take those two)."""

    private: ec.EllipticCurvePrivateKey = field(repr=False)
    encrypted_pem: str = field(repr=False)
    passphrase: str = field(repr=False)

    @property
    def public_pem(self) -> str:
        return public_pem(self.private.public_key())

    @property
    def key_id(self) -> str:
        """sha256 of the public key's DER, hex: names the key in DSSE envelopes."""
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(der).hexdigest()


def public_pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _scrypt(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=256 * 1024 * 1024)


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, passphrase: str,
                        cost: int = SCRYPT_N) -> str:
    """The encrypted PEM of `key`; `cost`: scrypt's N."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt = os.urandom(32)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt(passphrase.encode(), salt, cost, SCRYPT_R, SCRYPT_P))
    sealed = box.encrypt(der, nonce).ciphertext

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    body = json.dumps({
        "kdf": {"name": "scrypt",
                "params": {"N": cost, "r": SCRYPT_R, "p": SCRYPT_P}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(sealed),
    }).encode()
    lines = [base64.b64encode(body[i:i + 48]).decode() for i in range(0, len(body), 48)]
    return "\n".join([f"-----BEGIN {PRIVATE_PEM_TYPES[0]}-----", *lines,
                      f"-----END {PRIVATE_PEM_TYPES[0]}-----", ""])


def for_transit(key: SigningKey) -> SigningKey:
    """The same key sealed again under a random passphrase with scrypt's least work: what
    a build's worker is handed. The worker then spends no CPU of the build on the
    operator's work factor (a fifth of a second), and never learns the operator's
    passphrase (which may open other things)."""
    passphrase = secrets.token_urlsafe(32)
    return SigningKey(key.private, encrypt_private_key(key.private, passphrase,
                                                       TRANSIT_SCRYPT_N), passphrase)


def generate(passphrase: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(private, encrypt_private_key(private, passphrase), passphrase)


def _pem_body(text: str, source: str) -> bytes:
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith(
            "-----END "):
        raise SigningKeyError(f"{source} is not a PEM file; make a key pair with "
                        "`slipway signing keygen`")
    kind = lines[0].removeprefix("-----BEGIN ").removesuffix("-----")
    if kind not in PRIVATE_PEM_TYPES:
        raise SigningKeyError(
            f"{source} holds a {kind!r} PEM block, not a sigstore private key "
            f"({PRIVATE_PEM_TYPES[0]!r}, as `slipway signing keygen` or "
            "`cosign generate-key-pair` write)")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise SigningKeyError(f"{source}: the PEM body is not base64") from None


def load(encrypted_pem: str, passphrase: str, source: str = "the signing key") -> SigningKey:
    """Decrypt a sigstore private key; SigningKeyError saying what is wrong (a wrong passphrase,
    another format), never quoting the key or the passphrase."""
    body = _pem_body(encrypted_pem, source)
    try:
        data = json.loads(body)
        kdf, cipher = data["kdf"], data["cipher"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise SigningKeyError(f"{source}: encrypted with {kdf['name']}/{cipher['name']}, "
                            "slipway reads scrypt with nacl/secretbox (cosign's format)")
        params = kdf["params"]
        secret = _scrypt(passphrase.encode(), base64.b64decode(kdf["salt"]),
                         int(params["N"]), int(params["r"]), int(params["p"]))
        der = nacl.secret.SecretBox(secret).decrypt(
            base64.b64decode(data["ciphertext"]), base64.b64decode(cipher["nonce"]))
    except nacl.exceptions.CryptoError:
        raise SigningKeyError(f"{source}: the passphrase does not decrypt it (a wrong "
                        "passphrase, or a damaged key file)") from None
    except (ValueError, KeyError, TypeError):
        raise SigningKeyError(f"{source}: the encrypted key's body is not cosign's JSON "
                        "(kdf, cipher, ciphertext)") from None
    private = serialization.load_der_private_key(der, password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise SigningKeyError(f"{source}: not an ECDSA key; slipway signs with ECDSA P-256")
    return SigningKey(private, encrypted_pem, passphrase)


def load_public(pem: str | bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningKeyError("the public key is not an ECDSA key")
    return key
