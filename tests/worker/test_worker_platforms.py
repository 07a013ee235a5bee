"""Base images per platform, the check that they offer every platform built, and the
platform build args' warnings (docs/multi-arch.md); no runtime needed."""

from __future__ import annotations

import json

from slipway.worker.base_platforms import (
    manifest_list_platforms,
    missing_platform_message,
    offers,
)
from slipway.worker.build import bases_per_platform
from slipway.worker.platform_args import hidden_args, platform_args, without_hidden_args
from slipway.worker.runtimes.leftovers import MARKER_ARG

HIDDEN = hidden_args({}, extra=(MARKER_ARG,))


def test_buildahs_warnings_about_the_platform_args_it_set_itself_are_dropped() -> None:
    line = ("[Warning] one or more build args were not consumed: "
            "[TARGETARCH TARGETOS TARGETPLATFORM]")
    assert without_hidden_args(line, HIDDEN) is None
    marker_too = f"[Warning] one or more build args were not consumed: [{MARKER_ARG} TARGETOS]"
    assert without_hidden_args(marker_too, HIDDEN) is None
    missing = ('time="2026-12-06T17:49:56Z" level=warning msg="missing \\"TARGETVARIANT\\" '
               'build argument. Try adding \\"--build-arg TARGETVARIANT=<VALUE>\\" to the '
               'command line"')
    assert without_hidden_args(missing, HIDDEN) is None


def test_a_build_arg_the_user_passed_and_did_not_use_is_still_reported() -> None:
    line = "[Warning] one or more build args were not consumed: [TARGETOS VERSION]"
    assert without_hidden_args(line, HIDDEN) == (
        "[Warning] one or more build args were not consumed: [VERSION]")
    passed = hidden_args({"TARGETOS": "linux"}, extra=(MARKER_ARG,))
    assert without_hidden_args(line, passed) == line
    assert without_hidden_args("STEP 2/3: RUN make", HIDDEN) == "STEP 2/3: RUN make"


def test_platform_args_as_docker_sets_them() -> None:
    assert platform_args("linux/arm/v7") == {
        "TARGETPLATFORM": "linux/arm/v7", "TARGETOS": "linux", "TARGETARCH": "arm",
        "TARGETVARIANT": "v7"}
    assert platform_args("linux/amd64", "BUILD")["BUILDVARIANT"] == ""


def test_each_platform_needs_its_base_and_a_pinned_stage_only_the_build_platform() -> None:
    dockerfile = (
        "ARG BASE=localhost/base\n"
        "FROM --platform=$BUILDPLATFORM localhost/tools:latest AS tools\n"
        "FROM ${BASE}:${TARGETARCH}\n"
        "COPY --from=tools /x /x\n"
        "FROM scratch AS empty\n"
    )
    needs = bases_per_platform(dockerfile, {}, "", ("linux/amd64", "linux/arm64"))
    assert needs.platforms["localhost/base:amd64"] == ["linux/amd64"]
    assert needs.platforms["localhost/base:arm64"] == ["linux/arm64"]
    assert needs.platforms["localhost/tools:latest"] in (["linux/amd64"], ["linux/arm64"])
    assert "scratch" not in needs.platforms
    one = bases_per_platform("FROM localhost/base:latest\n", {}, "", ())
    assert one.platforms == {"localhost/base:latest": [""]}  # the host's, unchecked


def test_a_missing_platform_is_named_with_what_the_image_has_and_the_way_out() -> None:
    assert offers(["linux/arm64/v8"], "linux/arm64")
    assert offers(["linux/arm/v7"], "linux/arm")
    assert not offers(["linux/arm/v6"], "linux/arm/v7")
    assert missing_platform_message(
        "localhost/slipway-base:latest", ["linux/arm64"], ["linux/amd64"],
        ("linux/amd64", "linux/arm64"),
    ) == ("base image localhost/slipway-base:latest has no linux/arm64 variant (it has: "
          "linux/amd64); build for linux/amd64 only, or use a multi-arch base")


def test_a_manifest_lists_platforms() -> None:
    listing = {"manifests": [
        {"platform": {"os": "linux", "architecture": "amd64"}},
        {"platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"platform": {"os": "unknown", "architecture": "unknown"}},  # an attestation
    ]}
    assert manifest_list_platforms(json.dumps(listing)) == ["linux/amd64", "linux/arm/v7"]
