"""Real podman and buildah builds pushed to a real docker-registry, checked with skopeo."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.images import ensure_multiarch_base_image, podman_argv, remove_multiarch_list
from support.registry import Registry

from slipway.worker.emulation import missing_emulation
from slipway.worker.environment import WorkerEnvironment
from slipway.worker.errors import BuildError
from slipway.worker.platform_args import host_platform
from slipway.worker.runtimes import make_runtime
from slipway.worker.runtimes.base import BuildSpec, Credentials, Runtime

pytestmark = pytest.mark.podman

MULTI_STAGE = """\
ARG BASE=localhost/slipway-base:latest
FROM ${BASE} AS builder
ARG GREETING=hello
RUN echo "$GREETING from the builder" > /greeting
FROM ${BASE}
COPY --from=builder /greeting /greeting
COPY file.txt /file.txt
RUN cat /greeting /file.txt
RUN test "$(cat /greeting)" = "bonjour from the builder"
"""


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


def runtime_for(
    name: str, tmp_path: Path, registries: tuple[str, ...] = ()
) -> tuple[Runtime, Lines]:
    env = WorkerEnvironment(
        token="t", server="127.0.0.1:1", container_runtime=name, insecure_registries=registries
    )
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    lines = Lines()
    return make_runtime(env, work, lines), lines


def skopeo_digest(ref: str, creds: tuple[str, str] | None = None) -> str:
    argv = ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}"]
    if creds:
        argv += ["--creds", f"{creds[0]}:{creds[1]}"]
    out = subprocess.run([*argv, f"docker://{ref}"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "file.txt").write_text("file from the context\n")
    return ctx


@pytest.mark.parametrize("name", ["podman", "buildah"])
async def test_multi_stage_build_with_args_pushes_both_tags(
    name: str, tmp_path: Path, base_image: str, registry: Registry
) -> None:
    runtime, lines = runtime_for(name, tmp_path, (registry.host,))
    ctx = context(tmp_path, MULTI_STAGE)
    tags = [f"{registry.host}/ns/{name}-app:v1", f"{registry.host}/ns/{name}-app:latest"]
    spec = BuildSpec(ctx, ctx / "Dockerfile", tags, build_args={"GREETING": "bonjour"})
    image_id = await runtime.build(spec)
    digests = [await runtime.push(image_id, tag, None, True) for tag in tags]
    try:
        assert digests[0].startswith("sha256:") and digests[0] == digests[1]
        for tag in tags:
            assert skopeo_digest(tag) == digests[0]
        # the build's own output streamed line by line
        assert any(line.startswith("STEP 1/") or "STEP 1/" in line for line in lines.lines)
        assert "bonjour from the builder" in lines.lines
        assert "file from the context" in lines.lines
    finally:
        await runtime.remove_images(tags)
    assert not await runtime.image_exists(tags[0])


@pytest.mark.parametrize("name", ["podman", "buildah"])
async def test_failing_run_reports_the_runtimes_message(
    name: str, tmp_path: Path, base_image: str
) -> None:
    runtime, lines = runtime_for(name, tmp_path)
    ctx = context(tmp_path, f"FROM {base_image}\nRUN echo about to fail && exit 3\n")
    with pytest.raises(BuildError) as err:
        await runtime.build(BuildSpec(ctx, ctx / "Dockerfile", ["localhost/slipway-test/fail:1"]))
    message = str(err.value)
    assert "exit 3" in message and "exit status 3" in message
    assert "about to fail" in lines.lines


@pytest.mark.parametrize("name", ["podman", "buildah"])
async def test_a_failing_step_is_named_by_its_dockerfile_line(
    name: str, tmp_path: Path, base_image: str
) -> None:
    runtime, lines = runtime_for(name, tmp_path)
    ctx = context(tmp_path, f"FROM {base_image}\n# the step that fails\nRUN echo about && \\\n"
                            "    exit 4\n")
    with pytest.raises(BuildError) as err:
        await runtime.build(BuildSpec(ctx, ctx / "Dockerfile", ["localhost/slipway-test/fail:1"]))
    assert str(err.value) == "Dockerfile line 3: RUN echo about && exit 4: exit status 4"
    # the runtime's own error line is the error; it is not sent as output too
    assert not any(line.startswith("Error:") for line in lines.lines), lines.lines


@pytest.mark.parametrize("name", ["podman", "buildah"])
async def test_an_unknown_instruction_is_one_clean_message(
    name: str, tmp_path: Path, base_image: str
) -> None:
    runtime, lines = runtime_for(name, tmp_path)
    ctx = context(tmp_path, f"FROM {base_image}\nRUN echo ok\n\nRUNN echo bad\n")
    with pytest.raises(BuildError) as err:
        await runtime.build(BuildSpec(ctx, ctx / "Dockerfile", ["localhost/slipway-test/bad:1"]))
    assert str(err.value) == "Dockerfile line 4: unknown instruction: RUNN"
    assert not any("imagebuilder" in line for line in lines.lines), lines.lines
    assert "ok" in lines.lines  # the steps' own output is still streamed


async def test_bad_dockerfile_reports_the_runtimes_message(tmp_path: Path, base_image: str) -> None:
    runtime, _ = runtime_for("podman", tmp_path)
    ctx = context(tmp_path, f"FROM {base_image}\nFROBNICATE everything\n")
    with pytest.raises(BuildError, match=r"(?i)frobnicate"):
        await runtime.build(BuildSpec(ctx, ctx / "Dockerfile", ["localhost/slipway-test/bad:1"]))


@pytest.mark.parametrize("name", ["podman", "buildah"])
async def test_refused_push_reports_the_registrys_answer(
    name: str, tmp_path: Path, base_image: str, auth_registry: Registry
) -> None:
    runtime, _ = runtime_for(name, tmp_path, (auth_registry.host,))
    tag = f"{auth_registry.host}/ns/refused:1"
    with pytest.raises(BuildError) as err:
        await runtime.push(base_image, tag, Credentials("builder", "wrong-password"), True)
    assert "unauthorized" in str(err.value).lower() or "authentication required" in str(err.value)
    assert "wrong-password" not in str(err.value)


async def test_pull_with_credentials_from_an_auth_registry(
    tmp_path: Path, base_image: str, auth_registry: Registry
) -> None:
    assert auth_registry.username and auth_registry.password
    good = Credentials(auth_registry.username, auth_registry.password)
    runtime, _ = runtime_for("podman", tmp_path, (auth_registry.host,))
    source = f"{auth_registry.host}/base/busybox:1"
    digest = await runtime.push(base_image, source, good, True)
    assert skopeo_digest(source, (good.username, good.password)) == digest
    try:
        with pytest.raises(BuildError, match=r"(?i)unauthorized|authentication required"):
            await runtime.pull(source, None, True)
        await runtime.pull(source, good, True)
        assert await runtime.image_exists(source)
        # the auth file the runtime wrote is private to the worker
        auth_files = list((tmp_path / "work" / "auth").glob("*.json"))
        assert auth_files and all(f.stat().st_mode & 0o077 == 0 for f in auth_files)
        entry = json.loads(auth_files[0].read_text())["auths"][auth_registry.host]
        assert "auth" in entry
    finally:
        await runtime.remove_images([source])


async def test_a_local_lists_digest_is_that_of_the_image_the_build_used(
    tmp_path: Path
) -> None:
    """The provenance names the base image a build used (issue 27). From a local manifest
    list whose first image is another platform's, a build for the host used the host's
    image, and a build for that platform the list's entry for it."""
    if host_platform() == "linux/arm64":
        pytest.skip("the list's other platform is arm64, this host's own")
    if missing_emulation(["linux/arm64"]):
        pytest.skip("no QEMU user emulation for arm64 here: install qemu-user-static")
    ensure_multiarch_base_image()
    remove_multiarch_list()  # its images stay; this test makes its own list of them
    images = {"linux/arm64": "localhost/slipway-base:latest-arm64",
              "host": "localhost/slipway-base:latest"}
    digests = {p: subprocess.run(podman_argv("image", "inspect", "--format", "{{.Digest}}",
                                             i), check=True, capture_output=True,
                                 text=True).stdout.strip() for p, i in images.items()}
    listed = f"localhost/slipway-test-list-{tmp_path.name.lower()}"
    subprocess.run(podman_argv("manifest", "create", listed), check=True, capture_output=True)
    try:
        for image in images.values():  # arm64 first
            subprocess.run(podman_argv("manifest", "add", listed, f"containers-storage:{image}"),
                           check=True, capture_output=True)
        runtime, _ = runtime_for("podman", tmp_path)
        assert await runtime.image_digest(listed) == digests["host"]
        assert await runtime.image_digest(listed, "linux/arm64") == digests["linux/arm64"]
    finally:
        subprocess.run(podman_argv("manifest", "rm", listed), capture_output=True)
