"""Signatures and attestations (docs/signing.md): the public key builds are signed with,
and a build's signature status, provenance and SBOM."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from slipway.api.auth import Principal, Role, require
from slipway.api.errors import ApiError, not_found
from slipway.api.routes_builds import ERRORS, PREFIX, Deps, Namespace, RepoName, load_build
from slipway.signing.keyring import SigningUnavailable, keyring_of

router = APIRouter(tags=["signing"], responses=ERRORS)
KINDS = ("provenance", "sbom")


@router.get("/api/v1/slipway/signing/public-key", response_class=PlainTextResponse,
            responses={404: {"description": "signing is off (no SIGNING)"}})
async def public_key(
    d: Deps,
    namespace: Annotated[str | None, Query(
        description="the namespace whose key (its own, else the manager's)")] = None,
) -> PlainTextResponse:
    """The PEM public key images are signed with; no token needed (it is public)."""
    if d.config.SIGNING is None:
        raise not_found("signing is off on this server (SIGNING is not configured)")
    try:
        key = keyring_of(d.config.SIGNING).for_namespace(namespace or "")
    except SigningUnavailable:
        raise ApiError(503, "the signing key cannot be read; see the server's log",
                       "signing_unavailable") from None
    return PlainTextResponse(key.public_pem, media_type="application/x-pem-file")


async def _document(d: Deps, namespace: str, repository: str, build_id: str
                    ) -> dict[str, Any]:
    await load_build(d, namespace, repository, build_id)
    store = d.store.attestations
    if store is None:
        raise not_found("in Quay mode a build's signatures and attestations are kept in "
                        "its Quay repository only (cosign's sha256-<digest>.sig/.att tags)")
    document = await store.get(build_id)
    if document is None:
        raise not_found(f"build {build_id} has no signatures or attestations (it has not "
                        "completed, or SIGNING was off)")
    return document


@router.get(PREFIX + "/{build_id}/signing")
async def signing_status(namespace: Namespace, repository: RepoName, build_id: str, d: Deps,
                         _p: Annotated[Principal, Depends(require(Role.READ))]
                         ) -> JSONResponse:
    """What was signed (each digest), by which key, and which attestations are there;
    `{"signed": false, "reason"}` for a build with none (signing off, not complete): a
    status, not a missing thing, so the build page asks it of every build."""
    if d.store.attestations is not None:
        await load_build(d, namespace, repository, build_id)
        if await d.store.attestations.get(build_id) is None:
            return JSONResponse({"signed": False, "error": None, "reason": (
                "nothing was signed: the build has not completed, or SIGNING was off")})
    document = await _document(d, namespace, repository, build_id)
    if document.get("error"):
        return JSONResponse({"signed": False, "error": document["error"]})
    return JSONResponse({
        "signed": True,
        "key_id": document.get("key_id"),
        "digests": document.get("signed", []),
        "provenance": [{"digest": p.get("digest"), "platform": p.get("platform", "")}
                       for p in document.get("provenance", [])],
        "sbom": [{"digest": s.get("digest"), "platform": s.get("platform", "")}
                 for s in document.get("sbom") or []],
        **({"sbom_error": document["sbom_error"]} if document.get("sbom_error") else {}),
    })


@router.get(PREFIX + "/{build_id}/provenance")
async def provenance(namespace: Namespace, repository: RepoName, build_id: str, d: Deps,
                     _p: Annotated[Principal, Depends(require(Role.READ))],
                     statement: Annotated[bool, Query(
                         description="the decoded in-toto statements instead of the "
                         "signed DSSE envelopes")] = False) -> JSONResponse:
    """The build's SLSA provenance: one DSSE envelope per platform image."""
    document = await _document(d, namespace, repository, build_id)
    items = document.get("provenance") or []
    if not items:
        raise not_found(f"build {build_id} has no provenance")
    if statement:
        return JSONResponse([json.loads(base64.b64decode(i["envelope"]["payload"]))
                             for i in items])
    return JSONResponse([i["envelope"] for i in items])


@router.get(PREFIX + "/{build_id}/sbom")
async def sbom(namespace: Namespace, repository: RepoName, build_id: str, d: Deps,
               _p: Annotated[Principal, Depends(require(Role.READ))],
               platform: Annotated[str | None, Query(
                   description="os/arch of a multi-platform build's image")] = None
               ) -> JSONResponse:
    """The CycloneDX SBOM of the built image (of `platform`'s, else the first)."""
    document = await _document(d, namespace, repository, build_id)
    items = [s for s in document.get("sbom") or []
             if platform is None or s.get("platform") == platform]
    if not items:
        raise not_found(f"build {build_id} has no SBOM"
                        + (f" for {platform}" if platform else ""))
    return JSONResponse(items[0]["document"])
