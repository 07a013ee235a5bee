"""podman and buildah: the same containers/image flags, different verbs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import replace
from pathlib import Path

from slipway.domain.names import parse_image_ref
from slipway.worker import registries_conf
from slipway.worker.base_platforms import manifest_list_platforms
from slipway.worker.errors import BuildError, CacheUnavailable
from slipway.worker.platform_args import hidden_args, without_hidden_args
from slipway.worker.process import LineSink
from slipway.worker.registry_cache import (
    EMPTY_CACHE_SAID,
    UNAVAILABLE_SAID,
    CachePushWatch,
    StepWouldRun,
    cache_has_tags,
    is_cache_failure,
)
from slipway.worker.runtimes.base import (
    BuildSpec,
    Credentials,
    Runtime,
    auth_json,
    build_options,
    commits_each_step,
    write_private_file,
)
from slipway.worker.runtimes.leftovers import (
    MARKER_ARG,
    is_image_id,
    marked_containers,
    not_kept,
    parse_images,
    plan_removal,
)

log = logging.getLogger("slipway.worker")


class ContainersRuntime(Runtime):
    build_verb: tuple[str, ...] = ("build",)
    # the runtime's own queries for the clean-up (podman's and buildah's flags differ)
    images_query: tuple[str, ...] = ("images", "--all", "--format", "json")
    containers_query: tuple[str, ...] = ("ps", "--all", "--external", "--no-trunc",
                                         "--format", "{{.ID}}")
    storage_query: tuple[str, ...] = (
        "info", "--format", "{{.Store.GraphRoot}}|{{.Store.GraphDriverName}}")
    force_rm: tuple[str, ...] = ("--force",)
    # an image's os/arch[/variant] (podman 4.3 prints no variant)
    platform_query: tuple[str, ...] = ("image", "inspect", "--format",
                                       "{{.Os}}/{{.Architecture}}")
    digest_query: tuple[str, ...] = ("image", "inspect", "--format",
                                     "{{.Digest}} {{json .RepoDigests}}")
    id_query: tuple[str, ...] = ("image", "inspect", "--format", "{{.ID}}")

    _registries_conf: Path | bool | None = False  # False: not written yet
    # the last build's spec while its steps wait for push_cache
    _cache_to_push: BuildSpec | None = None

    def child_env(self) -> dict[str, str]:
        env = super().child_env()
        if self._registries_conf is False:
            self._registries_conf = registries_conf.write_for(
                self.env.insecure_registries, self.workdir / "containers")
        if isinstance(self._registries_conf, Path):
            env["CONTAINERS_REGISTRIES_CONF"] = str(self._registries_conf)
        return env

    def base(self) -> list[str]:
        argv = [self.name]
        if self.env.storage_driver:
            argv += ["--storage-driver", self.env.storage_driver]
        return argv

    def _authfile(self, label: str, auth: dict[str, Credentials]) -> list[str]:
        if not auth:
            return []
        path = write_private_file(self.workdir / "auth" / f"{label}.json", auth_json(auth))
        return ["--authfile", str(path)]

    @staticmethod
    def _tls(insecure: bool) -> list[str]:
        return ["--tls-verify=false"] if insecure else []

    async def _is_local_list(self, image: str) -> bool:
        """Asked before any `manifest inspect`, which of a name that is no local list
        would look it up in a registry (a localhost/ name at https://localhost/v2/)."""
        found = await self.run([*self.base(), "manifest", "exists", image], stream=False)
        return found.returncode == 0

    async def image_platforms(self, image: str) -> list[str] | None:
        if await self._is_local_list(image):
            listing = await self._capture("manifest", "inspect", image)
            return manifest_list_platforms(listing) if listing else None
        described = await self._capture(*self.platform_query, image)
        platform = (described or "").strip().strip("/")
        return [platform] if platform.count("/") >= 1 else None

    async def image_digest(self, image: str, platform: str = "",
                           candidates: Sequence[str] = ()) -> str:
        # another platform's image of a local list: the list's entry for it. For the
        # host's, the inspect below resolves a list to the host's image, as the build did
        if platform and await self._is_local_list(image):
            listing = await self._capture("manifest", "inspect", image)
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                for entry in json.loads(listing or "{}").get("manifests", []):
                    plat = entry.get("platform") or {}
                    name = "/".join(p for p in (plat.get("os"), plat.get("architecture"),
                                                plat.get("variant")) if p)
                    if name == platform or name.startswith(platform + "/"):
                        return str(entry.get("digest", ""))
            return ""
        shown = (await self._capture(*self.digest_query, image) or "").strip()
        # podman: "DIGEST REPODIGESTS-JSON". An image known by several manifests (the same
        # image pulled by two names) has each in RepoDigests: `known` lists them all, and
        # the caller picks the one its registry names (worker/build.py)
        digest, _, repo_digests = shown.partition(" ")
        known: list[str] = [digest] if digest else []
        with contextlib.suppress(ValueError, TypeError):
            for entry in json.loads(repo_digests or "[]") or []:
                found = str(entry).partition("@")[2]
                if found and found not in known:
                    known.append(found)
        if candidates:
            for wanted in candidates:
                if wanted in known:
                    return wanted
        return digest

    async def platform_images(self, manifest: str) -> dict[str, str]:
        """Each instance of the build's list found by its own digest (`LIST@DIGEST`), not
        in a listing of the host's images: podman 4.3 cannot list them at all while a
        local manifest list and an image without layers exist (docs/multi-arch.md)."""
        listed = await self._capture("manifest", "inspect", manifest)
        platforms: dict[str, str] = {}  # digest -> os/arch[/variant]
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            for entry in json.loads(listed or "{}").get("manifests", []):
                plat = entry.get("platform") or {}
                platforms[str(entry.get("digest", ""))] = "/".join(
                    p for p in (plat.get("os"), plat.get("architecture"), plat.get("variant"))
                    if p)
        ids = await asyncio.gather(*(self._capture(*self.id_query, f"{manifest}@{digest}")
                                     for digest in platforms))
        return {platform: found.strip() for platform, found in zip(platforms.values(), ids,
                                                                    strict=True)
                if found and found.strip()}

    async def pull(
        self, image: str, creds: Credentials | None, insecure: bool, platform: str = ""
    ) -> None:
        auth = {parse_image_ref(image).registry: creds} if creds else {}
        argv = [*self.base(), "pull", *self._tls(insecure), *self._authfile("pull", auth)]
        if platform:
            argv += ["--platform", platform]
        what = f"pulling {image}" + (f" for {platform}" if platform else "")
        await self.checked([*argv, image], what)

    def build_argv(self, spec: BuildSpec, iidfile: Path,
                   cache_flags: Sequence[str] = ()) -> list[str]:
        """`cache_flags`: the registry cache's (`_cache_flags`)."""
        argv = [*self.base(), *self.build_verb, "--isolation", self.env.isolation]
        layers = commits_each_step(spec, self.env.layer_cache)
        argv += [f"--layers={'true' if layers else 'false'}"]
        argv += cache_flags
        if spec.pull:
            argv += ["--pull=always"]
        argv += ["--format", "docker", "--iidfile", str(iidfile), "-f", str(spec.dockerfile)]
        argv += self._tls(spec.insecure)
        auth = dict(spec.pull_auth)
        if spec.cache_repo and spec.cache_auth:
            # an entry for the cache repository alone: the base images keep theirs
            auth[spec.cache_repo] = spec.cache_auth
        argv += self._authfile("build", auth)
        # names the build on its working containers, for the clean-up to find them
        argv += ["--build-arg", f"{MARKER_ARG}={self.build_marker}"]
        argv += build_options(spec)
        return [*argv, str(spec.context_dir)]

    async def _cache_flags(self, spec: BuildSpec, sink: LineSink) -> list[str] | None:
        """The registry cache's flags, from one look at the cache repository's tag list per
        build: an empty repository is not looked up step by step; a registry that fails
        it (5xx) is said at once and the build runs without the cache, once (None). A
        build that pushes its steps after its end only looks them up here."""
        if not spec.cache_repo:
            return None
        registry = spec.cache_repo.split("/", 1)[0]
        try:
            found = await cache_has_tags(spec.cache_repo, spec.cache_auth,
                                         self.env.registry_is_insecure(registry),
                                         self.child_env())
        except CacheUnavailable as exc:
            await sink(f"{UNAVAILABLE_SAID}{exc}; building without it")
            return None
        push = [] if spec.cache_push_after_end else ["--cache-to", spec.cache_repo]
        if found is False:
            # nothing to find: buildah would ask the registry for each step's key
            await sink(EMPTY_CACHE_SAID)
            return push
        return ["--cache-from", spec.cache_repo, *push]

    @property
    def cache_push_pending(self) -> bool:
        return self._cache_to_push is not None

    async def push_cache(self, step_images: Sequence[str]) -> int:
        """The build again, with `--cache-to` alone: each step is found among the step
        images the build left, so none runs and buildah pushes each under its cache key.
        Not when one of them is gone (StepWouldRun; another build's clean-up on a shared
        host): that step would run again. A push that fails raises CacheUnavailable with
        buildah's words."""
        spec, self._cache_to_push = self._cache_to_push, None
        if spec is None:
            return 0
        found = await asyncio.gather(*(self.image_exists(i) for i in dict.fromkeys(step_images)))
        if not all(found):
            raise StepWouldRun("a step image of the build is gone: its step would run again")
        watch = CachePushWatch()
        # no --pull=always: the base the build used is in the store, and is what it keys
        argv = self.build_argv(replace(spec, pull=False), self.workdir / "cache-push.iid",
                               ["--cache-to", spec.cache_repo])
        try:
            # killed at once: a RUN step's grace would let buildah go on to the next step
            result = await self.run(argv, sink=watch.line, stop_at_once=True)
        except StepWouldRun:
            # stopped mid-step: its working containers carry the build's marker
            await self.remove_working_containers()
            raise
        if result.returncode != 0:
            raise CacheUnavailable(result.error_text())
        return watch.pushed

    async def build(self, spec: BuildSpec, sink: LineSink | None = None) -> str:
        iidfile = self.workdir / "image.iid"
        flags = await self._cache_flags(spec, sink or self.sink)
        cache_flags = flags or []
        # its steps wait for push_cache only when the cache can be used at all
        self._cache_to_push = spec if flags is not None and spec.cache_push_after_end else None
        if spec.manifest:
            # the list exists, empty, before the platforms' builds (which run side by side)
            # add to it: left to the build, two may race to create it; a second run (the
            # build again without its cache) starts from an empty list too
            await self.run([*self.base(), "manifest", "rm", spec.manifest], stream=False)
            await self.checked([*self.base(), "manifest", "create", spec.manifest],
                               "creating the manifest list")
        result = await self.run(self.build_argv(spec, iidfile, cache_flags),
                                sink=self._quiet_arg_warnings(spec, sink or self.sink))
        if result.returncode != 0:
            if spec.cache_repo and is_cache_failure(result.error_text()):
                raise CacheUnavailable(result.error_text())
            raise await self.build_failure(result, spec)
        if spec.manifest:  # the list holds one image per platform: it is what is pushed
            return spec.manifest
        image_id = await asyncio.to_thread(_read, iidfile)
        if not image_id:
            raise BuildError(f"{self.name} did not report the id of the image it built")
        return image_id

    @staticmethod
    def _quiet_arg_warnings(spec: BuildSpec, sink: LineSink) -> LineSink:
        """`sink` without buildah's warnings about the platform build args it set itself
        and the worker's marker (worker/platform_args.py)."""
        hidden = hidden_args(spec.build_args, extra=(MARKER_ARG,))

        async def shown(line: str) -> None:
            if (kept := without_hidden_args(line, hidden)) is not None:
                await sink(kept)

        return shown

    async def push(self, image_id: str, tag: str, creds: Credentials | None, insecure: bool) -> str:
        auth = {parse_image_ref(tag).registry: creds} if creds else {}
        digestfile = self.workdir / "push.digest"
        argv = [*self.base(), "push", *self._tls(insecure), *self._authfile("push", auth)]
        argv += ["--digestfile", str(digestfile), image_id, f"docker://{tag}"]
        await self.checked(argv, f"pushing {tag}")
        digest = await asyncio.to_thread(_read, digestfile)
        if not digest.startswith("sha256:"):
            raise BuildError(f"{self.name} did not report the digest it pushed to {tag}")
        return digest

    async def push_manifest(
        self, manifest: str, tag: str, creds: Credentials | None, insecure: bool
    ) -> str:
        auth = {parse_image_ref(tag).registry: creds} if creds else {}
        digestfile = self.workdir / "push-list.digest"
        argv = [*self.base(), "manifest", "push", "--all", *self._tls(insecure)]
        argv += [*self._authfile("push", auth), "--digestfile", str(digestfile)]
        argv += [manifest, f"docker://{tag}"]
        await self.checked(argv, f"pushing the manifest list to {tag}")
        digest = await asyncio.to_thread(_read, digestfile)
        if not digest.startswith("sha256:"):
            raise BuildError(
                f"{self.name} did not report the digest of the list it pushed to {tag}"
            )
        return digest

    async def remove_manifest(self, manifest: str, keep: Collection[str] = ()) -> None:
        with contextlib.suppress(Exception):
            ids = list(dict.fromkeys((await self.platform_images(manifest)).values()))
            await self.run([*self.base(), "manifest", "rm", manifest], stream=False)
            if ids:
                await self.remove_built(ids, keep)

    async def local_image_ids(self, images: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with contextlib.suppress(Exception):  # (for the clean-up: best effort)
            for image in images:
                own = await self._capture(*self.id_query, image)  # a list's: the host's
                if own and own.strip():
                    found.add(own.strip())
                if await self._is_local_list(image):
                    found.update((await self.platform_images(image)).values())
        return found

    async def _capture(self, *args: str) -> str | None:
        """The whole standard output of a short query (run() keeps only its last lines);
        None when it fails."""
        proc = await asyncio.create_subprocess_exec(
            *self.base(), *args, env=self.child_env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await proc.communicate()
        return out.decode("utf-8", "replace") if proc.returncode == 0 else None

    async def _listing(self, *args: str, attempts: int = 3) -> str | None:
        """A listing of the host's images or containers for the clean-up. On a host that
        runs other builds, one can fail when an image or container goes while it is
        listed ("image not known"): it is asked again. None, logged, when it keeps
        failing."""
        error = b""
        for _ in range(attempts):
            proc = await asyncio.create_subprocess_exec(
                *self.base(), *args, env=self.child_env(),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, error = await proc.communicate()
            if proc.returncode == 0:
                return out.decode("utf-8", "replace")
        log.warning("clean-up: %s %s failed: %s", self.name, " ".join(args),
                    error.decode("utf-8", "replace").strip()[-2000:])
        return None

    async def remove_images(self, images: Sequence[str]) -> None:
        """Pulled images, by name, in one call: an image another build now uses stays
        (no --force), and a missing name does not keep the others."""
        if images:
            with contextlib.suppress(Exception):
                await self.run([*self.base(), "rmi", *images], stream=False)

    async def remove_built(self, references: Sequence[str], keep: Collection[str] = ()) -> None:
        """The images this build made, each removed once by its ID, whatever its number of
        tags; a name this build shares with an image of another keeps that image, and an
        image of `keep` only loses this build's names."""
        with contextlib.suppress(Exception):
            listing = await self._listing(*self.images_query)
            if listing is None:
                # by name then, in one call: each name goes, and an image with its last;
                # first off the kept images, which keep their own names if they have any
                names = [r for r in references if not is_image_id(r)]
                for image_id in keep:
                    await self.untag(image_id, names)
                await self.remove_images(not_kept(references, keep))
                return
            removal = plan_removal(parse_images(listing), references, keep)
            for image_id, names in removal.untag.items():
                await self.untag(image_id, names)
            if removal.delete:
                # --force: an image with several tags is otherwise refused
                await self.run([*self.base(), "rmi", "--force", *removal.delete],
                               stream=False)

    async def untag(self, image_id: str, names: Sequence[str]) -> None:
        """Take `names` off the image `image_id`, keeping it (buildah: rmi of a name the
        image is not only known by removes just the name)."""
        await self.run([*self.base(), "rmi", *names], stream=False)

    async def remove_working_containers(self) -> None:
        """The buildah working containers of this build, which a runtime killed mid-step
        or mid-COMMIT leaves (runtimes/leftovers.py): found by the build's marker."""
        with contextlib.suppress(Exception):
            listed = await self._listing(*self.containers_query)
            storage = await self._listing(*self.storage_query)
            if not listed or not storage:
                return
            graph_root, _, driver = storage.strip().partition("|")
            state_dir = Path(graph_root) / f"{driver}-containers"
            ours = await asyncio.to_thread(
                marked_containers, state_dir, listed.split(), self.build_marker)
            if ours:
                await self.run([*self.base(), "rm", *self.force_rm, *ours], stream=False)

def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
