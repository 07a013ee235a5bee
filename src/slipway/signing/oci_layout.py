"""A one-manifest OCI image layout on disk: what the worker pushes with `skopeo copy
--preserve-digests oci:DIR docker://REF` for attachments (signatures, attestations). The
container tools push it byte for byte, auth, TLS and registries.conf included."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Layer:
    media_type: str
    data: bytes
    annotations: Mapping[str, str] = field(default_factory=dict)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(directory: Path, layers: Sequence[Layer],
                 annotations: Mapping[str, str] | None = None,
                 subject: Mapping[str, object] | None = None) -> str:
    """Write the layout; return its manifest's digest. `subject` (OCI 1.1) links it to the
    image it is about, for registries with the referrers API."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes) -> str:
        digest = _digest(data)
        (blobs / digest.removeprefix("sha256:")).write_bytes(data)
        return digest

    # the config cosign writes: an empty image whose one "diff" is each layer
    config = json.dumps({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [_digest(lyr.data) for lyr in layers]},
    }, separators=(",", ":")).encode()
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": put(config)},
        "layers": [
            {"mediaType": lyr.media_type, "size": len(lyr.data), "digest": put(lyr.data),
             **({"annotations": dict(lyr.annotations)} if lyr.annotations else {})}
            for lyr in layers
        ],
    }
    if subject:
        manifest["subject"] = dict(subject)
    if annotations:
        manifest["annotations"] = dict(annotations)
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    digest = put(raw)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "size": len(raw), "digest": digest}],
    }))
    return digest
