"""Quay's field encryption: Quay's own test vectors decrypt (data/test/test_encryption.py),
the key is read from DATABASE_SECRET_KEY as Quay reads it, and failures say why without
the value."""

from __future__ import annotations

import uuid

import pytest

from slipway.quay.encryption import DecryptionFailure, FieldEncrypter, v0_key

# Quay's data/test/test_encryption.py test_encryption_value
QUAY_VECTORS = [
    ("test1234", "v0$$iE+87Qefu/2i+5zC87nlUtOskypk8MUUDS/QZPs=", ""),
    ("test1234", "v0$$XTxqlz/Kw8s9WKw+GaSvXFEKgpO/a2cGNhvnozzkaUh4C+FgHqZqnA==", "hello world"),
    ("test1234", "v0$$9LadVsSvfAr9r1OvghSYcJqrJpv46t+U6NgLKrcFY6y2bQsASIN36g==", "hello world"),
    ("\1\2\3\4\5\6", "v0$$2wwWX8IhUYzuh4cyMgSXF3MEVDlEhrf0CNimTghlHgCuK6E4+bLJb1xJOKxsXMs=",
     "hello world, again"),
]
# the keys and values of Quay's round-trip test
KEYS = ["test1234", "thisisanothercoolsecretkeyhere",
        "107383705745765174750346070528443780244192102846031525796571939503548634055845"]
VALUES = ["", "hello world", "wassup?!", "IGZ2Y8KUN3EFWAZZXR3D7U4V5NXDVYZI5VGU6STPB6KM83PAB8WRGM32",
          "a" * 31, "a" * 32, "a" * 150, "😇"]


@pytest.mark.parametrize(("key", "encrypted", "plain"), QUAY_VECTORS)
def test_quays_test_vectors_decrypt(key: str, encrypted: str, plain: str) -> None:
    assert FieldEncrypter(key).decrypt(encrypted) == plain


@pytest.mark.parametrize("version", ["v0", "v1"])
@pytest.mark.parametrize("key", KEYS)
def test_values_round_trip_and_another_key_cannot_read_them(version: str, key: str) -> None:
    encrypter = FieldEncrypter(key)
    for value in VALUES:
        encrypted = encrypter.encrypt(value, version)
        assert encrypted.startswith(f"{version}$$")
        assert not value or value not in encrypted
        assert encrypter.decrypt(encrypted) == value
        with pytest.raises(DecryptionFailure) as info:
            FieldEncrypter("some other key").decrypt(encrypted)
        assert "DATABASE_SECRET_KEY" in str(info.value)
        assert encrypted not in str(info.value)


def test_the_key_is_read_as_quay_reads_it() -> None:
    # a decimal number: its bytes (0xff), cycled to 32
    assert v0_key("255") == b"\xff" * 32
    # a number whose hex form has an odd number of digits is taken as characters
    assert v0_key("291") == (b"291" * 11)[:32]
    # a UUID: its 16 bytes, twice
    key = uuid.uuid4()
    assert v0_key(str(key)) == key.bytes * 2
    # anything else: one byte per character
    assert v0_key("secret") == (b"secret" * 6)[:32]


def test_text_that_is_not_an_encrypted_field_is_refused() -> None:
    encrypter = FieldEncrypter("test1234")
    with pytest.raises(DecryptionFailure, match="not encrypted the way Quay"):
        encrypter.decrypt("plain-token-code")
    with pytest.raises(DecryptionFailure, match="unknown encryption version 'v9'"):
        encrypter.decrypt("v9$$AAAA")
