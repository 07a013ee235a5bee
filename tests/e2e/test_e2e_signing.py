"""Signed, attested builds through a real server, a local podman worker and a real
registry (docs/signing.md): the pushed image's sigstore signature is found by skopeo under
a `sigstoreSigned` policy and verifies with the server's public key, a hand-pushed image
and a tag moved to another digest do not; the provenance's DSSE signature verifies with
`cryptography`, names the digest skopeo shows and the base image's real digest, and holds
no build arg value and no trace of the build's secret."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from support.images import (
    dangling_image_without_layers,
    ensure_debian_image,
    ensure_multiarch_base_image,
    remove_multiarch_list,
)
from support.registry import Registry
from support.server import RunningServer, running_server

from slipway.worker.emulation import missing_emulation

pytestmark = pytest.mark.podman

SLIPWAY = Path(sys.executable).parent / "slipway"
PASSPHRASE = "correct horse battery staple"
# Debian's containers/image is built without sigstore (a "Debian-local change"): its
# skopeo finds and reads the signature a sigstoreSigned policy asks for, then refuses to
# check it. Upstream builds verify it: either answer proves the signature is where the
# container tools look for it; `slipway verify` and the checks below verify it.
DEBIAN_DISABLED = "Debian-local change: sigstore disabled"


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def keygen(directory: Path) -> tuple[Path, Path]:
    passphrase = directory / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    made = run(str(SLIPWAY), "signing", "keygen", "--out", str(directory),
               "--passphrase-file", str(passphrase))
    assert made.returncode == 0, made.stderr
    return directory / "cosign.key", passphrase


def policy(tmp: Path, registry: str, public_pem: str) -> tuple[Path, Path]:
    (tmp / "pub.pem").write_text(public_pem)
    path = tmp / "policy.json"
    path.write_text(json.dumps({
        "default": [{"type": "reject"}],
        "transports": {"docker": {registry: [{
            "type": "sigstoreSigned", "keyPath": str(tmp / "pub.pem"),
            "signedIdentity": {"type": "matchRepository"}}]}},
    }))
    registries_d = tmp / "registries.d"
    registries_d.mkdir(exist_ok=True)
    (registries_d / "default.yaml").write_text(
        "default-docker:\n  use-sigstore-attachments: true\n")
    return path, registries_d


def pull_with_policy(ref: str, policy_file: Path, registries_d: Path,
                     into: Path) -> subprocess.CompletedProcess[str]:
    return run("skopeo", "copy", "--src-tls-verify=false", "--policy", str(policy_file),
               "--registries.d", str(registries_d), f"docker://{ref}", f"dir:{into}")


def skopeo_digest(ref: str) -> str:
    shown = run("skopeo", "inspect", "--tls-verify=false", f"docker://{ref}")
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout)["Digest"])


def attachment_blobs(ref: str, into: Path) -> list[bytes]:
    copied = run("skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{into}")
    assert copied.returncode == 0, copied.stderr
    return [p.read_bytes() for p in into.iterdir()]


def dsse_statement(public: ec.EllipticCurvePublicKey, envelope: dict[str, Any]
                   ) -> dict[str, Any]:
    """DSSE v1 by hand: PAE, then the key's ECDSA P-256 SHA-256 signature."""
    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    [signature] = envelope["signatures"]
    public.verify(base64.b64decode(signature["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    statement: dict[str, Any] = json.loads(payload)
    return statement


async def verify_cli(slipway: RunningServer, ref: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, str(SLIPWAY), "verify", ref, "--json",
                                   env={"SLIPWAY_URL": slipway.base_url})


async def test_signed_build_verifies_and_others_do_not(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    nonce = uuid.uuid4().hex
    arg_value, secret_value = f"argvalue-{nonce}", f"secretvalue-{nonce}"
    key_file, passphrase_file = keygen(tmp_path)
    # the base comes from the registry, so it has a registry digest to be named by
    base_ref = f"{registry.host}/base/busybox:1"
    pushed = run("skopeo", "copy", "--dest-tls-verify=false",
                 f"containers-storage:{base_image}", f"docker://{base_ref}")
    assert pushed.returncode == 0, pushed.stderr
    base_digest = skopeo_digest(base_ref)
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        f"FROM {base_ref}\nARG TOKEN_ARG\n"
        "RUN --mount=type=secret,id=token test -s /run/secrets/token && echo $TOKEN_ARG "
        "> /arg\n")
    (tmp_path / "secret.txt").write_text(secret_value)
    ref = f"{registry.host}/demo/signed:v1"
    async with running_server(
        tmp_path, SERVER_HOSTNAME=registry.host, INSECURE_REGISTRIES=[registry.host],
        BUILD_MANAGER=["ephemeral", {"EXECUTORS": [
            {"EXECUTOR": "local", "CONTAINER_RUNTIME": "podman"}]}],
        SIGNING={"KEY_FILE": str(key_file), "PASSPHRASE_FILE": str(passphrase_file)},
    ) as slipway:
        built = await asyncio.to_thread(
            run, str(SLIPWAY), "build", str(tmp_path / "ctx"), "-t", ref,
            "--build-arg", f"TOKEN_ARG={arg_value}",
            "--secret", f"id=token,src={tmp_path / 'secret.txt'}",
            env={"SLIPWAY_URL": slipway.base_url,
                 "SLIPWAY_TOKEN": slipway.server.admin_token or ""})
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr
        [build] = (await slipway.api.get("/api/v1/repository/demo/signed/build/")).json()[
            "builds"]
        assert build["phase"] == "complete"
        path = f"/api/v1/repository/demo/signed/build/{build['id']}"
        public_pem = (await slipway.api.get("/api/v1/slipway/signing/public-key")).text
        status = (await slipway.api.get(f"{path}/signing")).json()
        envelopes = (await slipway.api.get(f"{path}/provenance")).json()
        sbom = (await slipway.api.get(f"{path}/sbom")).json()
        logs = await slipway.logs("demo", "signed", build["id"])

        digest = skopeo_digest(ref)
        assert build["image_digest"] == digest
        assert status["signed"] is True
        assert status["digests"] == [{"digest": digest}]
        public = serialization.load_pem_public_key(public_pem.encode())
        assert isinstance(public, ec.EllipticCurvePublicKey)

        # the provenance: signed, about the pushed digest, from the base's real digest
        [statement] = [dsse_statement(public, e) for e in envelopes]
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
        assert [s["digest"] for s in statement["subject"]] == [
            {"sha256": digest.removeprefix("sha256:")}]
        definition = statement["predicate"]["buildDefinition"]
        assert definition["externalParameters"]["buildArgNames"] == ["TOKEN_ARG"]
        assert definition["externalParameters"]["tags"] == ["v1"]
        bases = [d for d in definition["resolvedDependencies"] if d.get("name") == base_ref]
        assert bases and bases[0]["digest"] == {"sha256": base_digest.removeprefix("sha256:")}
        assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == build["id"]

        # the SBOM: valid CycloneDX 1.6, with the busybox of the base
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom)) is None
        assert [c["name"] for c in sbom["components"]] == ["busybox"]
        assert sbom["metadata"]["component"]["version"] == digest

        # the attachments in the registry: the same envelope, and nothing secret anywhere
        sig_tag = f"{registry.host}/demo/signed:sha256-{digest.removeprefix('sha256:')}"
        blobs = attachment_blobs(f"{sig_tag}.sig", tmp_path / "sig")
        blobs += attachment_blobs(f"{sig_tag}.att", tmp_path / "att")
        assert any(json.dumps(envelopes[0], separators=(",", ":")).encode() == b
                   for b in blobs)
        att_statements = [dsse_statement(public, json.loads(b)) for b in blobs
                          if b.startswith(b'{"payload')]
        assert sorted(s["predicateType"] for s in att_statements) == [
            "https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1"]
        shown = [json.dumps(envelopes), json.dumps(status), json.dumps(sbom), json.dumps(logs),
                 json.dumps(statement), built.stdout, built.stderr]
        for value in (arg_value, secret_value, PASSPHRASE):
            assert all(value not in text for text in shown), value
            assert all(value.encode() not in blob for blob in blobs), value
        key_body = key_file.read_text().splitlines()[2]
        assert all(key_body not in text for text in shown)

        # the container tools under a sigstoreSigned policy, and `slipway verify`
        policy_file, registries_d = policy(tmp_path, registry.host, public_pem)
        signed_pull = pull_with_policy(ref, policy_file, registries_d, tmp_path / "p1")
        assert signed_pull.returncode == 0 or DEBIAN_DISABLED in signed_pull.stderr, (
            signed_pull.stderr)
        verified = await verify_cli(slipway, ref)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert json.loads(verified.stdout)["signed"] is True

        # pushed by hand: no signature
        by_hand = f"{registry.host}/demo/byhand:v1"
        assert run("skopeo", "copy", "--dest-tls-verify=false",
                   f"containers-storage:{base_image}", f"docker://{by_hand}").returncode == 0
        refused = pull_with_policy(by_hand, policy_file, registries_d, tmp_path / "p2")
        assert refused.returncode != 0 and "no signature exists" in refused.stderr
        unverified = await verify_cli(slipway, by_hand)
        assert unverified.returncode == 1 and json.loads(unverified.stdout)["signed"] is False

        # the signed tag moved to another digest: refused as well
        moved = run("skopeo", "copy", "--dest-tls-verify=false",
                    f"docker://{by_hand}", f"docker://{ref}", "--src-tls-verify=false")
        assert moved.returncode == 0, moved.stderr
        assert skopeo_digest(ref) != digest
        refused = pull_with_policy(ref, policy_file, registries_d, tmp_path / "p3")
        assert refused.returncode != 0 and "no signature exists" in refused.stderr
        unverified = await verify_cli(slipway, ref)
        assert unverified.returncode == 1
        # ...while the signed digest itself still verifies
        verified = await verify_cli(slipway, f"{registry.host}/demo/signed@{digest}")
        assert verified.returncode == 0, verified.stdout + verified.stderr


def signing_config(tmp_path: Path) -> dict[str, str]:
    key_file, passphrase_file = keygen(tmp_path)
    return {"KEY_FILE": str(key_file), "PASSPHRASE_FILE": str(passphrase_file)}


def signing_server(tmp_path: Path, registry: Registry, runtime: str = "podman",
                   **signing: object) -> Any:
    """A slipway with a local executor of `runtime`, pushing to `registry`, signing with a
    new key (SIGNING: its settings and `signing`)."""
    return running_server(
        tmp_path, SERVER_HOSTNAME=registry.host, INSECURE_REGISTRIES=[registry.host],
        BUILD_MANAGER=["ephemeral", {"EXECUTORS": [
            {"EXECUTOR": "local", "CONTAINER_RUNTIME": runtime}]}],
        SIGNING={**signing_config(tmp_path), **signing},
    )


async def build_one(slipway: RunningServer, context: Path, *args: str) -> dict[str, Any]:
    built = await asyncio.to_thread(
        run, str(SLIPWAY), "build", str(context), *args,
        env={"SLIPWAY_URL": slipway.base_url,
             "SLIPWAY_TOKEN": slipway.server.admin_token or ""})
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    repository = args[args.index("-t") + 1].split("/", 1)[1].rsplit(":", 1)[0]
    [build] = (await slipway.api.get(f"/api/v1/repository/{repository}/build/")).json()[
        "builds"]
    assert build["phase"] == "complete"
    return dict(build)


async def test_the_sbom_of_a_debian_image_lists_its_dpkg_packages(
    tmp_path: Path, registry: Registry
) -> None:
    debian = ensure_debian_image()
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {debian}\nRUN echo hi > /hi\n")
    ref = f"{registry.host}/demo/debian:v1"
    async with signing_server(tmp_path, registry) as slipway:
        build = await build_one(slipway, tmp_path / "ctx", "-t", ref)
        sbom = (await slipway.api.get(
            f"/api/v1/repository/demo/debian/build/{build['id']}/sbom")).json()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom)) is None
    # what dpkg itself says is installed in the image
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], 4096)
    listed = run("podman", "run", "--rm", "--net", "none", "--ulimit",
                 f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}",
                 debian, "dpkg-query", "-W",
                 "-f", "${Package} ${Version} ${db:Status-Abbrev}\\n")
    assert listed.returncode == 0, listed.stderr
    installed = {tuple(line.split()[:2]) for line in listed.stdout.splitlines()
                 if line.split()[2:3] == ["ii"]}
    debs = {(c["name"], c["version"]) for c in sbom["components"]
            if c.get("purl", "").startswith("pkg:deb/debian/")}
    assert len(installed) > 50 and debs == installed
    [os_entry] = [c for c in sbom["components"] if c["type"] == "operating-system"]
    assert os_entry["name"] == "debian" and os_entry["version"] == "12"


