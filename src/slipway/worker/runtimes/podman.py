"""podman: `podman build --isolation chroot`, push with --digestfile."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from slipway.worker.runtimes.containers import ContainersRuntime


class PodmanRuntime(ContainersRuntime):
    name = "podman"
    build_verb = ("build",)

    async def image_exists(self, image: str) -> bool:
        result = await self.run([*self.base(), "image", "exists", image], stream=False)
        return result.returncode == 0

    async def remove_names(self, images: Sequence[str]) -> None:
        for image in images:
            with contextlib.suppress(Exception):
                await self.run([*self.base(), "untag", image, image], stream=False)
