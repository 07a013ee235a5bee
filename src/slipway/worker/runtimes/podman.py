"""podman: `podman build --isolation chroot`, push with --digestfile."""

from __future__ import annotations

from slipway.worker.runtimes.containers import ContainersRuntime


class PodmanRuntime(ContainersRuntime):
    name = "podman"
    build_verb = ("build",)

    async def image_exists(self, image: str) -> bool:
        result = await self.run([*self.base(), "image", "exists", image], stream=False)
        return result.returncode == 0
