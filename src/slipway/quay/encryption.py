"""Quay's encrypted database fields (data/encryption.py, util/security/secret.py):
`accesstoken.token_code`, `repositorybuildtrigger.secure_private_key`, ... hold
`<version>$$<base64(nonce || ciphertext || tag)>`, keyed by DATABASE_SECRET_KEY.

- v0: AES-CCM, 13-byte nonce, 16-byte tag; the key is DATABASE_SECRET_KEY read as bytes
  (below) and repeated or cut to 32 bytes.
- v1 (newer Quay): AES-GCM, 12-byte nonce; the key is HKDF-SHA256 of the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEPARATOR = "$$"
CCM_NONCE_BYTES = 13
GCM_NONCE_BYTES = 12
KEY_BYTES = 32
_HKDF_SALT = b"quay-field-encryption-v1"
_HKDF_INFO = b"aes-256-gcm"


class DecryptionFailure(Exception):
    """A field could not be decrypted (wrong DATABASE_SECRET_KEY, or not Quay's format).
    The message never holds the field's value."""


def secret_key_bytes(config_secret_key: str) -> bytes:
    """DATABASE_SECRET_KEY as Quay reads it: a decimal integer's bytes (when its hex form
    has an even number of digits), else a UUID's 16 bytes, else each character as a byte."""
    try:
        return bytes.fromhex(f"{int(config_secret_key):02x}")
    except ValueError:
        pass
    try:
        return uuid.UUID(config_secret_key).bytes
    except ValueError:
        pass
    try:
        return bytes(ord(char) for char in config_secret_key)
    except ValueError:
        raise DecryptionFailure(
            "DATABASE_SECRET_KEY has characters Quay cannot use as a key (beyond U+00FF)"
        ) from None


def v0_key(config_secret_key: str) -> bytes:
    """The AES key of v0 fields: the key's bytes cycled to 32."""
    raw = secret_key_bytes(config_secret_key)
    if not raw:
        raise DecryptionFailure("DATABASE_SECRET_KEY is empty")
    return bytes(itertools.islice(itertools.cycle(raw), KEY_BYTES))


def v1_key(config_secret_key: str) -> bytes:
    raw = secret_key_bytes(config_secret_key)
    if not raw:
        raise DecryptionFailure("DATABASE_SECRET_KEY is empty")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=_HKDF_INFO)
    return hkdf.derive(raw)


class FieldEncrypter:
    """Decrypts (and, for tests and fixtures, encrypts) Quay's fields with one key."""

    def __init__(self, config_secret_key: str) -> None:
        self._v0 = v0_key(config_secret_key)
        self._v1 = v1_key(config_secret_key)

    def decrypt(self, value: str) -> str:
        version, separator, data = value.partition(SEPARATOR)
        if not separator:
            raise DecryptionFailure("the field is not encrypted the way Quay encrypts fields")
        if version == "v0":
            cipher: AESCCM | AESGCM = AESCCM(self._v0)
            nonce_bytes = CCM_NONCE_BYTES
        elif version == "v1":
            cipher, nonce_bytes = AESGCM(self._v1), GCM_NONCE_BYTES
        else:
            raise DecryptionFailure(f"unknown encryption version {version[:8]!r}")
        try:
            decoded = base64.b64decode(data)
            nonce, sealed = decoded[:nonce_bytes], decoded[nonce_bytes:]
            return cipher.decrypt(nonce, sealed, None).decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error, UnicodeDecodeError):
            raise DecryptionFailure(
                "the field cannot be decrypted with this DATABASE_SECRET_KEY; it must be the "
                "one in Quay's config.yaml"
            ) from None

    def encrypt(self, value: str, version: str = "v0") -> str:
        if version == "v0":
            nonce = os.urandom(CCM_NONCE_BYTES)
            sealed = AESCCM(self._v0).encrypt(nonce, value.encode("utf-8"), None)
        elif version == "v1":
            nonce = os.urandom(GCM_NONCE_BYTES)
            sealed = AESGCM(self._v1).encrypt(nonce, value.encode("utf-8"), None)
        else:
            raise ValueError(f"unknown encryption version {version!r}; Quay knows v0 and v1")
        return f"{version}{SEPARATOR}{base64.b64encode(nonce + sealed).decode('ascii')}"
