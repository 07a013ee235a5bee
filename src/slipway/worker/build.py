"""One build, from BuildPack to pushed image: the steps and the phases they report."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from slipway.domain.names import (
    SECRET_ID,
    ImageRef,
    InvalidName,
    check_repository_path,
    check_tag,
    parse_image_ref,
)
from slipway.domain.platforms import InvalidPlatform, normalize_platforms
from slipway.protocol import buildman_pb2 as pb
from slipway.worker import tracing
from slipway.worker.base_platforms import missing_platform_message, offers, pinned_platform
from slipway.worker.context import fetch_git, fetch_url, locate
from slipway.worker.dockerfile import BaseImages, base_images, has_stage_of_only_from
from slipway.worker.emulation import check_emulation
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.errors import BuildError, CacheUnavailable
from slipway.worker.milestones import FinalCommit, UnderWay, same_image
from slipway.worker.platform_args import host_platform, platform_args
from slipway.worker.registry_cache import (
    UNAVAILABLE_SAID,
    CacheWatch,
    cache_repository,
    probe,
)
from slipway.worker.reporter import Reporter
from slipway.worker.runtimes import make_runtime
from slipway.worker.runtimes.base import (
    BuildSpec,
    Credentials,
    Runtime,
    commits_each_step,
    write_private_file,
)
from slipway.worker.runtimes.leftovers import BUILD_DIRECTORY_PREFIX
from slipway.worker.tracing import StepSpans, span
from slipway.worker.unpack import Limits

if TYPE_CHECKING:  # a build without signing never imports them (the worker starts fast)
    from slipway.signing.keys import SigningKey
    from slipway.signing.provenance import Base
    from slipway.worker.registry_api import RegistryClient
    from slipway.worker.signing import Pushed

log = logging.getLogger("slipway.worker")


def pack_secrets(pack: pb.BuildPack, env: WorkerEnvironment) -> list[str]:
    """Every credential of this build, masked wherever it could show up."""
    values = [
        env.token,
        pack.job_jwt,
        pack.pull_token,
        pack.push_token,
        pack.push_password,
        pack.base_image.password,
    ]
    for secret in pack.secrets:
        # whole, and line by line: the log is reported a line at a time
        values += [secret.value, *(ln.strip() for ln in secret.value.splitlines())]
    if pack.HasField("signing"):  # the passphrase, each line of the key's body
        values.append(pack.signing.passphrase)
        values += [ln for ln in pack.signing.private_key.splitlines() if len(ln) >= 16]
    if pack.HasField("git_package"):
        # each line of the key body, and a password inside the clone URL
        values += [ln for ln in pack.git_package.private_key.splitlines() if len(ln) >= 16]
        with contextlib.suppress(ValueError):
            values.append(urlsplit(pack.git_package.url).password or "")
    return [v for v in values if v]


def push_targets(pack: pb.BuildPack, env: WorkerEnvironment) -> tuple[str, list[str]]:
    registry = (pack.registry or env.registry_hostname).strip().lower()
    if not registry:
        raise BuildError("the build names no registry to push to (BuildPack.registry is empty)")
    repository = pack.repository.strip().strip("/")
    tags = list(pack.tag_names) or ["latest"]
    try:
        check_repository_path(registry, repository)
        for tag in tags:
            check_tag(tag)
    except InvalidName as exc:
        raise BuildError(str(exc)) from None
    return registry, [f"{registry}/{repository}:{tag}" for tag in dict.fromkeys(tags)]


def build_platforms(pack: pb.BuildPack, env: WorkerEnvironment) -> tuple[str, ...]:
    """The build's platforms (docs/multi-arch.md): its own, else the executor's PLATFORMS,
    else () for the host's; checked here too, for a BuildPack from another manager."""
    try:
        platforms = tuple(normalize_platforms(pack.platforms)) or env.platforms
    except InvalidPlatform as exc:
        raise BuildError(f"platforms: {exc}") from None
    if len(platforms) > 1 and env.container_runtime == "docker":
        raise BuildError(
            f"platforms {', '.join(platforms)}: CONTAINER_RUNTIME=docker builds one platform "
            "at a time (a manifest list needs buildx); use podman or buildah on this executor"
        )
    return platforms


