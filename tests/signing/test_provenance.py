"""The SLSA provenance statement (signing/provenance.py) and its DSSE envelope
(signing/dsse.py): build argument names only unless the operator opts in, the base images
by digest, and an envelope that verifies only with its key and only unchanged."""

from __future__ import annotations

import base64
import json

import pytest

from slipway.signing import dsse, keys, provenance

FACTS = provenance.BuildFacts(
    builder_id="https://builds.example.com/slipway", build_id="b-1",
    started_on="2026-01-01T00:00:00Z", finished_on="2026-01-01T00:01:00Z",
    executor="podman on host", source={"uri": "git+https://git.example.com/app.git@abc",
                                       "digest": {"sha1": "abc"}},
    dockerfile="Dockerfile", target="", tags=["v1"], platforms=["linux/amd64"],
    build_args={"TOKEN": "s3cret-value", "VERSION": "1.2"},
    bases=[provenance.Base("registry.example.com/base:1", "sha256:" + "cd" * 32)])
SUBJECT = [provenance.Subject("registry.example.com/team/app", "sha256:" + "ab" * 32)]


def test_build_arg_values_only_when_the_operator_opts_in() -> None:
    shown = provenance.statement(FACTS, SUBJECT)
    external = shown["predicate"]["buildDefinition"]["externalParameters"]
    assert external["buildArgNames"] == ["TOKEN", "VERSION"]
    assert "s3cret-value" not in json.dumps(shown)
    opted = provenance.statement(
        provenance.BuildFacts(**{**FACTS.__dict__, "build_arg_values": True}), SUBJECT)
    assert opted["predicate"]["buildDefinition"]["externalParameters"]["buildArgs"] == {
        "TOKEN": "s3cret-value", "VERSION": "1.2"}


def test_dependencies_name_the_source_and_the_base_by_digest() -> None:
    deps = provenance.statement(FACTS, SUBJECT)["predicate"]["buildDefinition"][
        "resolvedDependencies"]
    assert deps == [
        {"uri": "git+https://git.example.com/app.git@abc", "digest": {"sha1": "abc"}},
        {"uri": "pkg:docker/registry.example.com/base:1", "name": "registry.example.com/base:1",
         "digest": {"sha256": "cd" * 32}}]


def test_the_envelope_verifies_with_its_key_only_and_only_unchanged() -> None:
    key, other = keys.generate("one"), keys.generate("two")
    envelope = dsse.sign(key, provenance.statement(FACTS, SUBJECT))
    public = keys.load_public(key.public_pem)
    assert dsse.verify(public, envelope)["subject"][0]["digest"] == {"sha256": "ab" * 32}
    with pytest.raises(ValueError, match="no signature"):
        dsse.verify(keys.load_public(other.public_pem), envelope)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "ef" * 32
    forged = {**envelope, "payload": base64.b64encode(json.dumps(statement).encode()).decode()}
    with pytest.raises(ValueError, match="no signature"):
        dsse.verify(public, forged)
