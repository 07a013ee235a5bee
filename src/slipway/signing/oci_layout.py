"""A one-manifest OCI artifact in memory, as cosign writes its attachments (signatures,
attestations): an empty image config whose "diff" is each layer, the layers, and an OCI
1.1 `subject` naming the image it is about. The worker pushes its blobs and manifest
through the registry's API (worker/registry_api.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Layer:
    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    manifest: bytes  # the manifest, byte for byte as pushed (its digest is the sha256 of it)
    blobs: dict[str, bytes]  # digest -> content: the config and each layer

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def artifact(layers: Sequence[Layer], annotations: Mapping[str, str] | None = None,
             subject: Mapping[str, object] | None = None) -> Artifact:
    """The manifest and blobs of `layers`. `subject` (OCI 1.1) links it to the image it is
    about, for registries with the referrers API."""
    # the config cosign writes: an empty image whose one "diff" is each layer
    config = json.dumps({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(lyr.data) for lyr in layers]},
    }, separators=(",", ":")).encode()
    blobs = {digest_of(config): config}
    blobs.update((digest_of(lyr.data), lyr.data) for lyr in layers)
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": digest_of(config)},
        "layers": [
            {"mediaType": lyr.media_type, "size": len(lyr.data), "digest": digest_of(lyr.data),
             **({"annotations": dict(lyr.annotations)} if lyr.annotations else {})}
            for lyr in layers
        ],
    }
    if subject:
        manifest["subject"] = dict(subject)
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Artifact(json.dumps(manifest, separators=(",", ":")).encode(), blobs)
