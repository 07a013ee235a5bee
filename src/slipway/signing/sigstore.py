"""Sigstore image signatures, as containers/image verifies them (`sigstoreSigned`) and cosign
writes them: a "simple signing" payload naming the image's reference and manifest digest,
signed with ECDSA P-256 over SHA-256, kept as a layer of the `sha256-<hex>.sig` manifest
beside the image (docs/signing.md).

Made here rather than by `podman push --sign-by-sigstore-private-key`: Debian's podman
and skopeo are built with sigstore signing disabled ("Debian-local change: sigstore
disabled"); they still verify.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from slipway.signing.keys import SigningKey

PAYLOAD_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"


@dataclass(frozen=True)
class ImageSignature:
    payload: bytes
    signature: str  # base64 of the DER ECDSA signature, as the annotation holds it


def attachment_tag(digest: str, suffix: str) -> str:
    """cosign's tag for what is attached to `digest`: sha256-<hex>.sig / .att / .sbom."""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}-{hex_}.{suffix}"


def payload(reference: str, digest: str, creator: str = "slipway") -> bytes:
    """The simple-signing payload for the image `digest` pushed as `reference` (a name
    without tag or digest: what `matchRepository` compares)."""
    return json.dumps({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": {"creator": creator},
    }, separators=(",", ":")).encode()


def sign_image(key: SigningKey, reference: str, digest: str) -> ImageSignature:
    data = payload(reference, digest)
    signature = key.private.sign(data, ec.ECDSA(hashes.SHA256()))
    return ImageSignature(data, base64.b64encode(signature).decode())


def verify_payload(public: ec.EllipticCurvePublicKey, data: bytes, signature_b64: str,
                   digest: str) -> bool:
    """Whether `signature_b64` is the key's signature of `data` and `data` names
    `digest`."""
    try:
        public.verify(base64.b64decode(signature_b64), data, ec.ECDSA(hashes.SHA256()))
        named = json.loads(data)["critical"]["image"]["docker-manifest-digest"]
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return bool(named == digest)
