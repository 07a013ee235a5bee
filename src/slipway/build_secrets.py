"""Build secrets (`RUN --mount=type=secret,id=...`): their rules, which ones a build gets,
and the key they are encrypted with at rest (docs/configuration.md, docs/api.md).

A build's secrets are the repository's configured ones (BUILD_SECRETS, by namespace and
by `namespace/repository`) with the ones given at submit time over them. They are stored
encrypted (store/secrets.py) until the build ends, travel to the build's worker in its
BuildPack, and are masked in everything the worker reports.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from slipway.domain.names import SECRET_ID
from slipway.secret import reveal

if TYPE_CHECKING:  # (the CLI checks `--secret` flags with this module, without pydantic)
    from pydantic import SecretStr

MAX_SECRETS = 32
MAX_VALUE_BYTES = 64 * 1024
# the worker masks a secret in its log only from this length on (shorter text would be
# masked wherever it appears); a shorter secret is refused rather than shown
MIN_VALUE_CHARS = 4
KEY_FILE = Path("keys") / "build-secrets.key"


class InvalidSecret(ValueError):
    """A secret id or value breaks a rule; the message says which and how to fix it."""


def check_id(secret_id: str) -> None:
    if not SECRET_ID.fullmatch(secret_id):
        shown = secret_id if len(secret_id) <= 64 else secret_id[:64] + "..."
        raise InvalidSecret(
            f"secret id {shown!r} is not valid: 1-128 letters, digits, '_', '.' or '-' "
            "(the id the Dockerfile names in RUN --mount=type=secret,id=...)"
        )


def check_value(secret_id: str, value: str) -> None:
    """Never quotes the value: it is the secret."""
    if len(value) < MIN_VALUE_CHARS:
        raise InvalidSecret(
            f"secret {secret_id!r}: its value is shorter than {MIN_VALUE_CHARS} characters, "
            "too short to be masked in the build log; give the full secret"
        )
    size = len(value.encode())
    if size > MAX_VALUE_BYTES:
        raise InvalidSecret(
            f"secret {secret_id!r}: its value is {size} bytes, more than the "
            f"{MAX_VALUE_BYTES} a build secret may have; pass a larger file in the build "
            "context's place (e.g. fetch it in the RUN step with a token given as a secret)"
        )
    if "\x00" in value:
        raise InvalidSecret(f"secret {secret_id!r}: its value contains a NUL character")


def check_secrets(secrets: Mapping[str, str], where: str = "secrets") -> None:
    if len(secrets) > MAX_SECRETS:
        raise InvalidSecret(
            f"{where}: {len(secrets)} secrets given, at most {MAX_SECRETS} per build"
        )
    for secret_id, value in secrets.items():
        check_id(secret_id)
        check_value(secret_id, value)


ConfiguredSecrets = Mapping[str, Mapping[str, "SecretStr"]]


def secrets_for_build(
    configured: ConfiguredSecrets,
    namespace: str,
    repository: str,
    submitted: Mapping[str, str] | None,
) -> dict[str, str]:
    """The build's secrets: the namespace's configured ones, then the repository's, then
    the submitted ones, each over the ones before it (same id: the later one wins)."""
    merged: dict[str, str] = {}
    for scope in (namespace, f"{namespace}/{repository}"):
        for secret_id, value in (configured.get(scope) or {}).items():
            text = reveal(value)
            if text is not None:
                merged[secret_id] = text
    merged.update(submitted or {})
    check_secrets(merged)
    return merged


def load_or_create_key(configured: SecretStr | None, data_dir: Path) -> bytes:
    """The Fernet key: BUILD_SECRETS_KEY when set, else DATA_DIR/keys/build-secrets.key,
    created (mode 0600) on first use. Managers that share a database but not DATA_DIR
    need the same BUILD_SECRETS_KEY."""
    text = reveal(configured)
    if text is not None:
        return text.encode()
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    from slipway.private_files import write_private

    key = base64.urlsafe_b64encode(os.urandom(32))
    write_private(path, key.decode())
    return key
