"""docker: the same steps through the docker CLI (DOCKER_HOST is the daemon).

Credentials go into a private config.json per step (`docker --config DIR`), so no
password is ever on a command line. Insecure registries are the daemon's setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from pathlib import Path

from slipway.domain.names import parse_image_ref
from slipway.worker.errors import BuildError
from slipway.worker.process import LineSink
from slipway.worker.runtimes.base import (
    BuildSpec,
    Credentials,
    Runtime,
    auth_json,
    build_options,
    write_private_file,
)

_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


class DockerRuntime(Runtime):
    name = "docker"

    def _config(self, label: str, auth: dict[str, Credentials]) -> list[str]:
        directory = self.workdir / "docker" / label
        write_private_file(directory / "config.json", auth_json(auth, docker_style=True))
        return ["docker", "--config", str(directory)]

    async def image_exists(self, image: str) -> bool:
        result = await self.run(["docker", "image", "inspect", image], stream=False)
        return result.returncode == 0

    async def pull(
        self, image: str, creds: Credentials | None, insecure: bool, platform: str = ""
    ) -> None:
        auth = {parse_image_ref(image).registry: creds} if creds else {}
        argv = [*self._config("pull", auth), "pull"]
        if platform:
            argv += ["--platform", platform]
        await self.checked([*argv, image], f"pulling {image}")

    async def build(self, spec: BuildSpec, sink: LineSink | None = None) -> str:
        # no registry cache: docker's --cache-from/--cache-to are buildx's, another format
        if spec.manifest:  # a list needs buildx; the worker refuses such a build earlier
            raise BuildError("CONTAINER_RUNTIME=docker builds one platform at a time")
        iidfile = self.workdir / "image.iid"
        argv = [*self._config("build", dict(spec.pull_auth)), "build"]
        argv += ["--iidfile", str(iidfile), "-f", str(spec.dockerfile)]
        if spec.pull:
            argv.append("--pull")
        argv += build_options(spec)
        result = await self.run([*argv, str(spec.context_dir)], sink=sink)
        if result.returncode != 0:
            raise await self.build_failure(result, spec)
        image_id = await asyncio.to_thread(_read, iidfile)
        if not image_id:
            raise BuildError("docker did not report the id of the image it built")
        return image_id

    async def push(self, image_id: str, tag: str, creds: Credentials | None, insecure: bool) -> str:
        # docker pushes a name, not an id: the build tagged every name already
        auth = {parse_image_ref(tag).registry: creds} if creds else {}
        result = await self.checked([*self._config("push", auth), "push", tag], f"pushing {tag}")
        for line in reversed(result.stdout + result.stderr):
            match = _DIGEST.search(line)
            if match:
                return match.group(1)
        raise BuildError(f"docker did not report the digest it pushed to {tag}")

    async def remove_images(self, images: Sequence[str]) -> None:
        # one call: docker goes on past a missing name
        if images:
            with contextlib.suppress(Exception):
                await self.run(["docker", "rmi", *images], stream=False)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
