"""What every runtime does for one build, and the credential files they share."""

from __future__ import annotations

import abc
import asyncio
import base64
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from slipway.worker.build_failure import describe
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.errors import BuildError
from slipway.worker.process import LineSink, ProcessResult, child_environment, run_process
from slipway.worker.runtimes.leftovers import not_kept


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BuildSpec:
    context_dir: Path
    dockerfile: Path
    tags: list[str]  # full references: registry/repository:tag
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    pull_auth: Mapping[str, Credentials] = field(default_factory=dict)  # registry -> creds
    insecure: bool = False  # some base image lives on an INSECURE_REGISTRIES registry
    no_cache: bool = False  # build every step anew
    pull: bool = False  # pull base images even when present
    labels: Mapping[str, str] = field(default_factory=dict)
    # build secret id -> the private file holding its value
    secrets: Mapping[str, Path] = field(default_factory=dict)
    # the registry cache (docs/layer-cache.md): registry/path, "" for none; its
    # credentials (the push's), put in the build's auth file for that repository only
    cache_repo: str = ""
    cache_auth: Credentials | None = None
    keep_layers: bool = False  # build with step images (they are the cache's)
    # with cache_repo: the build only looks its steps up there, and Runtime.push_cache
    # pushes them once the build's end is reported (docs/layer-cache.md)
    cache_push_after_end: bool = False
    # docs/multi-arch.md: the platforms to build, () for the host's own (no --platform);
    # with more than one, `manifest` is the local manifest list the build adds them to
    platforms: tuple[str, ...] = ()
    manifest: str = ""


def commits_each_step(spec: BuildSpec, layer_cache: bool) -> bool:
    """Whether the build runs with --layers: an image per step. No local layer cache unless
    the executor asks for one (LAYER_CACHE): a worker is ephemeral, and cached step images
    outlive the build's clean-up on a shared host. The registry cache needs the step
    images: the build's clean-up removes them."""
    return layer_cache or spec.keep_layers or bool(spec.cache_repo)


def build_options(spec: BuildSpec) -> list[str]:
    """The arguments every runtime's build takes alike: build args, labels, secrets,
    target, platforms, tags (or the manifest list), --no-cache."""
    argv: list[str] = []
    if spec.platforms:
        argv += ["--platform", ",".join(spec.platforms)]
    for name, value in spec.build_args.items():
        argv += ["--build-arg", f"{name}={value}"]
    for name, value in spec.labels.items():
        argv += ["--label", f"{name}={value}"]
    for secret_id, path in spec.secrets.items():
        argv += ["--secret", f"id={secret_id},src={path}"]
    if spec.no_cache:
        argv.append("--no-cache")
    if spec.target:
        argv += ["--target", spec.target]
    if spec.manifest:  # the images go into the list; its pushes name the tags
        argv += ["--manifest", spec.manifest]
    else:
        for tag in spec.tags:
            argv += ["-t", tag]
    return argv


