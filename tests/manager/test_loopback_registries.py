"""The embedded default pushes to a registry on loopback without a config, as docker does:
admitted (any port of 127.0.0.0/8, ::1, localhost) and reached over plain HTTP by the
worker. A config file keeps its explicit lists unless it says LOOPBACK_REGISTRIES: true.
Other registries keep the rules they had."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.api_app import api_env, client

from slipway.config.loader import default_config, parse_config
from slipway.domain.loopback import is_loopback_registry
from slipway.executors.local.config import LocalExecutorConfig
from slipway.manager.worker_env import worker_environment
from slipway.worker.environment import load_environment

REPO = "/api/v1/repository/acme/web/build/"
ARCHIVE = "https://example.com/context.tar.gz"


@pytest.mark.parametrize(("registry", "loopback"), [
    ("127.0.0.1:5000", True),
    ("127.3.4.5", True),
    ("[::1]:5000", True),
    ("localhost:5000", True),
    ("LOCALHOST:5000", True),
    ("localhost", True),
    ("10.0.0.1:5000", False),
    ("128.0.0.1:5000", False),
    ("[::2]:5000", False),
    ("localhost.example.com:5000", False),
    ("registry.example.com", False),
])
def test_loopback_is_read_from_the_name_alone(registry: str, loopback: bool) -> None:
    assert is_loopback_registry(registry) is loopback


def test_the_embedded_default_allows_loopback_and_a_config_file_does_not() -> None:
    embedded = default_config()
    configured = parse_config({}).config
    assert embedded.LOOPBACK_REGISTRIES and not configured.LOOPBACK_REGISTRIES
    for registry in ("127.0.0.1:5000", "[::1]:5000", "localhost:5000"):
        assert embedded.registry_allowed(registry) and embedded.registry_is_plain_http(registry)
        assert not configured.registry_allowed(registry)
        assert not configured.registry_is_plain_http(registry)
    assert not embedded.registry_allowed("registry.example.com")
    # the default SERVER_HOSTNAME, localhost:8080, is one too: it used to fail at the push
    assert embedded.registry_is_plain_http(embedded.SERVER_HOSTNAME)
    assert not configured.registry_is_plain_http(configured.SERVER_HOSTNAME)


async def _start(tmp_path: Path, registry: str, **config: object) -> tuple[int, str]:
    async with api_env(tmp_path, **config) as env:
        async with client(env.app, await env.token({"*": "admin"})) as c:
            r = await c.post(REPO, json={"archive_url": ARCHIVE, "registry": registry})
            info = (await c.get("/api/v1/slipway/info")).json()
        assert info["loopback_registries"] is bool(config.get("LOOPBACK_REGISTRIES"))
        builds = await env.store.builds.list_for_repository("acme", "web")
        assert len(builds) == (1 if r.status_code == 201 else 0)
        return r.status_code, r.json().get("error_message", "")


@pytest.mark.parametrize("registry", ["127.0.0.1:5000", "[::1]:5000", "localhost:5000"])
async def test_a_loopback_registry_is_admitted_with_loopback_registries_on(
    tmp_path: Path, registry: str
) -> None:
    assert await _start(tmp_path, registry, LOOPBACK_REGISTRIES=True) == (201, "")


async def test_other_registries_keep_their_rules_with_loopback_registries_on(
    tmp_path: Path,
) -> None:
    assert await _start(tmp_path, "10.0.0.1:5000", LOOPBACK_REGISTRIES=True) == (
        400, "registry: '10.0.0.1:5000' is not a registry this server pushes to; allowed: "
        "registry.example.com:5000, other.example.com and any registry on loopback "
        "(127.0.0.1, ::1, localhost) (an administrator adds others to ALLOWED_REGISTRIES)")


async def test_a_config_file_without_it_refuses_a_loopback_registry(tmp_path: Path) -> None:
    assert await _start(tmp_path, "127.0.0.1:5000") == (
        400, "registry: '127.0.0.1:5000' is not a registry this server pushes to; allowed: "
        "registry.example.com:5000, other.example.com (an administrator adds others to "
        "ALLOWED_REGISTRIES)")


def _worker_env(registry: str, **config: object) -> dict[str, str]:
    app_config = parse_config({"INSECURE_REGISTRIES": ["plain.example.com"], **config}).config
    executor = LocalExecutorConfig(EXECUTOR="local")
    return worker_environment(app_config, executor, token="t", build_id="b", registry=registry)


def test_the_worker_reaches_the_builds_loopback_registry_over_plain_http() -> None:
    env = _worker_env("127.0.0.1:5000", LOOPBACK_REGISTRIES=True)
    assert env["INSECURE_REGISTRIES"] == "plain.example.com,127.0.0.1:5000"
    worker = load_environment({**env, "SERVER": "127.0.0.1:1"})
    # base images on any loopback registry too; podman's local store is not a registry
    assert worker.registry_is_insecure("127.0.0.1:5000")
    assert worker.registry_is_insecure("[::1]:5001")
    assert worker.registry_is_insecure("plain.example.com")
    assert not worker.registry_is_insecure("localhost")
    assert not worker.registry_is_insecure("registry.example.com")


def test_without_loopback_registries_the_worker_environment_is_as_before() -> None:
    env = _worker_env("127.0.0.1:5000")
    assert env["INSECURE_REGISTRIES"] == "plain.example.com"
    assert "INSECURE_LOOPBACK" not in env
    worker = load_environment({**env, "SERVER": "127.0.0.1:1"})
    assert not worker.registry_is_insecure("127.0.0.1:5000")
