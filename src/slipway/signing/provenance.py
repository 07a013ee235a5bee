"""SLSA v1 provenance (slsa.dev/provenance/v1) of one build, as an in-toto Statement v1.

Build type `https://slipway.dev/build/container-image/v1` (docs/signing.md): the external
parameters are what the user asked for (source, Dockerfile path, tags, platforms, build
arg names; their values only when the operator opts in, since a build arg is often where
a token is passed), the resolved dependencies the source and the base images by the
digest actually built from. Build secrets never appear: only their ids would, and not
even those are recorded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://slipway.dev/build/container-image/v1"


@dataclass(frozen=True)
class Subject:
    name: str  # registry/repository (what the digest was pushed to)
    digest: str  # sha256:...
    platform: str = ""  # os/arch of a list's instance; "" for the list or a single image


@dataclass(frozen=True)
class Base:
    image: str  # as the Dockerfile names it
    digest: str  # sha256:... of what the build used ("" when unknown)
    platform: str = ""


@dataclass(frozen=True)
class BuildFacts:
    builder_id: str
    build_id: str
    started_on: str  # RFC 3339
    finished_on: str
    executor: str  # the worker's runtime and host
    source: Mapping[str, Any]  # {"uri": ..., "digest": {"sha1"|"sha256": ...}}
    dockerfile: str
    target: str
    tags: Sequence[str]
    platforms: Sequence[str]
    build_args: Mapping[str, str] = field(repr=False)
    build_arg_values: bool = False
    bases: Sequence[Base] = ()


def _digest_set(digest: str) -> dict[str, str]:
    algorithm, _, value = digest.partition(":")
    return {algorithm: value} if value else {}


def statement(facts: BuildFacts, subjects: Sequence[Subject]) -> dict[str, Any]:
    args: dict[str, Any]
    if facts.build_arg_values:
        args = {"buildArgs": dict(facts.build_args)}
    else:
        args = {"buildArgNames": sorted(facts.build_args)}
    external: dict[str, Any] = {
        "source": dict(facts.source),
        "dockerfile": facts.dockerfile,
        "tags": list(facts.tags),
        "platforms": list(facts.platforms),
        **args,
    }
    if facts.target:
        external["target"] = facts.target
    dependencies: list[dict[str, Any]] = []
    source = facts.source
    if source.get("digest"):
        dependencies.append({**({"uri": source["uri"]} if source.get("uri") else
                                {"name": "context"}),
                             "digest": dict(source["digest"])})
    for base in facts.bases:
        entry: dict[str, Any] = {"uri": f"pkg:docker/{base.image}", "name": base.image,
                                 "digest": _digest_set(base.digest)}
        if base.platform:
            entry["annotations"] = {"platform": base.platform}
        dependencies.append(entry)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": s.name, "digest": _digest_set(s.digest),
             **({"annotations": {"platform": s.platform}} if s.platform else {})}
            for s in subjects
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": facts.builder_id},
                "metadata": {
                    "invocationId": facts.build_id,
                    "startedOn": facts.started_on,
                    "finishedOn": facts.finished_on,
                },
                "byproducts": [{"name": "executor",
                                "annotations": {"executor": facts.executor}}],
            },
        },
    }