def write_private_file(path: Path, content: str) -> Path:
    """A file only the worker's user can read (credentials)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    return path


def auth_json(auth: Mapping[str, Credentials], docker_style: bool = False) -> str:
    """containers-auth.json / docker config.json with base64 user:password entries."""
    entries = {}
    for registry, creds in auth.items():
        key = registry
        if docker_style and registry == "docker.io":
            key = "https://index.docker.io/v1/"
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        entries[key] = {"auth": token}
    return json.dumps({"auths": entries})


class Runtime(abc.ABC):
    """One build's use of a container runtime. Failures the user caused raise BuildError
    with the runtime's own message."""

    name = ""

    def __init__(self, env: WorkerEnvironment, workdir: Path, sink: LineSink) -> None:
        self.env = env
        self.workdir = workdir
        self.sink = sink
        # unique to the build (its private directory's random name): what its leftovers
        # are found by on a host that runs other builds too
        self.build_marker = workdir.name

    async def run(
        self, argv: Sequence[str], *, stream: bool = True, sink: LineSink | None = None,
        stop_at_once: bool = False,
    ) -> ProcessResult:
        """Run the runtime; a streamed run that fails keeps its error lines for the
        BuildError its caller raises (they are shown once, as the build's error). `sink`
        takes the lines instead of the runtime's own. `stop_at_once`: see run_process."""
        try:
            return await run_process(argv, (sink or self.sink) if stream else None,
                                     env=self.child_env(), hold_errors=stream,
                                     stop_at_once=stop_at_once)
        except FileNotFoundError:
            raise RuntimeError(
                f"{argv[0]} is not installed on this worker (CONTAINER_RUNTIME={self.name})"
            ) from None

    def child_env(self) -> dict[str, str]:
        extra = {"BUILDAH_ISOLATION": self.env.isolation}
        if self.env.docker_host:
            extra["DOCKER_HOST"] = self.env.docker_host
        return child_environment(extra)

    async def checked(self, argv: Sequence[str], what: str) -> ProcessResult:
        result = await self.run(argv)
        if result.returncode != 0:
            raise BuildError(f"{what} failed: {result.error_text()}")
        return result

    async def build_failure(self, result: ProcessResult, spec: BuildSpec) -> BuildError:
        """The error of a failed build, naming the Dockerfile line the runtime stopped at."""
        dockerfile = await asyncio.to_thread(spec.dockerfile.read_text, errors="replace")
        return BuildError(describe(result.error_text(), dockerfile, str(spec.context_dir)))

    @abc.abstractmethod
    async def image_exists(self, image: str) -> bool: ...

    async def image_platforms(self, image: str) -> list[str] | None:
        """The platforms (os/arch[/variant]) the local image or manifest list `image`
        offers, without asking a registry; None when unknown (not here, or a runtime that
        cannot tell)."""
        return None

    async def image_digest(self, image: str, platform: str = "",
                           candidates: Sequence[str] = ()) -> str:
        """The manifest digest of the local image `image` (of a manifest list, its image
        for `platform`, "" the host's): what a build FROM it used, for the provenance;
        "" when unknown. The first of `candidates` (what its registry has) the local
        image is known by wins over the runtime's own first digest."""
        return ""

    async def export_files(self, image: str) -> dict[str, bytes]:
        """The package databases and metadata files of the local image `image`
        (signing/rootfs.py), for its SBOM; BuildError when this runtime cannot."""
        raise BuildError(f"CONTAINER_RUNTIME={self.name} cannot export an image's files "
                         "for its SBOM")

    async def mounted_files(self, reference: str) -> tuple[str, dict[str, bytes]]:
        """The ID of the local image `reference` names and its wanted files, read where
        the image is mounted in place, for an SBOM started before the build's end (the
        name may move meanwhile: the caller checks the ID); BuildError when this runtime
        cannot mount it."""
        raise BuildError(f"CONTAINER_RUNTIME={self.name} cannot mount an image")

    async def unmount_images(self) -> None:
        """Unmount what export_files and mounted_files mounted (the clean-up, before the
        images go); best effort: never raises."""
        return None

    async def platform_images(self, manifest: str) -> dict[str, str]:
        """{os/arch[/variant]: local image ID} of the local manifest list `manifest`."""
        return {}

    @abc.abstractmethod
    async def pull(
        self, image: str, creds: Credentials | None, insecure: bool, platform: str = ""
    ) -> None:
        """Pull an image (for `platform`, when given: os/arch[/variant])."""

    @abc.abstractmethod
    async def build(self, spec: BuildSpec, sink: LineSink | None = None) -> str:
        """Build and tag; return the image id. `sink` takes the build's output lines."""

    @property
    def cache_push_pending(self) -> bool:
        """Whether the last build left its steps for push_cache."""
        return False

    async def push_cache(self, step_images: Sequence[str]) -> int:
        """Push the steps of the last build whose cache push was left for after its end
        (BuildSpec.cache_push_after_end) to the registry cache; return how many were
        pushed. `step_images`: the build's step images, which must all still be there.
        0 when there is nothing to push (the docker runtime has no cache)."""
        return 0

    @abc.abstractmethod
    async def push(self, image_id: str, tag: str, creds: Credentials | None, insecure: bool) -> str:
        """Push one tag; return the manifest digest the registry stored."""

    async def push_manifest(
        self, manifest: str, tag: str, creds: Credentials | None, insecure: bool
    ) -> str:
        """Push a manifest list with all its images under one tag; return the list's
        digest. Only podman and buildah build lists."""
        raise BuildError(f"CONTAINER_RUNTIME={self.name} cannot push a manifest list")

    async def remove_manifest(self, manifest: str, keep: Collection[str] = ()) -> None:
        """Remove a manifest list and the images in it but those of `keep` (the build's
        local bases: local_image_ids); best effort. Runtimes that build no lists have
        none to remove."""
        return None

    async def local_image_ids(self, images: Sequence[str]) -> set[str]:
        """The IDs of these local images and, of a local manifest list, of each of its
        images: a build's local bases, which its clean-up leaves (one of them is what a
        Dockerfile of only `FROM` built). Empty where the runtime cannot tell."""
        return set()

    @abc.abstractmethod
    async def remove_images(self, images: Sequence[str]) -> None:
        """Remove images this build pulled, by name, unless in use; best effort: never
        raises."""

    async def remove_built(self, references: Sequence[str], keep: Collection[str] = ()) -> None:
        """Remove the images this build made (its tags, its step images' IDs), whatever
        their number of tags, but not those of `keep` (their IDs: they only lose this
        build's names); best effort: never raises."""
        await self.remove_images(not_kept(references, keep))

    async def remove_working_containers(self) -> None:
        """Remove what a stopped build left of its working containers; best effort.
        Runtimes whose builds leave none have none to remove."""
        return None

    async def remove_names(self, images: Sequence[str]) -> None:
        """Take these names off their images, keeping the images (a layer cache's); best
        effort. Runtimes without a way to keep them remove the images."""
        await self.remove_images(images)
