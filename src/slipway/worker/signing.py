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

from slipway.domain.names import parse_image_ref
from slipway.protocol import buildman_pb2 as pb
from slipway.signing import dsse, keys, provenance, sigstore
from slipway.signing.oci_layout import Layer
from slipway.worker.attach import Attacher, manifest_media_type
from slipway.worker.errors import BuildError
from slipway.worker.process import LineSink
from slipway.worker.runtimes.base import Credentials

SBOM_PREDICATE_TYPE = "https://cyclonedx.org/bom"
LIST_TYPES = ("application/vnd.oci.image.index.v1+json",
              "application/vnd.docker.distribution.manifest.list.v2+json")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def signing_secrets(signing: pb.BuildPack.Signing) -> list[str]:
    """What of the signing settings the reports must never show."""
    values = [signing.passphrase]
    values += [ln for ln in signing.private_key.splitlines() if len(ln) >= 16]
    return [v for v in values if v]


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
        return keys.load(signing.private_key, signing.passphrase, "the build's signing key")
    except keys.SigningKeyError as exc:
        raise BuildError(f"signing: {exc}") from None


async def attest(signing: pb.BuildPack.Signing, key: keys.SigningKey, pushed: Pushed,
                 workdir: Path,
                 creds: Credentials | None, insecure: bool, env: Mapping[str, str],
                 log: LineSink,
                 export: Callable[[str], Awaitable[dict[str, Any]]] | None = None
                 ) -> dict[str, Any]:
    """Sign and attach; the summary for the manager. BuildError when anything fails
    (the caller decides whether that fails the build: Signing.required). `export`
    gives the SBOM of a platform's image ("" alone: the one image), made before the
    push; None: no SBOM."""
    attacher = Attacher(workdir, pushed.name, pushed.registry, creds, insecure, env)
    size, top = await attacher.raw_manifest(pushed.digest)
    top_type = manifest_media_type(top)
    # (digest, platform, size, media type): the list first, then its instances
    images: list[tuple[str, str, int, str]] = [(pushed.digest, "", size, top_type)]
    if top_type in LIST_TYPES:
        for entry in top.get("manifests", []):
            plat = entry.get("platform") or {}
            name = "/".join(p for p in (plat.get("os"), plat.get("architecture"),
                                        plat.get("variant")) if p)
            images.append((entry["digest"], name, int(entry.get("size", 0)),
                           str(entry.get("mediaType", ""))))

    signed = []
    pushes = []
    for digest, platform, _, _ in images:
        sig = sigstore.sign_image(key, pushed.name, digest)
        pushes.append(attacher.attach(digest, "sig", [Layer(
            sigstore.PAYLOAD_MEDIA_TYPE, sig.payload,
            {sigstore.SIGNATURE_ANNOTATION: sig.signature})]))
        signed.append({"digest": digest, **({"platform": platform} if platform else {})})
    # the signatures go up while the statements are made (each skopeo its own process)
    signatures = asyncio.gather(*pushes)
    try:
        summary = await _attestations(signing, key, pushed, attacher, images, log, export)
    finally:
        await asyncio.gather(signatures, return_exceptions=True)
    await signatures  # a failed signature push fails here
    await log(f"Signed {pushed.name}@{pushed.digest}"
              + (f" and its {len(images) - 1} platform images" if len(images) > 1 else ""))
    return {**summary, "signed": signed}


async def _attestations(signing: pb.BuildPack.Signing, key: keys.SigningKey, pushed: Pushed,
                        attacher: Attacher, images: list[tuple[str, str, int, str]],
                        log: LineSink,
                        export: Callable[[str], Awaitable[dict[str, Any]]] | None
                        ) -> dict[str, Any]:
    """The provenance and SBOM of each image, signed and pushed in `.att`."""
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
    for digest, platform, _, _ in per_image:
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
                continue
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
    pushes = [attacher.attach(digest, "att", attached[digest], size, media)
              for digest, _, size, media in per_image]
    if len(images) > 1:  # the list's .att: every platform's
        pushes.append(attacher.attach(
            pushed.digest, "att", [layer for layers in attached.values() for layer in layers],
            images[0][2], images[0][3]))
    await asyncio.gather(*pushes)
    what = f"SLSA provenance ({len(envelopes)} statement{'s' if len(envelopes) > 1 else ''})"
    if sboms:
        counts = ", ".join(str(len(s["document"].get("components", []))) for s in sboms)
        what += f" and a CycloneDX SBOM ({counts} components)"
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
    instance's; [] when it cannot be asked (the provenance then names the local one)."""
    ref = parse_image_ref(image)
    attacher = Attacher(workdir / "bases", "", ref.registry, creds, insecure, env)
    tls = [f"--tls-verify={'false' if insecure else 'true'}"]
    try:
        text = await attacher.skopeo_raw(*tls, f"docker://{image}")
    except BuildError:
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


__all__ = ["Pushed", "attest", "signing_secrets"]


