"""Putting things beside a pushed image in its repository, as cosign does: a one-manifest
OCI layout pushed with skopeo under the `sha256-<hex>.<suffix>` tag (and with an OCI 1.1
`subject`, so a registry with the referrers API lists it as the image's referrer too)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slipway.signing.oci_layout import OCI_MANIFEST, Layer, write_layout
from slipway.signing.sigstore import attachment_tag
from slipway.worker.errors import BuildError
from slipway.worker.runtimes.base import Credentials, auth_json, write_private_file


class Attacher:
    """skopeo calls against the build's repository `name` (registry/repository), with the
    push's credentials, TLS setting and registries.conf."""

    def __init__(self, workdir: Path, name: str, registry: str, creds: Credentials | None,
                 insecure: bool, env: Mapping[str, str]) -> None:
        self.workdir = workdir / "attach"
        self.name = name
        self.insecure = insecure
        self.env = dict(env)
        self._auth: list[str] = []
        if creds is not None:
            path = write_private_file(self.workdir / "auth.json", auth_json({registry: creds}))
            self._auth = ["--authfile", str(path)]
        self._count = 0

    async def _skopeo(self, *args: str, what: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                "skopeo", *args, env=self.env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError:
            raise BuildError(f"{what}: skopeo is not installed on this worker") from None
        out, err = await proc.communicate()
        if proc.returncode != 0:
            message = err.decode("utf-8", "replace").strip().splitlines()
            raise BuildError(f"{what} failed: {message[-1] if message else proc.returncode}")
        return out.decode("utf-8", "replace")

    async def skopeo_raw(self, *args: str) -> bytes:
        """`skopeo inspect --raw` of a reference, byte for byte."""
        proc = await asyncio.create_subprocess_exec(
            "skopeo", "inspect", "--raw", *args, *self._auth, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise BuildError("skopeo inspect failed")
        return out

    async def raw_manifest(self, digest: str) -> tuple[int, dict[str, Any]]:
        """The size and content of the manifest `digest` in the repository."""
        tls = [f"--tls-verify={'false' if self.insecure else 'true'}"]
        text = await self._skopeo("inspect", "--raw", *tls, *self._auth,
                                  f"docker://{self.name}@{digest}",
                                  what=f"reading the manifest {digest}")
        manifest: dict[str, Any] = json.loads(text)
        return len(text.encode()), manifest

    async def attach(self, digest: str, suffix: str, layers: Sequence[Layer],
                     subject_size: int = 0, subject_type: str = "") -> str:
        """Push `layers` as the `suffix` attachment of `digest`; the tag it went to."""
        self._count += 1
        layout = self.workdir / f"layout-{self._count}"
        subject = ({"mediaType": subject_type, "digest": digest, "size": subject_size}
                   if subject_size and subject_type else None)
        await asyncio.to_thread(write_layout, layout, layers, None, subject)
        tag = attachment_tag(digest, suffix)
        tls = [f"--dest-tls-verify={'false' if self.insecure else 'true'}"]
        try:
            await self._skopeo(
                "copy", "--quiet", "--preserve-digests", *tls, *self._auth,
                f"oci:{layout}", f"docker://{self.name}:{tag}",
                what=f"pushing {tag}")
        finally:
            await asyncio.to_thread(shutil.rmtree, layout, True)
        return tag


def manifest_media_type(manifest: Mapping[str, Any]) -> str:
    media = manifest.get("mediaType")
    return str(media) if media else OCI_MANIFEST
