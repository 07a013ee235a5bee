"""Check an image in its registry against a public key, as `slipway verify` does: its
sigstore signature (the `sha256-<hex>.sig` attachment of its manifest digest, the check
containers/image's `sigstoreSigned` makes) and its provenance (the `.att` attachment's
DSSE envelopes, whose subject must be that digest). The registry is read with skopeo, so
auth files, registries.conf and TLS settings are the container tools' own."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from slipway.signing import dsse, provenance, sigstore


class VerifyError(Exception):
    """The check could not be made (the registry cannot be read...)."""


@dataclass
class Verdict:
    image: str
    digest: str = ""
    signed: bool = False
    provenance: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signed and bool(self.provenance) and not self.problems


def _skopeo(*args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["skopeo", *args], capture_output=True, timeout=300)
    except FileNotFoundError:
        raise VerifyError("skopeo is not installed (it reads the registry)") from None


def _tls(insecure: bool) -> list[str]:
    return ["--tls-verify=false"] if insecure else []


def repository_of(image: str) -> str:
    """`registry/path` of `registry/path[:tag][@digest]`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if len(last) == 2 and ":" in last[1]:
        name = name.rsplit(":", 1)[0]
    return name


def manifest_digest(image: str, insecure: bool) -> str:
    result = _skopeo("inspect", "--raw", *_tls(insecure), f"docker://{image}")
    if result.returncode != 0:
        raise VerifyError(f"cannot read {image}: {result.stderr.decode().strip()[-500:]}")
    return "sha256:" + hashlib.sha256(result.stdout).hexdigest()


def _attachment(repository: str, digest: str, suffix: str, insecure: bool,
                into: Path) -> list[tuple[dict[str, Any], bytes]] | None:
    """The layers (descriptor, content) of `digest`'s `suffix` attachment; None when it
    has none."""
    tag = sigstore.attachment_tag(digest, suffix)
    src_tls = ["--src-tls-verify=false"] if insecure else []
    result = _skopeo("copy", "--quiet", *src_tls, f"docker://{repository}:{tag}",
                     f"dir:{into}")
    if result.returncode != 0:
        error = result.stderr.decode()
        if "manifest unknown" in error or "not found" in error.lower():
            return None
        raise VerifyError(f"cannot read {repository}:{tag}: {error.strip()[-500:]}")
    manifest = json.loads((into / "manifest.json").read_text())
    layers = []
    for layer in manifest.get("layers", []):
        blob = into / layer["digest"].removeprefix("sha256:")
        layers.append((layer, blob.read_bytes()))
    return layers


def verify_image(image: str, public: ec.EllipticCurvePublicKey, *,
                 insecure: bool = False) -> Verdict:
    repository = repository_of(image)
    verdict = Verdict(image)
    verdict.digest = digest = manifest_digest(image, insecure)
    with tempfile.TemporaryDirectory(prefix="slipway-verify-") as tmp:
        sig_layers = _attachment(repository, digest, "sig", insecure, Path(tmp) / "sig")
        att_layers = _attachment(repository, digest, "att", insecure, Path(tmp) / "att")
    if not sig_layers:
        verdict.problems.append(f"no signature: {repository} has no "
                                f"{sigstore.attachment_tag(digest, 'sig')}")
    for layer, content in sig_layers or []:
        annotation = (layer.get("annotations") or {}).get(sigstore.SIGNATURE_ANNOTATION, "")
        if layer.get("mediaType") != sigstore.PAYLOAD_MEDIA_TYPE or not annotation:
            continue
        if not sigstore.verify_payload(public, content, annotation, digest):
            continue
        identity = json.loads(content)["critical"]["identity"]["docker-reference"]
        if identity == repository:  # matchRepository
            verdict.signed = True
            break
    if sig_layers and not verdict.signed:
        verdict.problems.append(f"no signature of {digest} for {repository} verifies with "
                                "this key")
    for _, content in att_layers or []:
        try:
            statement = dsse.verify(public, json.loads(content))
        except ValueError:
            continue
        subjects = {f"sha256:{s.get('digest', {}).get('sha256', '')}"
                    for s in statement.get("subject", [])}
        if (statement.get("predicateType") == provenance.PREDICATE_TYPE
                and digest in subjects):
            verdict.provenance.append(statement)
    if not verdict.provenance:
        verdict.problems.append(f"no provenance of {digest} signed by this key")
    return verdict


def decode_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return statement
