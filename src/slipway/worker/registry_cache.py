"""The registry layer cache (docs/layer-cache.md): which cache repository a build uses,
whether its registry answers, whether the repository holds anything to look up, and what
the build's output says was cached.

podman/buildah's `--cache-from REPO` looks each step's key up as `REPO:<cache key>` before
running it, and `--cache-to REPO` pushes one image per built step there, so a worker with
an empty store reuses the steps of earlier builds made on other workers.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from slipway.worker.environment import WorkerEnvironment
from slipway.worker.errors import BuildError, CacheUnavailable
from slipway.worker.process import LineSink
from slipway.worker.runtimes.base import Credentials

log = logging.getLogger("slipway.worker")

PROBE_TIMEOUT = httpx.Timeout(5.0)
REPOSITORY_PLACEHOLDER = "{repository}"
# what the worker logs when the build will look no step up (worker/tracing.py reads it)
EMPTY_CACHE_SAID = "Registry cache: empty, no step is looked up"
UNAVAILABLE_SAID = "cache unavailable: "

# the lines of podman's and buildah's build output that worker/tracing.py and
# worker/milestones.py read too. A multi-stage build's steps start with their stage:
# "[1/2] STEP 1/3: FROM ...", and a multi-platform build's with the platform:
# "[linux/arm64] STEP 1/2: ..."
STEP_LINE = re.compile(r"^((?:\[[a-z0-9/]+\] ){0,2}STEP \d+/\d+): (.*)$")
_USING_CACHE = re.compile(r"^--> Using cache ([0-9a-f]{12,64})\s*$")
_PULLED = re.compile(r"^--> Cache pulled from remote (\S+)\s*$")
COMMITTED_LINE = re.compile(r"^--> ([0-9a-f]{11,64})\s*$")
_TAGGED = re.compile(r"^Successfully tagged (\S+)\s*$")
# a step's push to the cache (tracing.py's `cache push` span, CachePushWatch's count)
PUSHING_CACHE_LINE = re.compile(r"^--> Pushing cache (\S+)\s*$")
# the runtime's warnings, which may come between a step's line and its first output
_WARNING = re.compile(r'^(?:time="[^"]*" level=(?:warning|info) |WARN\[|\[Warning\])')
# buildah's own words when --cache-to (or a pull from --cache-from) failed the build
_CACHE_FAILURE = re.compile(r"failed (?:pushing|pulling) cache", re.I)


def cache_repository(env: WorkerEnvironment, registry: str, repository: str) -> str:
    """`registry/path` of this build's cache repository; "" when the environment turns
    the registry cache off for it (REGISTRY_CACHE, REGISTRY_CACHE_EXCLUDE) or the
    runtime has none (docker)."""
    if not env.registry_cache or env.container_runtime == "docker":
        return ""
    if any(fnmatch.fnmatchcase(repository, pattern) for pattern in env.registry_cache_exclude):
        return ""
    path = env.registry_cache_repository.replace(REPOSITORY_PLACEHOLDER, repository)
    return f"{registry}/{path.strip('/')}"


def is_cache_failure(error_text: str) -> bool:
    """Whether a failed build failed on its cache (buildah fails a build whose
    --cache-to push fails), not on the Dockerfile."""
    return bool(_CACHE_FAILURE.search(error_text))


async def probe(registry: str, insecure: bool) -> str:
    """"" when the registry answers at all; else why not. Any HTTP answer (401 too) or a
    TLS complaint counts: the runtime, with its own CAs and the build's credentials,
    decides the rest, and a cache it then cannot use only costs a rebuild."""
    schemes = ("https", "http") if insecure else ("https",)
    reason = ""
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, verify=not insecure) as client:
        for scheme in schemes:
            try:
                await client.get(f"{scheme}://{registry}/v2/")
                return ""
            except httpx.ConnectError as exc:
                if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in str(exc):
                    return ""
                reason = f"cannot connect to {registry}: {exc}"
            except httpx.HTTPError as exc:
                reason = f"{registry} did not answer: {exc or type(exc).__name__}"
    return reason


async def cache_has_tags(cache_repo: str, creds: Credentials | None, insecure: bool,
                         environ: Mapping[str, str] | None = None) -> bool | None:
    """Whether the cache repository holds any tag, from one look at its tag list: a build
    passes `--cache-from` only then, as buildah would otherwise ask the registry for the
    first step's key and find nothing. None when the answer tells nothing (a registry
    that does not let these credentials list tags may still serve the cache): the build
    looks its steps up as before. CacheUnavailable when the registry fails (5xx): it
    would fail the lookups and the pushes as well."""
    from slipway.worker.registry_api import RegistryClient, RegistryError

    try:
        async with RegistryClient(cache_repo, creds, insecure, environ) as client:
            return await client.has_tags()
    except RegistryError as exc:
        if exc.status >= 500:
            raise CacheUnavailable(str(exc)) from None
        log.info("registry cache: %s", exc)
    except BuildError as exc:
        log.info("registry cache: %s", exc)
    return None


@dataclass
class CacheWatch:
    """Passes the build's output on and notes, from buildah's lines, the steps that came
    from a cache (a clear line for each, a count at the end), the cache images pulled
    into the store, and the step images the build committed itself (its clean-up)."""

    sink: LineSink
    cache_repo: str = ""
    cached_steps: list[str] = field(default_factory=list)
    from_registry: int = 0
    pulled_names: list[str] = field(default_factory=list)
    committed_ids: list[str] = field(default_factory=list)
    step_ids: list[str] = field(default_factory=list)  # each step's image, built or reused
    total_steps: int = 0
    _step: str = ""
    _instruction: str = ""
    _reused: str = ""
    _pulled_in_step: bool = False

    async def line(self, text: str) -> None:
        await self.sink(text)
        stripped = text.strip()
        if match := STEP_LINE.match(stripped):
            self._step, self._instruction = match[1], match[2]
            self._reused, self._pulled_in_step = "", False
            if not match[2].upper().startswith("FROM "):  # nothing to cache there
                self.total_steps += 1
        elif match := _PULLED.match(stripped):
            self.from_registry += 1
            self._pulled_in_step = True
            self._remember(match[1])
        elif match := _USING_CACHE.match(stripped):
            self._reused = match[1]
            if self._step:
                self.cached_steps.append(self._step)
                where = "registry cache" if self._pulled_in_step else "local layers"
                step = self._step.replace("STEP", "Step")
                await self.sink(f"{step} cached ({where}): {self._instruction[:200]}")
        elif match := COMMITTED_LINE.match(stripped):
            self.step_ids.append(match[1])
            if not (self._reused and self._reused.startswith(match[1])):
                self.committed_ids.append(match[1])
        elif (match := _TAGGED.match(stripped)) and self._in_cache(match[1]):
            self._remember(match[1])

    def _in_cache(self, reference: str) -> bool:
        return bool(self.cache_repo) and reference.startswith(f"{self.cache_repo}:")

    def _remember(self, name: str) -> None:
        if name not in self.pulled_names:
            self.pulled_names.append(name)

    def summary(self) -> str:
        if not self.total_steps:
            return ""
        count = len(self.cached_steps)
        if not count:
            return f"Layer cache: no step of {self.total_steps} was cached"
        steps = ", ".join(step.replace("STEP ", "") for step in self.cached_steps)
        return (
            f"Layer cache: {count} of {self.total_steps} steps cached ({steps}; "
            f"{self.from_registry} from the registry cache)"
        )


class StepWouldRun(Exception):
    """A step of the build is no longer among the step images it left: the cache push's
    run of the build would run it again, so that run is not made (or is stopped)."""


@dataclass
class CachePushWatch:
    """Reads the output of the build run again to push its steps to the registry cache
    (ContainersRuntime.push_cache). Each step must be found among the step images the
    build left (`--> Using cache`): one that is not is stopped as it starts, rather than
    run a second time. Counts the steps pushed."""

    pushed: int = 0
    _step: str = ""  # a step whose first line of output is still to come

    async def line(self, text: str) -> None:
        stripped = text.strip()
        if match := STEP_LINE.match(stripped):
            self._step = "" if match[2].upper().startswith("FROM ") else match[1]
        elif self._step and stripped and not _WARNING.match(stripped):
            # a step that prints nothing shows it ran only at its cache push: stopped
            # there, before the next step starts
            if not _USING_CACHE.match(stripped):
                raise StepWouldRun(f"{self._step} is not among the build's step images")
            self._step = ""
        elif PUSHING_CACHE_LINE.match(stripped):
            self.pushed += 1


__all__ = ["CachePushWatch", "CacheWatch", "StepWouldRun", "cache_has_tags",
           "cache_repository", "is_cache_failure", "probe"]