async def test_a_multi_arch_build_signs_the_list_and_each_platform(
    tmp_path: Path, registry: Registry
) -> None:
    """On a host with a dangling image without layers beside the lists (the base's and the
    build's own), where podman 4.3 cannot list the host's images (support/images.py):
    the worker finds each platform's image by its digest in the build's list, for its
    SBOM and for its clean-up (issue 27)."""
    if missing_emulation(["linux/arm64"]):
        pytest.skip("no QEMU user emulation for arm64 here: install qemu-user-static")
    base = ensure_multiarch_base_image()
    try:
        with dangling_image_without_layers():
            (tmp_path / "ctx").mkdir()
            (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {base}\nRUN uname -m > /m\n")
            ref = f"{registry.host}/demo/multi:v1"
            async with signing_server(tmp_path, registry) as slipway:
                build = await build_one(slipway, tmp_path / "ctx", "-t", ref,
                                        "--platform", "linux/amd64,linux/arm64")
                status = (await slipway.api.get(
                    f"/api/v1/repository/demo/multi/build/{build['id']}/signing")).json()
                arm_sbom = (await slipway.api.get(
                    f"/api/v1/repository/demo/multi/build/{build['id']}/sbom",
                    params={"platform": "linux/arm64"})).json()
                path = f"/api/v1/repository/demo/multi/build/{build['id']}"
                public_pem = (await slipway.api.get("/api/v1/slipway/signing/public-key")).text
                envelopes = (await slipway.api.get(f"{path}/provenance")).json()
                for platform in ("linux/amd64", "linux/arm64"):
                    verified = await verify_cli(
                        slipway, f"{registry.host}/demo/multi@" + platform_digest(ref, platform))
                    assert verified.returncode == 0, verified.stdout + verified.stderr
                verified = await verify_cli(slipway, ref)
                assert verified.returncode == 0, verified.stdout + verified.stderr
                # the worker's clean-up, after the end, in the same conditions: each
                # platform's image (its ID: its config's digest, which the push keeps) goes
                for platform in ("linux/amd64", "linux/arm64"):
                    await local_image_gone(config_digest(ref, platform))
    finally:
        remove_multiarch_list()
    list_digest = skopeo_digest_raw(ref)
    assert build["image_digest"] == list_digest
    public = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    statements = [dsse_statement(public, e) for e in envelopes]
    assert len(statements) == 2  # one provenance per platform
    # and one SBOM per platform image, each listing its busybox
    assert sorted(s["platform"] for s in status["sbom"]) == ["linux/amd64", "linux/arm64"]
    assert len(status["digests"]) == 3  # the list and its two images, each signed
    assert [c["name"] for c in arm_sbom["components"]] == ["busybox"]
    assert arm_sbom["metadata"]["component"]["version"] == platform_digest(ref, "linux/arm64")
    by_platform = {s["subject"][0]["annotations"]["platform"]: s for s in statements}
    assert sorted(by_platform) == ["linux/amd64", "linux/arm64"]
    for platform, statement in by_platform.items():
        subjects = {s["digest"]["sha256"] for s in statement["subject"]}
        assert subjects == {platform_digest(ref, platform).removeprefix("sha256:"),
                            list_digest.removeprefix("sha256:")}
    # the policy the container tools apply finds each image's own signature
    policy_file, registries_d = policy(tmp_path, registry.host, public_pem)
    for platform in ("linux/amd64", "linux/arm64"):
        one = f"{registry.host}/demo/multi@{platform_digest(ref, platform)}"
        pulled = pull_with_policy(one, policy_file, registries_d,
                                  tmp_path / platform.replace("/", "-"))
        assert pulled.returncode == 0 or DEBIAN_DISABLED in pulled.stderr, pulled.stderr


def skopeo_digest_raw(ref: str) -> str:
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{ref}"], capture_output=True, timeout=120)
    assert raw.returncode == 0, raw.stderr
    return "sha256:" + hashlib.sha256(raw.stdout).hexdigest()


def config_digest(ref: str, platform: str) -> str:
    """The config digest of the registry's image of `platform`: the local image's ID."""
    name = ref.rsplit(":", 1)[0]
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false",
              f"docker://{name}@{platform_digest(ref, platform)}")
    assert raw.returncode == 0, raw.stderr
    return str(json.loads(raw.stdout)["config"]["digest"]).removeprefix("sha256:")


