"""SIGNING: the key every build is signed with, and what is attached beside the image
(docs/signing.md). A slipway addition."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from slipway.config_fields import field, problem

_MODEL_CONFIG = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class SigningKeyConfig(BaseModel):
    """One key: its encrypted PEM file (`slipway signing keygen` makes one; a Kubernetes
    Secret is mounted as files) and its passphrase."""

    model_config = _MODEL_CONFIG

    KEY_FILE: Path = field(
        ..., example="/etc/slipway/signing/cosign.key",
        description="the sigstore private key (encrypted PEM, cosign's format)")
    PASSPHRASE: SecretStr | None = field(
        None, example="secret", description="the key's passphrase (or PASSPHRASE_FILE)")
    PASSPHRASE_FILE: Path | None = field(
        None, example="/etc/slipway/signing/passphrase",
        description="a file holding the key's passphrase (a mounted Secret's key)")

    @model_validator(mode="after")
    def _one_passphrase(self) -> SigningKeyConfig:
        if (self.PASSPHRASE is None) == (self.PASSPHRASE_FILE is None):
            raise problem("give the key's passphrase as PASSPHRASE or PASSPHRASE_FILE "
                          "(exactly one)", key="PASSPHRASE")
        return self


class SigningConfig(SigningKeyConfig):
    """SIGNING: the manager's key, and each namespace's own key where it has one."""

    REQUIRED: bool = field(
        True, example=True,
        description="true: a build whose image cannot be signed and attested fails; false: "
        "best effort (a warning in the build's log)")
    SBOM: bool = field(
        True, example=True,
        description="attach an SBOM (CycloneDX) of each built image; a build's `sbom: false` "
        "or an executor's SBOM: false turns it off")
    BUILD_ARG_VALUES: bool = field(
        False, example=False,
        description="true: the provenance records build argument values, not only their "
        "names (a build arg often carries a token)")
    BUILDER_ID: str = field(
        "", example="https://builds.example.com/slipway",
        description="the provenance's builder.id; default https://SERVER_HOSTNAME/slipway")
    NAMESPACES: dict[str, SigningKeyConfig] = field(
        default_factory=dict,
        example={"team": {"KEY_FILE": "/etc/slipway/team.key",
                          "PASSPHRASE_FILE": "/etc/slipway/team.pass"}},
        description="a namespace's own key, {namespace: {KEY_FILE, PASSPHRASE | "
        "PASSPHRASE_FILE}}, in place of the manager's")
