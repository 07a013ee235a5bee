"""podman: `podman build --isolation chroot`, push with --digestfile."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from slipway.worker.runtimes.containers import ContainersRuntime
from slipway.worker.runtimes.leftovers import parse_images


class PodmanRuntime(ContainersRuntime):
    name = "podman"
    build_verb = ("build",)

    async def image_exists(self, image: str) -> bool:
        result = await self.run([*self.base(), "image", "exists", image], stream=False)
        return result.returncode == 0

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
