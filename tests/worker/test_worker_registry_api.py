"""The worker's own registry calls (worker/registry_api.py), against a real docker-registry:
anonymous over plain HTTP, htpasswd (Basic), Bearer tokens from a token service, HTTPS
verified with a CA from certs.d, registries.conf's entries, and the host's auth file. An
attachment pushed through it reads back byte for byte, with skopeo too; no credential
shows in an error."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from support.registry import Registry, run_registry
from support.registry_token import token_service

from slipway.signing.oci_layout import Layer, artifact, digest_of
from slipway.worker import registries_conf, registry_api
from slipway.worker.attach import Attacher
from slipway.worker.errors import BuildError
from slipway.worker.registry_api import RegistryClient
from slipway.worker.runtimes.base import Credentials, auth_json

LAYERS = [Layer("application/vnd.dev.cosign.simplesigning.v1+json", b'{"payload": 1}',
                {"dev.cosignproject.cosign/signature": "c2ln"})]
SUBJECT = "sha256:" + "ab" * 32


@pytest.fixture
def quiet_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with no auth file, registries.conf or certs.d of the host's."""
    monkeypatch.setattr(registries_conf, "SYSTEM_DROP_INS", tmp_path / "none.d")
    monkeypatch.setattr(registries_conf, "SYSTEM_FILE", tmp_path / "none.conf")
    monkeypatch.setattr(registry_api, "CERTS_DIRS", (tmp_path / "certs.d",))
    registry_api._tls_context.cache_clear()
    return {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}