def push_credentials(pack: pb.BuildPack) -> Credentials | None:
    if pack.push_username:
        return Credentials(pack.push_username, pack.push_password)
    if pack.push_token:
        return Credentials("$token", pack.push_token)
    return None


@dataclass
class Build:
    pack: pb.BuildPack
    env: WorkerEnvironment
    reporter: Reporter
    workdir: Path = field(init=False)
    runtime: Runtime = field(init=False)
    # what the clean-up removes: the images this build made (its tags, its step images'
    # IDs), and the base and cache images it pulled (by name, only when no one uses them)
    built_images: list[str] = field(default_factory=list)
    pulled_images: list[str] = field(default_factory=list)
    manifest: str = ""  # the local manifest list of a multi-platform build
    # its localhost/ bases when a stage of its Dockerfile is a FROM alone, which then
    # "builds" the base image itself (maybe an unnamed image of a local manifest list):
    # the clean-up leaves their images
    local_bases: list[str] = field(default_factory=list)
    # the runtime's build step ran to its end (podman/buildah removed their working
    # containers themselves, even on a failed step); False when it was killed
    build_step_ended: bool = False
    # what was pushed, for the signatures and attestations (worker/signing.py)
    pushed: Pushed | None = None
    # started early, awaited after the push (docs/signing.md, "Cost"): the key
    # (worker/signing.py prepare) while the context is fetched; the registries' side and
    # the bases' digests once the build is under way; each platform's SBOM from its
    # image's commit (one image) or while the push runs (a manifest list)
    prepared: asyncio.Future[SigningKey] | None = None
    exports: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    # a one-image build's SBOM starts at its image's commit (worker/milestones.py), and
    # keeps what it read when the build's image, known at its end, is the one it read
    final_commit: FinalCommit | None = None
    # the signing's work beside the build (_before_build), started once the build is
    # under way (worker/milestones.py), or before the push when it never was
    under_way: UnderWay | None = None
    signing_work: Callable[[], None] | None = None
    built_id: asyncio.Future[str] | None = None
    registry_digests: asyncio.Future[dict[str, list[str]]] | None = None
    bases_used: asyncio.Future[list[Base]] | None = None
    registry_client: RegistryClient | None = None
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    cache_push_after_end: bool = False  # the built steps go to the registry cache after
    step_images: list[str] = field(default_factory=list)  # each step's, for that push

    async def run(self) -> None:
        """Report COMPLETE or ERROR; anything else raised is the worker's own trouble."""
        for secret in pack_secrets(self.pack, self.env):
            self.reporter.add_secret(secret)
        self.workdir = Path(
            await asyncio.to_thread(
                tempfile.mkdtemp, prefix=BUILD_DIRECTORY_PREFIX, dir=self.env.work_dir or None
            )
        )
        self.runtime = make_runtime(self.env, self.workdir, self.reporter.log)
        try:
            try:
                digest = await self._steps()
                attestations = await self._attest()
            except BuildError as exc:
                message = str(exc)
                log.info("build failed: %s", self.reporter.mask(message))
                await self.reporter.log_error(message)
                await self.reporter.phase(pb.ERROR, error_message=message)
                return
            await self.reporter.phase(pb.COMPLETE, image_digest=digest,
                                      attestations=attestations)
            await self._push_cache_after_end()
        finally:
            # after the end is reported: the user has the result without waiting for it.
            # A stop (cancel) does not cut it short: the worker leaves once it is done
            cleanup = asyncio.ensure_future(self.cleanup())
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                await cleanup
                raise

    @property
    def signing(self) -> pb.BuildPack.Signing | None:
        signing = self.pack.signing
        return signing if self.pack.HasField("signing") and signing.private_key else None

    @property
    def repository(self) -> str:
        """The build's repository path in its registry."""
        return self.pack.repository.strip().strip("/")

    @property
    def with_sbom(self) -> bool:
        return self.signing is not None and self.signing.sbom and self.env.sbom

    async def _attest(self) -> str:
        """Sign what was pushed and attach its provenance (docs/signing.md): the summary
        for COMPLETE, "" when the build is not signed. A failure fails the build when
        signing is required, else it is a warning in the log."""
        signing = self.signing
        client = self.registry_client
        if signing is None or not self.pushed or self.prepared is None or client is None:
            return ""

        async def export(platform: str) -> dict[str, Any]:
            started = self.exports.get(platform)
            if started is None:
                raise BuildError(f"no image of platform {platform or 'the host'} to read")
            return await started

        from slipway.worker.signing import attest

        try:
            with span("signing"):
                key = await self.prepared
                summary = await attest(signing, key, self.pushed, client, self.reporter.log,
                                       export if self.with_sbom else None)
        except BuildError as exc:
            pushed = f"{self.pushed.name}@{self.pushed.digest}"
            if signing.required:
                raise BuildError(f"{pushed} was pushed, but signing and attesting it failed: "
                                 f"{exc} (SIGNING.REQUIRED is true)") from None
            await self.reporter.log(f"warning: {pushed} is not signed: {exc}")
            return json.dumps({"error": str(exc)})
        return json.dumps(summary, separators=(",", ":"))

    def _before_build(self, registry: str, platforms: tuple[str, ...], needs: BaseNeeds,
                      pull_auth: dict[str, Credentials], pulls: bool) -> None:
        """Start, to run while the build's steps do (once it is under way: podman's own
        start and the first step's cache push go first), the registries' side of signing:
        the connection, the token its challenge asks for, the upload sessions of the
        attachments' blobs; what the base images' registries have for them and, unless the
        build pulls them itself, the local copies' digests (podman queries of the store:
        beside podman's start or a commit, they would hold those up). (The key's
        decryption started with the build: _steps.)"""
        from slipway.worker.registry_api import RegistryClient
        from slipway.worker.signing import blob_count

        self.registry_client = RegistryClient(
            f"{registry}/{self.repository}",
            push_credentials(self.pack), self.env.registry_is_insecure(registry),
            self.runtime.child_env())
        self.registry_client.reserve_uploads(blob_count(len(platforms), self.with_sbom))
        self.registry_digests = asyncio.ensure_future(self._registry_digests(needs, pull_auth))
        if not pulls:
            self.bases_used = asyncio.ensure_future(
                self._bases_used(needs, self.registry_digests))

    def _start_signing_work(self) -> None:
        work, self.signing_work = self.signing_work, None
        if work is not None:
            work()

    def _before_push(self, image_id: str, platforms: tuple[str, ...], registry: str,
                     needs: BaseNeeds) -> None:
        """Start, to run while the push does: each platform image's SBOM (unless started
        at the commit) and, for a build that pulled its bases itself, their digests."""
        self._start_signing_work()
        name = f"{registry}/{self.repository}"
        if self.with_sbom:
            for platform in platforms if self.manifest else ("",):
                if platform not in self.exports:  # else started at the commit
                    self.exports[platform] = asyncio.ensure_future(
                        self._sbom(image_id, platform, name))
        if self.bases_used is None and self.registry_digests is not None:
            self.bases_used = asyncio.ensure_future(
                self._bases_used(needs, self.registry_digests))

    async def _registry_digests(self, needs: BaseNeeds, pull_auth: dict[str, Credentials]
                                ) -> dict[str, list[str]]:
        """{base image: the digests its registry has for it} (none for a local one)."""
        from slipway.worker.signing import registry_digests

        found: dict[str, list[str]] = {}
        for image in needs.platforms:
            ref = parse_image_ref(image)
            if ref.registry != "localhost":
                found[image] = await registry_digests(
                    image, pull_auth.get(ref.registry),
                    self.env.registry_is_insecure(ref.registry), self.workdir,
                    self.runtime.child_env())
        return found

    async def _bases_used(self, needs: BaseNeeds,
                          known: asyncio.Future[dict[str, list[str]]]) -> list[Base]:
        """Each base image with the digest the build used (the registry's, when the local
        copy is known by it: `known`), for the provenance."""
        from slipway.signing.provenance import Base

        candidates = await known
        used = []
        for image, wanted in needs.platforms.items():
            for platform in wanted:
                digest = await self.runtime.image_digest(image, platform,
                                                         candidates.get(image, []))
                used.append(Base(image, digest, platform))
        return used

    async def _sbom(self, image: str, platform: str, name: str) -> dict[str, Any]:
        """The SBOM of the built image of `platform`, without its digest (not pushed yet):
        its files read, the document made in a thread."""
        with span("sbom", **{"slipway.platform": platform}):
            if self.manifest:
                images = await self.runtime.platform_images(self.manifest)
                image = images.get(platform) or next(
                    (i for p, i in images.items() if p.startswith(platform + "/")), "")
                if not image:
                    raise BuildError(f"no local image of {platform} in the manifest list")
            files = await self.runtime.export_files(image)
            return await asyncio.to_thread(_make_sbom, files, name)

    def _sbom_at_commit(self) -> None:
        """Start the SBOM now that the build committed its image under its first tag: the
        build may still push that step to the registry cache, and tag."""
        assert self.final_commit is not None
        registry, _, _ = self.final_commit.name.partition("/")
        name = f"{registry}/{self.repository}"
        self.built_id = asyncio.get_running_loop().create_future()
        self.exports[""] = asyncio.ensure_future(
            self._sbom_of_commit(self.final_commit.name, name, self.built_id))

    async def _sbom_of_commit(self, reference: str, name: str,
                              built: asyncio.Future[str]) -> dict[str, Any]:
        """The SBOM of the image `reference` names, made while the build ends; read again
        from the build's image when that is another (the name moved: another build on
        this host with the same tag) or when `reference` could not be mounted."""
        with span("sbom", **{"slipway.platform": ""}):
            try:
                read_id, files = await self.runtime.mounted_files(reference)
                document = await asyncio.to_thread(_make_sbom, files, name)
            except BuildError:
                read_id, document = "", {}
            image_id = await built
            if same_image(read_id, image_id):
                return document
            files = await self.runtime.export_files(image_id)
            return await asyncio.to_thread(_make_sbom, files, name)

    async def _push_cache_after_end(self) -> None:
        """The build's steps to the registry cache once the user has the image: the build
        did not wait for them (docs/layer-cache.md). Best effort, in the worker's own log:
        a step a later build does not find there only runs again."""
        if not self.cache_push_after_end:
            return
        started = time.monotonic()
        try:
            pushed = await self.runtime.push_cache(self.step_images)
        except Exception as exc:  # the build has ended: nothing of this may fail it
            log.warning("registry cache: the steps were not pushed: %s",
                        self.reporter.mask(str(exc) or type(exc).__name__))
            return
        log.info("registry cache: %d step(s) pushed after the build, in %.2f s", pushed,
                 time.monotonic() - started)

    async def cleanup(self) -> None:
        """Working containers, images this build made, the temp dir (and with it the key
        and auth files). A few runtime calls whatever the tag count: the executor gives a
        stopped worker seconds, not minutes."""
        pending: list[asyncio.Future[Any]] = [*self.exports.values()]
        pending += [f for f in (self.prepared, self.registry_digests, self.bases_used)
                    if f is not None]
        if pending:  # their containers go before the images they were made from
            await asyncio.gather(*pending, return_exceptions=True)
        if self.exports:  # a mounted image cannot be removed
            await self.runtime.unmount_images()
        if self.registry_client is not None:
            client, self.registry_client = self.registry_client, None
            await client.aclose()
        built, self.built_images = self.built_images, []
        pulled, self.pulled_images = self.pulled_images, []
        if not self.build_step_ended:
            # first: a working container keeps the image it grew from in use
            await self.runtime.remove_working_containers()
        removes_by_id = (bool(built) or bool(self.manifest)) and not self.env.layer_cache
        keep = await self.runtime.local_image_ids(self.local_bases) if removes_by_id else set()
        if self.manifest:  # with its images, unless they are the layer cache
            manifest, self.manifest = self.manifest, ""
            if self.env.layer_cache:
                await self.runtime.remove_names([manifest])
            else:
                await self.runtime.remove_manifest(manifest, keep)
        if built and self.env.layer_cache:
            # the images are the cache: only the names this build gave them go
            await self.runtime.remove_names(built)
        elif built:
            await self.runtime.remove_built(built, keep)
        if pulled:  # after the built images, which grew from them
            await self.runtime.remove_images(pulled)
        await asyncio.to_thread(shutil.rmtree, self.workdir, True)

    async def _steps(self) -> str:
        pack, env = self.pack, self.env
        limits = Limits(env.context_max_bytes, env.context_max_files)
        package = self.workdir / "package"

        await self.reporter.phase(pb.UNPACKING)
        if self.signing is not None:
            # CPU work, in a thread while the context and base image are fetched (waits,
            # mostly), rather than beside the build's first steps
            self.prepared = asyncio.ensure_future(asyncio.to_thread(_prepare, self.signing))
        registry, targets = push_targets(pack, env)
        platforms = build_platforms(pack, env)
        # before the context is fetched: a host that cannot run a platform fails at once
        await asyncio.to_thread(check_emulation, platforms)
        which = pack.WhichOneof("build_pack")
        source: dict[str, Any] = {}
        if which == "package_url" and pack.package_url:
            archive = await fetch_url(
                pack.package_url,
                package,
                self.workdir,
                limits,
                pack.context,
                pack.dockerfile_path,
            )
            # not the URL: an uploaded context's is a signed link
            source = {"uri": "", "digest": {"sha256": archive}}
        elif which == "git_package" and pack.git_package.url:
            git = pack.git_package
            url = urlsplit(git.url)
            host = url.hostname or ""
            # never the credentials a clone URL may hold
            bare = url._replace(netloc=host + (f":{url.port}" if url.port else "")).geturl()
            source = {"uri": f"git+{bare}@{git.sha}", "digest": {"sha1": git.sha}}
            with span("context fetch", **{"slipway.context.git": True}):
                await fetch_git(
                    git.url,
                    git.sha,
                    git.private_key,
                    package,
                    self.workdir,
                    limits,
                    self.reporter.log,
                )
        else:
            raise BuildError("the build has no package: neither package_url nor git_package")
        ctx = locate(package, pack.context, pack.dockerfile_path)
        build_args = {arg.name: arg.value for arg in pack.build_args if arg.name}
        dockerfile_text = await asyncio.to_thread(_read_head, ctx.dockerfile)
        needs = bases_per_platform(dockerfile_text, build_args, pack.target, platforms)
        bases = needs.bases

        pull_auth: dict[str, Credentials] = {}
        final = parse_image_ref(bases.final) if bases.final else None
        if final is not None and pack.base_image.username:
            pull_auth[final.registry] = Credentials(
                pack.base_image.username, pack.base_image.password
            )
        if pack.pull_token and pack.registry:
            pull_auth.setdefault(pack.registry.lower(), Credentials("$token", pack.pull_token))
        await self.reporter.phase(
            pb.PULLING, pull_metadata=self._pull_metadata(bases.final, final, pull_auth)
        )
        if has_stage_of_only_from(dockerfile_text):
            self.local_bases = [image for image in needs.platforms
                                if parse_image_ref(image).registry == "localhost"]
        for image, wanted in needs.platforms.items():
            # a localhost/ name is never pulled: one look at it will do
            if parse_image_ref(image).registry == "localhost":
                await self._pull(image, pull_auth, strict=pack.pull, platform=wanted[0])
                await self._check_platforms(image, wanted, platforms)
                continue
            for platform in wanted:
                pulled = await self._pull(image, pull_auth, strict=pack.pull,
                                          platform=platform)
                # a pulled image is the one platform asked for (a single-arch image is
                # pulled whatever the platform); a local copy must have them all
                await self._check_platforms(image, [platform] if pulled else wanted,
                                            platforms)

        await self.reporter.phase(pb.BUILDING)
        secrets_dir = self.workdir / "secrets"
        cache_repo = await self._registry_cache(registry, bases.images, len(platforms))
        secrets = await asyncio.to_thread(_write_secrets, pack, secrets_dir)
        spec = BuildSpec(
            context_dir=ctx.directory,
            dockerfile=ctx.dockerfile,
            tags=targets,
            build_args=build_args,
            target=pack.target,
            pull_auth=pull_auth,
            insecure=any(
                env.registry_is_insecure(parse_image_ref(i).registry) for i in bases.images
            ),
            no_cache=pack.no_cache,
            pull=pack.pull,
            labels={label.name: label.value for label in pack.labels if label.name},
            secrets=secrets,
            cache_repo=cache_repo,
            cache_auth=push_credentials(pack) if cache_repo else None,
            keep_layers=bool(cache_repo),
            platforms=platforms,
            # not a list's platforms (buildah adds each to the list as it builds it) nor
            # a build's secrets (their files go with the build step): those push during it
            cache_push_after_end=env.cache_push_after_end and len(platforms) <= 1
            and not secrets,
        )
        if len(platforms) > 1:
            # the directory's random part may hold "_", which a reference may not have
            # next to "-" or at its end ("slipway-build-_b1jrvkd"): letters and digits only
            unique = re.sub(r"[^a-z0-9]+", "-", self.workdir.name.lower()).strip("-")
            self.manifest = f"localhost/slipway-manifest-{unique}"
            spec = replace(spec, manifest=self.manifest)
            await self.reporter.log(f"Building for {', '.join(platforms)} (one manifest list)")
        else:
            self.built_images.extend(targets)
        if self.signing is not None:
            self.under_way = UnderWay(commits_each_step(spec, env.layer_cache))
            self.signing_work = functools.partial(
                self._before_build, registry, platforms, needs, pull_auth, spec.pull)
            if self.with_sbom and not spec.manifest:
                self.final_commit = FinalCommit(targets[0])
        try:
            image_id = await self._build(spec)
            if self.built_id is not None:
                self.built_id.set_result(image_id)
        except BuildError:
            self.build_step_ended = True
            raise
        finally:  # only the build step reads them
            if self.built_id is not None and not self.built_id.done():
                self.built_id.cancel()  # the SBOM started early gives up
            await asyncio.to_thread(shutil.rmtree, secrets_dir, True)
        self.build_step_ended = True
        if self.signing is not None:
            self._before_push(image_id, platforms, registry, needs)

        await self.reporter.phase(pb.PUSHING)
        creds = push_credentials(pack)
        insecure = env.registry_is_insecure(registry)
        digests: list[str] = []
        for target in targets:
            with span("push", **{"slipway.target": target}):
                if spec.manifest:
                    digests.append(
                        await self.runtime.push_manifest(image_id, target, creds, insecure))
                else:
                    digests.append(await self.runtime.push(image_id, target, creds, insecure))
        if len(set(digests)) > 1:
            await self.reporter.log(f"note: the tags were pushed with different digests {digests}")
        what = f" (a manifest list of {', '.join(platforms)})" if spec.manifest else ""
        await self.reporter.log(f"Pushed {', '.join(targets)} as {digests[0]}{what}")
        if self.bases_used is not None:
            from slipway.worker.signing import Pushed

            self.pushed = Pushed(
                registry=registry, repository=self.repository,
                digest=digests[0], tags=[t.rsplit(":", 1)[1] for t in targets],
                platforms=platforms, dockerfile=pack.dockerfile_path or "Dockerfile",
                target=pack.target, build_args=build_args, source=source,
                bases=await self.bases_used, started=self.started,
                executor=f"{self.env.container_runtime} on {socket.gethostname()}")
        return digests[0]

    async def _registry_cache(self, registry: str, bases: list[str], platforms: int) -> str:
        """The cache repository this build uses, "" for none; says why not when the
        cache is on but cannot be used."""
        pack, env = self.pack, self.env
        if pack.no_cache:
            return ""
        cache_repo = cache_repository(env, registry, self.repository)
        if not cache_repo:
            return ""
        if platforms > 1 and env.registry_is_insecure(registry):
            # buildah pushes a multi-platform build's cache over HTTPS whatever
            # --tls-verify says, and so fails the build on a plain-HTTP registry
            await self.reporter.log(
                f"cache unavailable: {registry} is a plain-HTTP registry, where buildah "
                "cannot push a multi-platform build's cache; building without it"
            )
            return ""
        remote = {parse_image_ref(b).registry for b in bases} - {"localhost"}
        if env.registry_is_insecure(registry) and any(
            not env.registry_is_insecure(r) for r in remote
        ):
            # the build's --tls-verify=false would cover the base images' registries too
            await self.reporter.log(
                f"cache unavailable: {registry} is an insecure registry and the base "
                "images come from a verified one; building without it"
            )
            return ""
        with span("cache probe", **{"slipway.registry": registry}):
            reason = await probe(registry, env.registry_is_insecure(registry))
        if reason:
            await self.reporter.log(f"cache unavailable: {reason}; building without it")
            return ""
        await self.reporter.log(f"Registry cache: {cache_repo}")
        return cache_repo

    async def _build(self, spec: BuildSpec) -> str:
        """Build (a span per step, worker/tracing.py); a build that fails on its
        registry cache runs again without it (the steps it built are kept: the second run
        reuses them)."""
        steps = StepSpans(spec.cache_repo)
        steps.begin()
        try:
            return await self._build_steps(spec, steps)
        except BaseException:
            steps.end(failed=True)
            raise
        finally:
            steps.end()

    async def _build_steps(self, spec: BuildSpec, steps: StepSpans) -> str:
        watch = CacheWatch(self.reporter.log, spec.cache_repo)

        async def line(text: str) -> None:
            steps.line(text)
            if self.under_way is not None and self.under_way.line(text):
                self._start_signing_work()
            if self.final_commit is not None and self.final_commit.line(text):
                self._sbom_at_commit()
            await watch.line(text)

        try:
            image_id = await self.runtime.build(spec, line)
        except CacheUnavailable as exc:
            self._forget_step_images(watch)
            reason = str(exc).removeprefix("Error: ").strip()
            await self.reporter.log(f"{UNAVAILABLE_SAID}{reason}; building again without it")
            steps.no_lookups()
            spec = replace(spec, cache_repo="", cache_auth=None)
            watch = CacheWatch(self.reporter.log)
            try:
                image_id = await self.runtime.build(spec, line)
            except BuildError:
                self._forget_step_images(watch)
                raise
        except BuildError:
            self._forget_step_images(watch)
            raise
        self._forget_step_images(watch)
        if summary := watch.summary():
            await self.reporter.log(summary)
        # a build whose every step came from the registry cache has nothing to add to it
        self.cache_push_after_end = (self.runtime.cache_push_pending
                                     and watch.from_registry < watch.total_steps)
        self.step_images = watch.step_ids
        if self.cache_push_after_end:
            await self.reporter.log(
                f"Registry cache: the steps go to {spec.cache_repo} once the build ends")
        return image_id

    def _forget_step_images(self, watch: CacheWatch) -> None:
        """The clean-up removes the cache images the build pulled and, unless LAYER_CACHE
        keeps them, the step images the build committed (those of a finished build too:
        a multi-stage build's other stages lead to no image that removes them)."""
        if not self.env.layer_cache:
            self.built_images.extend(i for i in watch.committed_ids
                                     if i not in self.built_images)
        self.pulled_images.extend(n for n in watch.pulled_names if n not in self.pulled_images)

    async def _check_platforms(self, image: str, wanted: list[str],
                               requested: tuple[str, ...]) -> None:
        """Fail the build, as the user's error, when the base image lacks one of the
        platforms `wanted` of it (before any step is built: base_platforms.py)."""
        wanted = [p for p in wanted if p]
        if not wanted:
            return  # built for the host's platform: whatever the image is, as before
        offered = await self.runtime.image_platforms(image)
        if not offered:
            return  # the runtime cannot tell: it says so itself when it builds
        missing = [p for p in wanted if not offers(offered, p)]
        if missing:
            raise BuildError(missing_platform_message(image, missing, offered, requested))

    async def _pull(
        self,
        image: str,
        pull_auth: dict[str, Credentials],
        *,
        strict: bool = False,
        platform: str = "",
    ) -> bool:
        """Pull a base image (for `platform`, when the build names one); when that fails,
        a local copy will do, unless `strict` (the build's --pull). Whether it pulled
        (False: the local copy is used)."""
        ref = parse_image_ref(image)
        if strict and ref.registry == "localhost":
            raise BuildError(
                f"--pull: the base image {image} is local only (localhost/ names are in no "
                "registry), so it cannot be pulled; build without --pull, or push it to a "
                "registry and use that name"
            )
        looked = time.time()
        present = await self.runtime.image_exists(image)
        if ref.registry == "localhost":
            # localhost/ names are local by convention: there is nothing to pull from
            # (a pull would ask a registry at https://localhost/v2/)
            if not present:
                raise BuildError(
                    f"base image {image} is not on this worker's host: localhost/ names "
                    "are local images, never pulled; build it on the host first, or push "
                    "it to a registry and use that name")
            await self.reporter.log(f"Using local image {image}")
            trace = tracing.CURRENT.get()
            if trace is not None:  # the base "pulled" from the host's store: a look only
                trace.record("base pull", looked, time.time(),
                             **{"slipway.image": image, "slipway.pulled": False})
            return False
        try:
            with span("base pull", **{"slipway.image": image, "slipway.platform": platform}):
                await self.runtime.pull(
                    image,
                    pull_auth.get(ref.registry),
                    self.env.registry_is_insecure(ref.registry),
                    platform,
                )
        except BuildError as exc:
            if present and not strict:
                await self.reporter.log(f"Could not pull {image}; using the local copy")
                return False
            for_platform = f" for {platform}" if platform else ""
            raise BuildError(f"could not pull base image {image}{for_platform}: {exc}") from None
        if not present and image not in self.pulled_images:
            self.pulled_images.append(image)
        return True

    @staticmethod
    def _pull_metadata(
        written: str | None, ref: ImageRef | None, pull_auth: dict[str, Credentials]
    ) -> pb.SetPhaseRequest.PullMetadata:
        if written is None or ref is None:
            return pb.SetPhaseRequest.PullMetadata()
        name = written.split("@", 1)[0]
        if ":" in name.rsplit("/", 1)[-1]:
            name = name.rsplit(":", 1)[0]
        creds = pull_auth.get(ref.registry)
        return pb.SetPhaseRequest.PullMetadata(
            registry_url=ref.registry,
            base_image=name,
            base_image_tag=ref.digest or ref.tag,
            pull_username=creds.username if creds else "",
        )


