"""After the push: sign every pushed digest, attach a signed SLSA provenance and (unless
turned off) an SBOM, in the image's repository (docs/signing.md). What was done goes to the
manager with COMPLETE (SetPhaseRequest.attestations)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from slipway.domain.names import parse_image_ref
from slipway.protocol import buildman_pb2 as pb
from slipway.signing import dsse, keys, provenance, sigstore
from slipway.signing.oci_layout import Layer
from slipway.worker.attach import Attacher, manifest_media_type
from slipway.worker.errors import BuildError
from slipway.worker.process import LineSink
from slipway.worker.registry_api import RegistryClient
from slipway.worker.runtimes.base import Credentials, auth_json, write_private_file

SBOM_PREDICATE_TYPE = "https://cyclonedx.org/bom"
LIST_TYPES = ("application/vnd.oci.image.index.v1+json",
              "application/vnd.docker.distribution.manifest.list.v2+json")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Pushed:
    """What the build pushed, and what the provenance says of how."""

    registry: str
    repository: str
    digest: str  # the tags' digest: the list's for a multi-platform build
    tags: list[str]
    platforms: tuple[str, ...]
    dockerfile: str
    target: str
    build_args: Mapping[str, str] = field(repr=False)
    source: dict[str, Any]
    bases: list[provenance.Base]
    started: datetime
    executor: str = field(default_factory=socket.gethostname)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


def prepare(signing: pb.BuildPack.Signing) -> keys.SigningKey:
    """The decrypted key (scrypt: a fraction of a second), the SBOM's library imported:
    run in a thread while the build runs, so that none of it waits after the push."""
    if signing.sbom:
        import slipway.signing.sbom  # noqa: F401  (its library takes a second to import)
    try:
        key = keys.load(signing.private_key, signing.passphrase, "the build's signing key")
    except keys.SigningKeyError as exc:
        raise BuildError(f"signing: {exc}") from None
    # a process's first ECDSA signature sets OpenSSL's up (3 ms here): now, not after the push
    key.private.sign(b"", ec.ECDSA(hashes.SHA256()))
    return key


def blob_count(platforms: int, sbom: bool) -> int:
    """How many blobs `attest` uploads for a build of `platforms` platforms: each
    artifact's config and layers (the list's .att reuses its images' layers)."""
    att = 2 + (1 if sbom else 0)  # config, provenance, SBOM
    if platforms <= 1:
        return 2 + att  # and the .sig: config, signature
    return 2 * (platforms + 1) + platforms * att + 1


async def attest(signing: pb.BuildPack.Signing, key: keys.SigningKey, pushed: Pushed,
                 client: RegistryClient, log: LineSink,
                 export: Callable[[str], Awaitable[dict[str, Any]]] | None = None
                 ) -> dict[str, Any]:
    """Sign and attach, through `client` (the pushed repository's); the summary for the
    manager. BuildError when anything fails (the caller decides whether that fails the
    build: Signing.required). `export` gives the SBOM of a platform's image ("" alone: the
    one image), made while the image was pushed; None: no SBOM."""
    attacher = Attacher(client)
    # the manifest is read for its size and media type (the .att's subject) and, for a
    # list, its images: what does not need it goes up meanwhile (the list's .sig, and
    # one image's .att blobs)
    reading = asyncio.ensure_future(attacher.raw_manifest(pushed.digest))
    top_subject = asyncio.ensure_future(_subject_of(reading))
    # (digest, platform, the size and media type of its manifest): the list first, then
    # its images; a single-platform build pushed one image
    images: list[tuple[str, str, asyncio.Future[tuple[int, str]]]] = [
        (pushed.digest, "", top_subject)]
    signed: list[dict[str, str]] = []
    pushes: list[asyncio.Future[str]] = []

    def sign(digest: str, platform: str) -> None:
        sig = sigstore.sign_image(key, pushed.name, digest)
        pushes.append(asyncio.ensure_future(attacher.attach(digest, "sig", [Layer(
            sigstore.PAYLOAD_MEDIA_TYPE, sig.payload,
            {sigstore.SIGNATURE_ANNOTATION: sig.signature})])))
        signed.append({"digest": digest, **({"platform": platform} if platform else {})})

    try:
        sign(pushed.digest, "")
        if len(pushed.platforms) > 1:
            _, top = await reading
            if manifest_media_type(top) not in LIST_TYPES:
                raise BuildError(f"{pushed.name}@{pushed.digest} is not a manifest list")
            for entry in top.get("manifests", []):
                plat = entry.get("platform") or {}
                name = "/".join(p for p in (plat.get("os"), plat.get("architecture"),
                                            plat.get("variant")) if p)
                images.append((entry["digest"], name, _known(
                    int(entry.get("size", 0)), str(entry.get("mediaType", "")))))
                sign(entry["digest"], name)
        # the signatures go up while the statements are made, each .att once it is ready
        summary = await _attestations(signing, key, pushed, attacher, images, log, export,
                                      pushes)
        await asyncio.gather(*pushes)  # a failed push fails here
    finally:
        pending: list[asyncio.Future[Any]] = [reading, top_subject, *pushes]
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await log(f"Signed {pushed.name}@{pushed.digest}"
              + (f" and its {len(images) - 1} platform images" if len(images) > 1 else ""))
    return {**summary, "signed": signed}


async def _subject_of(reading: Awaitable[tuple[int, dict[str, Any]]]) -> tuple[int, str]:
    size, manifest = await reading
    return size, manifest_media_type(manifest)


