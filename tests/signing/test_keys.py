"""The sigstore key format (signing/keys.py): a key `slipway signing keygen` writes is read
back with its passphrase only; a wrong passphrase or another PEM is a clear error that
quotes neither the key nor the passphrase; `slipway serve` with such a key stops at start
naming the setting."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from support.serve_process import ServeProcess

from slipway.config.models import AppConfig
from slipway.signing import keys
from slipway.signing.keyring import pack_signing

SLIPWAY = Path(sys.executable).parent / "slipway"
PASSPHRASE = "a passphrase not shown"


def test_keygen_writes_a_key_pair_that_signs_and_verifies(tmp_path: Path) -> None:
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    made = subprocess.run([str(SLIPWAY), "signing", "keygen", "--out", str(tmp_path / "k"),
                           "--passphrase-file", str(tmp_path / "pass")],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    private = (tmp_path / "k" / "cosign.key").read_text()
    assert (tmp_path / "k" / "cosign.key").stat().st_mode & 0o077 == 0
    assert private.startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    # cosign's body: scrypt parameters go-securesystemslib accepts, nacl/secretbox
    body = json.loads(base64.b64decode("".join(private.strip().splitlines()[1:-1])))
    assert body["kdf"]["name"] == "scrypt" and body["kdf"]["params"] == {
        "N": 32768, "r": 8, "p": 1}
    assert body["cipher"]["name"] == "nacl/secretbox"
    key = keys.load(private, PASSPHRASE)
    public = keys.load_public((tmp_path / "k" / "cosign.pub").read_text())
    signature = key.private.sign(b"data", ec.ECDSA(hashes.SHA256()))
    public.verify(signature, b"data", ec.ECDSA(hashes.SHA256()))
    again = subprocess.run([str(SLIPWAY), "signing", "keygen", "--out", str(tmp_path / "k"),
                            "--passphrase-file", str(tmp_path / "pass")],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "--force" in again.stderr
    assert (tmp_path / "k" / "cosign.key").read_text() == private  # left as it was


def test_a_wrong_passphrase_or_another_pem_is_a_clear_error() -> None:
    key = keys.generate(PASSPHRASE)
    with pytest.raises(keys.SigningKeyError) as wrong:
        keys.load(key.encrypted_pem, "not it", "SIGNING.KEY_FILE /k")
    assert "passphrase does not decrypt it" in str(wrong.value)
    assert PASSPHRASE not in str(wrong.value) and "not it" not in str(wrong.value)
    other = "-----BEGIN PUBLIC KEY-----\n" + key.public_pem.splitlines()[1] + \
        "\n-----END PUBLIC KEY-----\n"
    with pytest.raises(keys.SigningKeyError, match="'PUBLIC KEY' PEM block, not a sigstore"):
        keys.load(other, PASSPHRASE)
    with pytest.raises(keys.SigningKeyError, match="not a PEM file"):
        keys.load("hello", PASSPHRASE)


async def test_serve_stops_at_start_on_a_key_it_cannot_decrypt(tmp_path: Path) -> None:
    key = keys.generate(PASSPHRASE)
    (tmp_path / "cosign.key").write_text(key.encrypted_pem)
    serve = ServeProcess(tmp_path, {"SIGNING": {"KEY_FILE": str(tmp_path / "cosign.key"),
                                                "PASSPHRASE": "wrong-passphrase-x"}})
    serve.start()
    code = await serve.exit_code()
    output = serve.output()
    assert code == 1
    assert f"SIGNING.KEY_FILE {tmp_path / 'cosign.key'}: the passphrase does not decrypt" \
        in output
    assert "wrong-passphrase-x" not in output
    assert key.encrypted_pem.splitlines()[1] not in output


def test_a_worker_is_handed_the_key_not_the_operators_passphrase(tmp_path: Path) -> None:
    """What the BuildPack carries opens the same key, with scrypt's least work (the
    worker spends no CPU of the build on it), under a passphrase of its own."""
    key = keys.generate(PASSPHRASE)
    (tmp_path / "cosign.key").write_text(key.encrypted_pem)
    config = AppConfig.model_validate({"SIGNING": {
        "KEY_FILE": str(tmp_path / "cosign.key"), "PASSPHRASE": PASSPHRASE}})
    handed = pack_signing(config, "b-1", "acme", {})
    again = pack_signing(config, "b-2", "acme", {})
    assert handed is not None and again is not None
    assert handed.passphrase != PASSPHRASE and PASSPHRASE not in repr(handed)
    assert keys.load(handed.private_key, handed.passphrase).key_id == key.key_id
    with pytest.raises(keys.SigningKeyError, match="passphrase does not decrypt"):
        keys.load(handed.private_key, PASSPHRASE)
    body = json.loads(base64.b64decode("".join(handed.private_key.strip().splitlines()[1:-1])))
    assert body["kdf"]["params"]["N"] == keys.TRANSIT_SCRYPT_N
    # sealed once per manager, not per build
    assert (again.private_key, again.passphrase) == (handed.private_key, handed.passphrase)
