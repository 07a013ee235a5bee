"""The registry's HTTP API (the OCI distribution spec), for what the worker reads and puts
beside an image it pushed: a manifest read, and artifacts (blobs, then their manifest
under a tag). One HTTP client for all of a build's calls: a skopeo process per call cost
0.1-0.3 s each on a loaded machine, and a small build's signing was mostly that.

It reaches the registry as the container tools would: the name's registries.conf entry
(`location`, `insecure`, `blocked`: registries_conf.endpoint); a verified registry over
HTTPS with the system's CAs plus /etc/containers/certs.d/HOST (and /etc/docker/certs.d:
`*.crt` CAs, `*.cert`/`*.key` client certificates); an insecure one over HTTPS without
verification, else plain HTTP; the build's push credentials, else the host's auth files
(registry_auth.py), as Basic or as the Bearer token the registry's challenge asks for,
scoped to the repository. Nothing secret goes into an error: a failure names the
registry's status and its own message."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from slipway.signing.oci_layout import OCI_MANIFEST, Artifact, digest_of
from slipway.worker import registries_conf
from slipway.worker.errors import BuildError
from slipway.worker.registry_auth import Challenge, basic, bearer_token, host_credentials
from slipway.worker.registry_auth import parse_challenge as parse
from slipway.worker.runtimes.base import Credentials

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    OCI_MANIFEST,
    "application/vnd.docker.distribution.manifest.v2+json",
)
CERTS_DIRS = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))
TIMEOUT = httpx.Timeout(120.0, connect=20.0)
DOCKER_HUB_API = "registry-1.docker.io"


def tls_context(registry: str) -> ssl.SSLContext:
    """The system's CAs (SSL_CERT_FILE/SSL_CERT_DIR when set) and the registry's own
    certs.d: what containers/image verifies a registry with."""
    return _tls_context(registry, CERTS_DIRS)


@functools.cache
def _tls_context(registry: str, certs_dirs: tuple[Path, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for base in certs_dirs:
        directory = base / registry
        with contextlib.suppress(OSError):
            for ca in sorted(directory.glob("*.crt")):
                context.load_verify_locations(cafile=ca)
            for cert in sorted(directory.glob("*.cert")):
                context.load_cert_chain(cert, cert.with_suffix(".key"))
    return context


class RegistryClient:
    """Calls to the repository `name` (registry/repository). Use as `async with`."""

    def __init__(self, name: str, creds: Credentials | None, insecure: bool,
                 environ: Mapping[str, str] | None = None) -> None:
        self.endpoint = registries_conf.endpoint(name, environ)
        self.name = name
        self.creds = creds
        self.insecure = insecure or self.endpoint.insecure
        self.environ = environ
        self.base = ""  # scheme://registry, once the registry answered
        self._auth: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None
        self._opened: asyncio.Task[None] | None = None
        self._uploads: dict[str, asyncio.Future[None]] = {}
        self._reserving: asyncio.Future[None] | None = None
        self._sessions: list[httpx.URL] = []  # upload sessions opened ahead, unused

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pending = [f for f in (self._opened, self._reserving, *self._uploads.values())
                   if f is not None]
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self.base and self._sessions:  # the registry's, not left open
            with contextlib.suppress(Exception):
                await asyncio.gather(*(self._request("DELETE", str(url), "cancelling")
                                       for url in self._sessions))
        if self._client is not None:
            await self._client.aclose()

    @property
    def repository(self) -> str:
        return self.endpoint.repository

    def open(self) -> asyncio.Task[None]:
        """Reach the registry and authenticate (once; a task, to start it early)."""
        if self._opened is None:
            self._opened = asyncio.ensure_future(self._open())
        return self._opened

    async def _open(self) -> None:
        if self.endpoint.blocked:
            raise BuildError(f"registries.conf blocks {self.endpoint.registry}")
        registry = self.endpoint.registry
        verify: ssl.SSLContext | bool = False
        if not self.insecure:
            try:
                verify = await asyncio.to_thread(tls_context, registry)
            except (OSError, ssl.SSLError) as exc:
                raise BuildError(f"the TLS settings for {registry} (certs.d) cannot be "
                                 f"used: {exc}") from None
        # Docker Hub's name is not its API's host (as containers/image knows)
        host = DOCKER_HUB_API if registry in ("docker.io", "index.docker.io") else registry
        self._client = httpx.AsyncClient(verify=verify, timeout=TIMEOUT)
        if self.creds is None:
            self.creds = await host_credentials(self.endpoint.name, self.environ)
        answer: httpx.Response | None = None
        last: Exception | None = None
        for scheme in ("https", "http") if self.insecure else ("https",):
            try:
                answer = await self._client.get(f"{scheme}://{host}/v2/")
            except httpx.TransportError as exc:
                last = exc
                continue
            self.base = f"{scheme}://{host}"
            break
        if answer is None:
            raise BuildError(f"cannot reach the registry {registry}: "
                             f"{last or type(last).__name__}")
        if answer.status_code == 401:
            await self._authenticate(parse(answer.headers.get("www-authenticate", "")))

    async def _authenticate(self, challenge: Challenge | None) -> None:
        assert self._client is not None
        if challenge is not None and challenge.scheme == "bearer":
            scope = f"repository:{self.repository}:pull,push"
            token = await bearer_token(self._client, challenge, scope, self.creds)
            self._auth = {"Authorization": f"Bearer {token}"}
        elif self.creds is not None:
            self._auth = {"Authorization": basic(self.creds)}

    async def _request(self, method: str, url: str, what: str, **kwargs: Any
                       ) -> httpx.Response:
        """One call (a path on the registry, or a URL it gave), authenticated; once more
        after a 401 whose challenge asks for a new token (an expired one)."""
        await self.open()
        assert self._client is not None
        target = httpx.URL(self.base).join(url)
        headers = dict(kwargs.pop("headers", {}))
        # the credentials go to the registry only, not to a location on another host
        ours = target.host == httpx.URL(self.base).host
        headers.update(self._auth if ours else {})
        try:
            answer = await self._client.request(method, target, headers=headers, **kwargs)
            if answer.status_code == 401 and ours:
                await self._authenticate(parse(answer.headers.get("www-authenticate", "")))
                headers.update(self._auth)
                answer = await self._client.request(method, target, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise BuildError(f"{what}: {type(exc).__name__}: {exc}") from None
        return answer

    async def manifest(self, reference: str) -> bytes:
        """The manifest `reference` (a tag or digest) of the repository, byte for byte; a
        digest's content is checked against it."""
        what = f"reading the manifest {reference}"
        answer = await self._request(
            "GET", f"/v2/{self.repository}/manifests/{reference}", what,
            headers={"Accept": ", ".join(MANIFEST_TYPES)})
        _check(answer, 200, what)
        if reference.startswith("sha256:") and digest_of(answer.content) != reference:
            raise BuildError(f"{what}: the registry's content has another digest")
        return answer.content

    async def has_tags(self) -> bool:
        """Whether the repository has a tag (the first page of its tag list, one entry
        long); False when the registry does not know the repository."""
        what = f"listing the tags of {self.name}"
        answer = await self._request("GET", f"/v2/{self.repository}/tags/list", what,
                                     params={"n": "1"})
        if answer.status_code == 404:
            return False
        _check(answer, 200, what)
        try:
            return bool(answer.json().get("tags"))
        except (ValueError, AttributeError) as exc:
            raise BuildError(f"{what}: the registry's answer is not a tag list") from exc

    def upload(self, blobs: Mapping[str, bytes]) -> list[asyncio.Future[None]]:
        """Start uploading the blobs, each digest once per client (an artifact's blobs can
        go up before its manifest is known; its push waits for them)."""
        for digest, data in blobs.items():
            if digest not in self._uploads:
                self._uploads[digest] = asyncio.ensure_future(
                    self._blob(digest, data, f"uploading {digest} to {self.name}"))
        return [self._uploads[digest] for digest in blobs]

    async def push(self, artifact: Artifact, tag: str) -> str:
        """The artifact's blobs, then its manifest under `tag`; the manifest's digest."""
        what = f"pushing {self.name}:{tag}"
        await asyncio.gather(*self.upload(artifact.blobs))
        answer = await self._request(
            "PUT", f"/v2/{self.repository}/manifests/{tag}", what,
            content=artifact.manifest, headers={"Content-Type": OCI_MANIFEST})
        _check(answer, 201, what)
        return artifact.digest

    def reserve_uploads(self, count: int) -> None:
        """Open `count` upload sessions now (while the image is pushed): each blob then
        takes one PUT after the push, not a POST and a PUT. Those left unused are
        cancelled when the client closes."""
        if count > 0 and self._reserving is None:
            self._reserving = asyncio.ensure_future(self._reserve(count))

    async def _reserve(self, count: int) -> None:
        opened = await asyncio.gather(
            *(self._start_upload("opening an upload") for _ in range(count)),
            return_exceptions=True)
        self._sessions += [url for url in opened if isinstance(url, httpx.URL)]

    async def _start_upload(self, what: str) -> httpx.URL:
        started = await self._request("POST", f"/v2/{self.repository}/blobs/uploads/", what)
        _check(started, 202, what)
        return httpx.URL(self.base).join(started.headers.get("location", ""))

    async def _session(self, what: str) -> tuple[httpx.URL, bool]:
        """A reserved upload session (True), else a new one."""
        if self._reserving is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._reserving)
        if self._sessions:
            return self._sessions.pop(), True
        return await self._start_upload(what), False

    async def _blob(self, digest: str, data: bytes, what: str) -> None:
        """A monolithic upload: a session's location (a POST, or reserved), the bytes
        PUT there; a reserved session the registry dropped meanwhile (it expires them)
        is replaced by a new one."""
        location, reserved = await self._session(what)
        answer = await self._put_blob(location, digest, data, what)
        if reserved and answer.status_code == 404:
            answer = await self._put_blob(await self._start_upload(what), digest, data, what)
        _check(answer, 201, what)

    async def _put_blob(self, location: httpx.URL, digest: str, data: bytes, what: str
                        ) -> httpx.Response:
        return await self._request(
            "PUT", str(location.copy_merge_params({"digest": digest})), what,
            content=data, headers={"Content-Type": "application/octet-stream"})


class RegistryError(BuildError):
    """The registry answered, with another status than the one expected."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _check(answer: httpx.Response, expected: int, what: str) -> None:
    """RegistryError with the registry's status and its own message (its `errors`)."""
    if answer.status_code == expected:
        return
    message = ""
    with contextlib.suppress(ValueError, AttributeError, IndexError, TypeError):
        first = answer.json()["errors"][0]
        message = f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    raise RegistryError(f"{what}: the registry answered {answer.status_code}{message}"[:500],
                        answer.status_code)