async def local_image_gone(image_id: str, limit: float = 60.0) -> None:
    """The worker's clean-up removed the local image (a safety limit, not a timing
    test): it reports the end first and cleans up after."""
    deadline = time.monotonic() + limit
    while run("podman", "image", "exists", image_id).returncode == 0:
        assert time.monotonic() < deadline, f"the image {image_id} is still on the host"
        await asyncio.sleep(0.2)


def platform_digest(ref: str, platform: str) -> str:
    raw = run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    for entry in json.loads(raw.stdout)["manifests"]:
        plat = entry["platform"]
        if f"{plat['os']}/{plat['architecture']}" == platform:
            return str(entry["digest"])
    raise AssertionError(f"{ref} has no {platform}")


@pytest.mark.parametrize("required", [True, False], ids=["required", "best-effort"])
async def test_a_failure_to_attest_fails_the_build_only_when_required(
    tmp_path: Path, registry: Registry, base_image: str, required: bool
) -> None:
    """buildah cannot export an image's files, so its SBOM fails: a clear build error when
    SIGNING.REQUIRED, else a warning, with the signature and provenance kept."""
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo x > /x\n")
    ref = f"{registry.host}/demo/buildah:v1"
    async with signing_server(tmp_path, registry, "buildah", REQUIRED=required) as slipway:
        built = await asyncio.to_thread(
            run, str(SLIPWAY), "build", str(tmp_path / "ctx"), "-t", ref,
            env={"SLIPWAY_URL": slipway.base_url,
                 "SLIPWAY_TOKEN": slipway.server.admin_token or ""})
        [build] = (await slipway.api.get("/api/v1/repository/demo/buildah/build/")).json()[
            "builds"]
        path = f"/api/v1/repository/demo/buildah/build/{build['id']}"
        messages = [e["message"] for e in await slipway.logs("demo", "buildah", build["id"])]
        if required:
            assert built.returncode == 1
            assert build["phase"] == "error"
            assert build["error"] == (
                f"{ref.rsplit(':', 1)[0]}@{skopeo_digest(ref)} was pushed, but signing and "
                "attesting it failed: SBOM: CONTAINER_RUNTIME=buildah cannot export an "
                "image's files for its SBOM (SIGNING.REQUIRED is true)")
            return
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr
        assert build["phase"] == "complete"
        assert ("warning: no SBOM: CONTAINER_RUNTIME=buildah cannot export an image's files "
                "for its SBOM") in messages
        status = (await slipway.api.get(f"{path}/signing")).json()
        assert status["signed"] is True and status["sbom"] == []
        assert status["sbom_error"].startswith("SBOM: CONTAINER_RUNTIME=buildah")
        verified = await verify_cli(slipway, ref)
        assert verified.returncode == 0, verified.stdout + verified.stderr