def _known(size: int, media_type: str) -> asyncio.Future[tuple[int, str]]:
    known: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    known.set_result((size, media_type))
    return known


async def _attestations(signing: pb.BuildPack.Signing, key: keys.SigningKey, pushed: Pushed,
                        attacher: Attacher,
                        images: list[tuple[str, str, asyncio.Future[tuple[int, str]]]],
                        log: LineSink,
                        export: Callable[[str], Awaitable[dict[str, Any]]] | None,
                        pushes: list[asyncio.Future[str]]) -> dict[str, Any]:
    """The provenance and SBOM of each image, signed; each image's `.att` push started
    (in `pushes`) as soon as its layers are made."""
    finished = rfc3339(datetime.now(UTC))
    facts = provenance.BuildFacts(
        builder_id=signing.builder_id or "slipway",
        build_id=signing.build_id,
        started_on=rfc3339(pushed.started),
        finished_on=finished,
        executor=f"{pushed.executor}",
        source=pushed.source,
        dockerfile=pushed.dockerfile,
        target=pushed.target,
        tags=pushed.tags,
        platforms=list(pushed.platforms),
        build_args=pushed.build_args,
        build_arg_values=signing.build_arg_values,
        bases=pushed.bases,
    )
    envelopes: list[dict[str, Any]] = []
    sboms: list[dict[str, Any]] = []
    sbom_error = ""
    per_image = images[1:] if len(images) > 1 else images
    attached: dict[str, list[Layer]] = {}  # digest -> its .att layers
    for digest, platform, subject in per_image:
        subjects = [provenance.Subject(pushed.name, digest, platform)]
        if len(images) > 1:  # the list is a subject of each platform's provenance
            subjects.append(provenance.Subject(pushed.name, pushed.digest))
        bases = [b for b in pushed.bases if not b.platform or b.platform == platform]
        statement = provenance.statement(
            provenance.BuildFacts(**{**facts.__dict__, "bases": bases}), subjects)
        envelope = dsse.sign(key, statement)
        envelopes.append({"platform": platform, "digest": digest, "envelope": envelope})
        attached[digest] = [_att_layer(envelope, provenance.PREDICATE_TYPE)]
        if export is not None:
            from slipway.signing.sbom import for_digest

            try:
                document = for_digest(await export(platform), digest)
            except BuildError as exc:
                if signing.required:
                    raise BuildError(f"SBOM: {exc}") from None
                # best effort: the signatures and provenance are worth keeping
                sbom_error = f"SBOM: {exc}"
                await log(f"warning: no SBOM: {exc}")
                export = None
            else:
                sboms.append({"platform": platform, "digest": digest, "document": document})
                sbom_statement = {
                    "_type": provenance.STATEMENT_TYPE,
                    "subject": [{"name": pushed.name,
                                 "digest": {"sha256": digest.removeprefix("sha256:")}}],
                    "predicateType": SBOM_PREDICATE_TYPE,
                    "predicate": document,
                }
                attached[digest].append(
                    _att_layer(dsse.sign(key, sbom_statement), SBOM_PREDICATE_TYPE))
        pushes.append(asyncio.ensure_future(
            attacher.attach(digest, "att", attached[digest], subject)))
    if len(images) > 1:  # the list's .att: every platform's
        pushes.append(asyncio.ensure_future(attacher.attach(
            pushed.digest, "att", [layer for layers in attached.values() for layer in layers],
            images[0][2])))
    what = f"SLSA provenance ({len(envelopes)} statement{'s' if len(envelopes) > 1 else ''})"
    if sboms:
        counts = ", ".join(str(len(s["document"].get("components", []))) for s in sboms)
        what += f" and a CycloneDX SBOM ({counts} components)"
    await asyncio.gather(*pushes)
    await log(f"Attached {what}")
    return {
        "key_id": key.key_id,
        "provenance": envelopes,
        "sbom": sboms,
        **({"sbom_error": sbom_error} if sbom_error else {}),
    }


async def registry_digests(image: str, creds: Credentials | None, insecure: bool,
                           workdir: Path, env: Mapping[str, str]) -> list[str]:
    """The digests `image` has in its registry now: its manifest's and, for a list, each
    instance's; [] when it cannot be asked (the provenance then names the local one).
    Read with skopeo: a base image is pulled through registries.conf's mirrors too."""
    ref = parse_image_ref(image)
    auth: list[str] = []
    if creds is not None:
        path = write_private_file(workdir / "bases" / "auth.json",
                                  auth_json({ref.registry: creds}))
        auth = ["--authfile", str(path)]
    tls = [f"--tls-verify={'false' if insecure else 'true'}"]
    try:
        proc = await asyncio.create_subprocess_exec(
            "skopeo", "inspect", "--raw", *tls, *auth, f"docker://{image}", env=dict(env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    except FileNotFoundError:
        return []
    text, _ = await proc.communicate()
    if proc.returncode != 0:
        return []
    found = ["sha256:" + hashlib.sha256(text).hexdigest()]
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        found += [str(m["digest"]) for m in json.loads(text).get("manifests", [])]
    return found


def _att_layer(envelope: Mapping[str, Any], predicate_type: str) -> Layer:
    """A layer of the .att manifest, as `cosign attest` writes one."""
    return Layer(dsse.ENVELOPE_MEDIA_TYPE,
                 json.dumps(envelope, separators=(",", ":")).encode(),
                 {"predicateType": predicate_type, sigstore.SIGNATURE_ANNOTATION: ""})


__all__ = ["Pushed", "attest", "registry_digests"]


