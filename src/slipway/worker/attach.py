"""Putting things beside a pushed image in its repository, as cosign does: a one-manifest
OCI artifact under the `sha256-<hex>.<suffix>` tag, with an OCI 1.1 `subject` (so a
registry with the referrers API lists it as the image's referrer too), pushed through the
registry's API (worker/registry_api.py)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from slipway.signing.oci_layout import OCI_MANIFEST, Layer, artifact
from slipway.signing.sigstore import attachment_tag
from slipway.worker.registry_api import RegistryClient
from slipway.worker.tracing import span


class Attacher:
    """Reads and attachments of the build's repository, through `client`."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    async def raw_manifest(self, digest: str) -> tuple[int, dict[str, Any]]:
        """The size and content of the manifest `digest` in the repository."""
        raw = await self.client.manifest(digest)
        manifest: dict[str, Any] = json.loads(raw)
        return len(raw), manifest

    async def attach(self, digest: str, suffix: str, layers: Sequence[Layer],
                     subject: Awaitable[tuple[int, str]] | None = None) -> str:
        """Push `layers` as the `suffix` attachment of `digest`; the tag it went to.
        `subject`: the size and media type of `digest`'s manifest, for the OCI 1.1
        subject; the blobs go up while it is awaited (they do not depend on it)."""
        tag = attachment_tag(digest, suffix)
        with span("attach", **{"slipway.attachment": suffix}):
            self.client.upload(artifact(layers).blobs)
            described = None
            if subject is not None:
                size, media_type = await subject
                described = {"mediaType": media_type, "digest": digest, "size": size}
            await self.client.push(artifact(layers, None, described), tag)
        return tag


def manifest_media_type(manifest: Mapping[str, Any]) -> str:
    media = manifest.get("mediaType")
    return str(media) if media else OCI_MANIFEST
