"""buildah: `buildah bud --isolation chroot`, push with --digestfile."""

from __future__ import annotations

from slipway.worker.runtimes.containers import ContainersRuntime


class BuildahRuntime(ContainersRuntime):
    name = "buildah"
    build_verb = ("bud",)
    images_query = ("images", "--all", "--json", "--no-trunc")
    containers_query = ("containers", "--quiet", "--notruncate")
    storage_query = ("info", "--format", "{{.store.GraphRoot}}|{{.store.GraphDriverName}}")
    force_rm = ()
    platform_query = ("inspect", "--type", "image", "--format",
                      "{{.OCIv1.OS}}/{{.OCIv1.Architecture}}/{{.OCIv1.Variant}}")

    digest_query = ("inspect", "--type", "image", "--format", "{{.FromImageDigest}}")
    id_query = ("inspect", "--type", "image", "--format", "{{.FromImageID}}")

    async def image_exists(self, image: str) -> bool:
        argv = [*self.base(), "inspect", "--type", "image", "--format", "{{.FromImageID}}", image]
        result = await self.run(argv, stream=False)
        return result.returncode == 0
