"""The keys of SIGNING, decrypted once: the manager's, and each namespace's own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slipway.config.models import AppConfig
from slipway.config.signing import SigningConfig, SigningKeyConfig
from slipway.manager.build_pack import PackSigning
from slipway.secret import reveal
from slipway.signing.keys import SigningKey, SigningKeyError, for_transit, load


class SigningUnavailable(Exception):
    """SIGNING names a key that cannot be read; the message names the setting."""


@dataclass(frozen=True)
class Keyring:
    default: SigningKey
    namespaces: dict[str, SigningKey] = field(default_factory=dict)
    # each key as workers are handed it (keys.for_transit), by key id: sealed once here
    transit: dict[str, SigningKey] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for key in (self.default, *self.namespaces.values()):
            if key.key_id not in self.transit:
                self.transit[key.key_id] = for_transit(key)

    def for_namespace(self, namespace: str) -> SigningKey:
        return self.namespaces.get(namespace, self.default)

    def for_worker(self, namespace: str) -> SigningKey:
        key = self.for_namespace(namespace)
        return self.transit[key.key_id]


def _load_one(config: SigningKeyConfig, where: str) -> SigningKey:
    try:
        pem = config.KEY_FILE.read_text()
    except OSError as exc:
        raise SigningUnavailable(f"{where}.KEY_FILE {config.KEY_FILE}: cannot be read "
                                 f"({exc.strerror}); make a key pair with `slipway signing "
                                 "keygen`") from None
    if config.PASSPHRASE_FILE is not None:
        try:
            passphrase = config.PASSPHRASE_FILE.read_text().rstrip("\r\n")
        except OSError as exc:
            raise SigningUnavailable(f"{where}.PASSPHRASE_FILE {config.PASSPHRASE_FILE}: "
                                     f"cannot be read ({exc.strerror})") from None
    else:
        passphrase = reveal(config.PASSPHRASE) or ""
    try:
        return load(pem, passphrase, f"{where}.KEY_FILE {config.KEY_FILE}")
    except SigningKeyError as exc:
        raise SigningUnavailable(str(exc)) from None


def load_keyring(config: SigningConfig) -> Keyring:
    """Every key of SIGNING decrypted (scrypt: a fraction of a second each); raises
    SigningUnavailable for the first that cannot be."""
    return Keyring(
        _load_one(config, "SIGNING"),
        {ns: _load_one(c, f"SIGNING.NAMESPACES[{ns!r}]") for ns, c in config.NAMESPACES.items()},
    )


_loaded: dict[int, tuple[SigningConfig, Keyring]] = {}


def keyring_of(config: SigningConfig) -> Keyring:
    """load_keyring(config), once per config object (the manager's and the API's)."""
    held = _loaded.get(id(config))
    if held is None or held[0] is not config:
        held = _loaded[id(config)] = (config, load_keyring(config))
    return held[1]


def builder_id(config: AppConfig) -> str:
    signing = config.SIGNING
    if signing is not None and signing.BUILDER_ID:
        return signing.BUILDER_ID
    return f"https://{config.SERVER_HOSTNAME or 'localhost'}/slipway"


def pack_signing(config: AppConfig, build_id: str, namespace: str,
                 options: dict[str, Any]) -> PackSigning | None:
    """What a build's worker is handed to sign with; None when SIGNING is off."""
    signing = config.SIGNING
    if signing is None:
        return None
    key = keyring_of(signing).for_worker(namespace)
    return PackSigning(
        private_key=key.encrypted_pem,
        passphrase=key.passphrase,
        required=signing.REQUIRED,
        # the executor's SBOM: false reaches its workers as SBOM=false (worker_env.py)
        sbom=signing.SBOM and options.get("sbom") is not False,
        build_arg_values=signing.BUILD_ARG_VALUES,
        builder_id=builder_id(config),
        build_id=build_id,
    )