def skopeo_raw(reference: str, *args: str) -> bytes:
    shown = subprocess.run(["skopeo", "inspect", "--raw", *args, f"docker://{reference}"],
                           capture_output=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


async def test_an_attachment_reads_back_byte_for_byte(
    registry: Registry, quiet_host: dict[str, str]
) -> None:
    name = f"{registry.host}/demo/app"
    async with RegistryClient(name, None, True, quiet_host) as client:
        client.reserve_uploads(2)
        tag = await Attacher(client).attach(SUBJECT, "sig", LAYERS)
        raw = await client.manifest(tag)
        assert await client.manifest(digest_of(raw)) == raw
        # the reserved upload sessions were the ones used: none is left to cancel
        assert client._sessions == []
    assert tag == f"sha256-{'ab' * 32}.sig"
    assert raw == artifact(LAYERS).manifest
    assert skopeo_raw(f"{name}:{tag}", "--tls-verify=false") == raw
    manifest = json.loads(raw)
    assert manifest["layers"][0]["annotations"] == dict(LAYERS[0].annotations)


async def test_the_subject_comes_when_it_is_known(
    registry: Registry, quiet_host: dict[str, str]
) -> None:
    async def subject() -> tuple[int, str]:
        return 1234, "application/vnd.docker.distribution.manifest.v2+json"

    async with RegistryClient(f"{registry.host}/demo/app", None, True, quiet_host) as client:
        tag = await Attacher(client).attach(SUBJECT, "att", LAYERS, subject())
        manifest = json.loads(await client.manifest(tag))
    assert manifest["subject"] == {"mediaType": "application/vnd.docker.distribution"
                                   ".manifest.v2+json", "digest": SUBJECT, "size": 1234}


async def test_unused_reserved_uploads_are_cancelled(
    registry: Registry, quiet_host: dict[str, str]
) -> None:
    async with RegistryClient(f"{registry.host}/demo/app", None, True, quiet_host) as client:
        client.reserve_uploads(3)
        await client.push(artifact(LAYERS), "one")
        left = list(client._sessions)
    assert len(left) == 1
    data = b"late"
    async with httpx.AsyncClient() as raw:  # the registry knows the session no more
        late = await raw.put(left[0].copy_merge_params({"digest": digest_of(data)}),
                             content=data)
    assert late.status_code == 404 and "BLOB_UPLOAD_UNKNOWN" in late.text


async def test_a_reserved_upload_the_registry_dropped_is_replaced(
    registry: Registry, quiet_host: dict[str, str]
) -> None:
    async with RegistryClient(f"{registry.host}/demo/app", None, True, quiet_host) as client:
        client.reserve_uploads(2)
        assert client._reserving is not None
        await client._reserving
        async with httpx.AsyncClient() as raw:  # as a registry expiring them would
            for url in client._sessions:
                assert (await raw.delete(url)).status_code == 204
        await client.push(artifact(LAYERS), "v1")
        assert await client.manifest("v1") == artifact(LAYERS).manifest


async def test_basic_auth_with_the_push_credentials(
    auth_registry: Registry, quiet_host: dict[str, str]
) -> None:
    assert auth_registry.username and auth_registry.password
    name = f"{auth_registry.host}/demo/app"
    creds = Credentials(auth_registry.username, auth_registry.password)
    async with RegistryClient(name, creds, True, quiet_host) as client:
        await client.push(artifact(LAYERS), "signed")
    wrong = Credentials(auth_registry.username, "not-the-password-4f1e")
    for refused in (None, wrong):
        async with RegistryClient(name, refused, True, quiet_host) as client:
            with pytest.raises(BuildError) as failed:
                await client.push(artifact(LAYERS), "signed")
        assert "401" in str(failed.value)
        assert "not-the-password-4f1e" not in str(failed.value)


async def test_bearer_tokens_for_the_repository_from_the_registrys_challenge(
    quiet_host: dict[str, str]
) -> None:
    with token_service({"builder": "tok-secret-91c2"}) as tokens, \
            run_registry(token=tokens) as registry:
        name = f"{registry.host}/team/app"
        creds = Credentials("builder", "tok-secret-91c2")
        async with RegistryClient(name, creds, True, quiet_host) as client:
            tag = await Attacher(client).attach(SUBJECT, "sig", LAYERS)
            assert await client.manifest(tag) == artifact(LAYERS).manifest
        assert ("builder", "repository:team/app:pull,push", tokens.service) in tokens.requests
        # without credentials the token grants nothing; with wrong ones there is none
        for refused in (None, Credentials("builder", "wrong-5d0a")):
            async with RegistryClient(name, refused, True, quiet_host) as client:
                with pytest.raises(BuildError) as failed:
                    await client.push(artifact(LAYERS), "other")
            assert "wrong-5d0a" not in str(failed.value)
            assert "tok-secret-91c2" not in str(failed.value)


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[tuple[Registry, trustme.CA]]:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    for blob in issued.cert_chain_pems:
        with chain.open("ab") as f:
            f.write(blob.bytes())
    issued.private_key_pem.write_to_path(str(key))
    with run_registry(tls=(chain, key)) as registry:
        yield registry, ca


async def test_https_verified_with_the_registrys_ca_from_certs_d(
    tls_registry: tuple[Registry, trustme.CA], tmp_path: Path, quiet_host: dict[str, str]
) -> None:
    registry, ca = tls_registry
    name = f"{registry.host}/demo/app"
    async with RegistryClient(name, None, False, quiet_host) as client:
        with pytest.raises(BuildError, match="cannot reach the registry"):
            await client.push(artifact(LAYERS), "v1")  # no CA for it: refused
    certs = tmp_path / "certs.d" / registry.host
    certs.mkdir(parents=True)
    ca.cert_pem.write_to_path(str(certs / "ca.crt"))
    registry_api._tls_context.cache_clear()
    async with RegistryClient(name, None, False, quiet_host) as client:
        await client.push(artifact(LAYERS), "v1")
        assert client.base == f"https://{registry.host}"


async def test_an_insecure_registry_is_https_unverified_before_plain_http(
    tls_registry: tuple[Registry, trustme.CA], registry: Registry,
    quiet_host: dict[str, str]
) -> None:
    https, _ = tls_registry
    for reachable, scheme in ((https, "https"), (registry, "http")):
        async with RegistryClient(f"{reachable.host}/demo/app", None, True,
                                  quiet_host) as client:
            await client.push(artifact(LAYERS), "v1")
            assert client.base == f"{scheme}://{reachable.host}"


async def test_registries_conf_insecure_blocked_and_location(
    tls_registry: tuple[Registry, trustme.CA], tmp_path: Path, quiet_host: dict[str, str]
) -> None:
    registry, _ = tls_registry
    conf = tmp_path / "registries.conf"
    env = {**quiet_host, "CONTAINERS_REGISTRIES_CONF": str(conf)}
    conf.write_text(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
                    '[[registry]]\nprefix = "mirror.example.com/demo"\n'
                    f'location = "{registry.host}/moved"\ninsecure = true\n'
                    '[[registry]]\nlocation = "blocked.example.com"\nblocked = true\n')
    async with RegistryClient(f"{registry.host}/demo/app", None, False, env) as client:
        await client.push(artifact(LAYERS), "v1")  # unverified: insecure = true
    async with RegistryClient("mirror.example.com/demo/app", None, False, env) as client:
        await client.push(artifact(LAYERS), "v2")
    assert skopeo_raw(f"{registry.host}/moved/app:v2", "--tls-verify=false") == (
        artifact(LAYERS).manifest)
    async with RegistryClient("blocked.example.com/demo/app", None, False, env) as client:
        blocked = re.escape("registries.conf blocks blocked.example.com")
        with pytest.raises(BuildError, match=blocked):
            await client.push(artifact(LAYERS), "v1")


async def test_without_push_credentials_the_hosts_auth_file_and_helpers_count(
    auth_registry: Registry, tmp_path: Path, quiet_host: dict[str, str]
) -> None:
    assert auth_registry.username and auth_registry.password
    creds = Credentials(auth_registry.username, auth_registry.password)
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(auth_json({f"{auth_registry.host}/demo": creds}))
    name = f"{auth_registry.host}/demo/app"
    env = {**quiet_host, "REGISTRY_AUTH_FILE": str(auth_file)}
    async with RegistryClient(name, None, True, env) as client:
        await client.push(artifact(LAYERS), "from-auth-file")
    # a credential helper the auth file names for the registry
    helper = tmp_path / "bin" / "docker-credential-slipwaytest"
    helper.parent.mkdir()
    helper.write_text("#!/bin/sh\nread registry\n"
                      f"printf '{{\"Username\": \"%s\", \"Secret\": \"%s\"}}' "
                      f"'{creds.username}' '{creds.password}'\n")
    helper.chmod(0o755)
    auth_file.write_text(json.dumps({"credHelpers": {auth_registry.host: "slipwaytest"}}))
    env["PATH"] = f"{helper.parent}:{env['PATH']}"
    async with RegistryClient(name, None, True, env) as client:
        await client.push(artifact(LAYERS), "from-helper")