@dataclass(frozen=True)
class BaseNeeds:
    bases: BaseImages  # as the first platform's build sees them (the pull metadata's)
    # each base image -> the platforms it must offer, in order ("" alone: the host's)
    platforms: dict[str, list[str]]


def bases_per_platform(text: str, build_args: dict[str, str], target: str,
                       platforms: tuple[str, ...]) -> BaseNeeds:
    """The base images of each platform's build: a FROM line may name one per platform
    (`FROM img:${TARGETARCH}`), or pin one (`FROM --platform=$BUILDPLATFORM img`)."""
    build_platform = host_platform()
    needs: dict[str, list[str]] = {}
    first: BaseImages | None = None
    for platform in platforms or ("",):
        predefined = {**platform_args(build_platform, "BUILD"),
                      **platform_args(platform or build_platform)}
        bases = base_images(text, build_args, target, predefined)
        first = first or bases
        for image in bases.images:
            wanted = (pinned_platform(bases.pinned.get(image, "")) or platform) if platform else ""
            listed = needs.setdefault(image, [])
            if wanted not in listed:
                listed.append(wanted)
    assert first is not None
    return BaseNeeds(first, needs)


def _write_secrets(pack: pb.BuildPack, directory: Path) -> dict[str, Path]:
    """Each build secret in a file only the worker's user reads, outside the context
    (the runtime mounts it for the RUN steps that ask: --secret id=ID,src=FILE)."""
    files: dict[str, Path] = {}
    for index, secret in enumerate(pack.secrets):
        if not SECRET_ID.fullmatch(secret.name):  # a manager that is not slipway's
            raise BuildError(f"build secret id {secret.name[:64]!r} is not valid: 1-128 "
                             "letters, digits, '_', '.' or '-'")
        # numbered, not named by the id: an id is never part of a path
        files[secret.name] = write_private_file(directory / str(index), secret.value)
    return files


def _make_sbom(files: dict[str, bytes], name: str) -> dict[str, Any]:
    from slipway.signing.sbom import make_sbom

    return make_sbom(files, name)


def _prepare(signing: pb.BuildPack.Signing) -> SigningKey:
    """In a thread, with the signing modules' imports (worker/signing.py prepare)."""
    from slipway.worker.signing import prepare

    return prepare(signing)


def _read_head(path: Path, limit: int = 1024 * 1024) -> str:
    """The Dockerfile's text (its first MiB is plenty to find the FROM lines)."""
    with path.open("rb") as f:
        return f.read(limit).decode("utf-8", "replace")


async def run_build(pack: pb.BuildPack, env: WorkerEnvironment, reporter: Reporter) -> None:
    await Build(pack, env, reporter).run()


__all__ = ["Build", "run_build"]
