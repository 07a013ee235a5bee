"""podman: `podman build --isolation chroot`, push with --digestfile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slipway.signing.rootfs import read_tar, read_tree
from slipway.worker.errors import BuildError
from slipway.worker.runtimes.containers import ContainersRuntime
from slipway.worker.runtimes.leftovers import parse_images


class PodmanRuntime(ContainersRuntime):
    name = "podman"
    build_verb = ("build",)
    _mounted: list[str]  # the IDs of the images mounted_files mounted (unmount_images)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mounted = []

    async def image_exists(self, image: str) -> bool:
        result = await self.run([*self.base(), "image", "exists", image], stream=False)
        return result.returncode == 0

    async def export_files(self, image: str) -> dict[str, bytes]:
        """The wanted files (signing/rootfs.py) of the image: read in place from `podman
        image mount` (a root worker: only those files are read; unmounted by the
        clean-up, not while the push runs), else from the stream of `podman export` of a
        container of it (nothing runs), which reads every byte."""
        with contextlib.suppress(BuildError):
            return (await self.mounted_files(image))[1]
        created = await self._capture("create", "--pull=never", image, "true")
        if not created:
            raise BuildError(f"{self.name} could not create a container of {image} to "
                             "read its packages")
        container = created.strip().splitlines()[-1]
        try:
            return await asyncio.to_thread(self._export, container)
        finally:
            await self.run([*self.base(), "rm", "--force", container], stream=False)

    async def mounted_files(self, reference: str) -> tuple[str, dict[str, bytes]]:
        said = await self._capture("image", "mount", "--format", "json", reference)
        try:
            mounted = json.loads(said or "[]")[0]
            image_id, root = str(mounted["id"]), Path(mounted["mountpoint"])
        except (ValueError, LookupError, TypeError):
            raise BuildError(f"{self.name} could not mount {reference}") from None
        self._mounted.append(image_id)  # by ID: the name may move to another image
        return image_id, await asyncio.to_thread(read_tree, root)

    async def unmount_images(self) -> None:
        mounted, self._mounted = self._mounted, []
        if mounted:
            with contextlib.suppress(Exception):
                await self.run([*self.base(), "image", "unmount", *mounted], stream=False)

    def _export(self, container: str) -> dict[str, bytes]:
        proc = subprocess.Popen([*self.base(), "export", container], env=self.child_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        try:
            return read_tar(proc.stdout)
        finally:
            proc.stdout.close()
            if proc.wait() != 0:
                raise BuildError(f"{self.name} export of the built image failed")

    async def untag(self, image_id: str, names: Sequence[str]) -> None:
        await self.run([*self.base(), "untag", image_id, *names], stream=False)

    async def remove_names(self, images: Sequence[str]) -> None:
        """One `untag` per image, whatever the number of names (the layer cache keeps
        the images)."""
        with contextlib.suppress(Exception):
            listing = await self._listing(*self.images_query)
            if listing is None:
                return
            wanted = set(images)
            for image in parse_images(listing):
                if names := [n for n in image.names if n in wanted]:
                    await self.untag(image.id, names)
