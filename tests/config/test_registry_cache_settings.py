"""The registry cache's settings (docs/layer-cache.md): executor keys, the worker
environment they become, and the cache repository a build gets from them."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import ValidationError

from slipway.executors.local.config import LocalExecutorConfig
from slipway.worker.environment import WorkerEnvironmentError, load_environment
from slipway.worker.registry_cache import cache_repository

BASE = {"TOKEN": "t", "SERVER": "127.0.0.1:1"}


def test_on_by_default_next_to_the_repository() -> None:
    env = load_environment(BASE)
    assert cache_repository(env, "reg.example.com", "team/app") == (
        "reg.example.com/team/app-cache")


def test_the_image_repository_itself_and_exclusions() -> None:
    env = load_environment({**BASE, "REGISTRY_CACHE_REPOSITORY": "{repository}",
                            "REGISTRY_CACHE_EXCLUDE": "sandbox/*, team/secret"})
    assert cache_repository(env, "quay.example.com", "team/app") == "quay.example.com/team/app"
    assert cache_repository(env, "quay.example.com", "sandbox/x") == ""
    assert cache_repository(env, "quay.example.com", "team/secret") == ""


def test_off_per_executor_and_for_docker() -> None:
    assert cache_repository(load_environment({**BASE, "REGISTRY_CACHE": "false"}),
                            "r", "a/b") == ""
    assert cache_repository(load_environment({**BASE, "CONTAINER_RUNTIME": "docker"}),
                            "r", "a/b") == ""


def test_a_template_without_the_repository_is_refused() -> None:
    with pytest.raises(WorkerEnvironmentError, match=r"does not contain \{repository\}"):
        load_environment({**BASE, "REGISTRY_CACHE_REPOSITORY": "shared/cache"})
    with pytest.raises(ValidationError, match=r"does not contain \{repository\}"):
        LocalExecutorConfig.model_validate(
            {"EXECUTOR": "local", "REGISTRY_CACHE_REPOSITORY": "shared/cache"})


def test_executor_keys_become_the_worker_environment() -> None:
    from slipway.config.loader import parse_config
    from slipway.manager.worker_env import worker_environment

    config = parse_config({}).config
    executor = LocalExecutorConfig.model_validate(
        {"EXECUTOR": "local", "REGISTRY_CACHE_EXCLUDE": ["sandbox/*"]})
    env = worker_environment(config, executor, token="t", build_id="b")
    assert env["REGISTRY_CACHE"] == "true"
    assert env["REGISTRY_CACHE_REPOSITORY"] == "{repository}-cache"
    assert env["REGISTRY_CACHE_EXCLUDE"] == "sandbox/*"
    off = LocalExecutorConfig.model_validate({"EXECUTOR": "local", "REGISTRY_CACHE": False})
    assert worker_environment(config, off, token="t", build_id="b")["REGISTRY_CACHE"] == "false"


def test_insecure_registries_join_the_hosts_registries_conf() -> None:
    """buildah reaches INSECURE_REGISTRIES through registries.conf too (some of its cache
    pushes ignore --tls-verify=false); the host's own settings stay."""
    from slipway.worker.registries_conf import with_insecure

    host = 'unqualified-search-registries = ["registry.example.com"]\n'
    merged = with_insecure(host, ["127.0.0.1:5000", "registry.example.com"])
    assert merged is not None
    parsed = tomllib.loads(merged)
    assert parsed["unqualified-search-registries"] == ["registry.example.com"]
    assert parsed["registry"] == [
        {"location": "127.0.0.1:5000", "insecure": True},
        {"location": "registry.example.com", "insecure": True},
    ]
    # a registry the host already configures keeps the host's entry
    own = '[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = false\n'
    assert tomllib.loads(with_insecure(own, ["127.0.0.1:5000"]) or "")["registry"] == [
        {"location": "127.0.0.1:5000", "insecure": False}]
    # the v1 format cannot hold [[registry]] tables: the host's file is used as it is
    assert with_insecure('[registries.insecure]\nregistries = []\n', ["r:5000"]) is None


def test_the_local_executor_pushes_the_cache_after_the_builds_end() -> None:
    """Only where the executor lets a worker finish after its end: a Job or an instance
    is deleted then, and its worker pushes during the build (docs/layer-cache.md)."""
    from slipway.config.loader import parse_config
    from slipway.executors.kubernetes.config import KubernetesExecutorConfig
    from slipway.manager.worker_env import worker_environment

    config = parse_config({}).config

    def worker_env(executor: LocalExecutorConfig | KubernetesExecutorConfig) -> bool:
        env = worker_environment(config, executor, token="t", build_id="b")
        return load_environment({**BASE, **env}).cache_push_after_end

    assert worker_env(LocalExecutorConfig.model_validate({"EXECUTOR": "local"}))
    assert not worker_env(LocalExecutorConfig.model_validate(
        {"EXECUTOR": "local", "REGISTRY_CACHE_PUSH": "during"}))
    assert not worker_env(KubernetesExecutorConfig.model_validate(
        {"EXECUTOR": "kubernetesPodman", "K8S_API_SERVER": "k8s.example.com:6443",
         "REGISTRY_CACHE_PUSH": "after-end"}))  # not a kubernetes key: ignored
    with pytest.raises(ValidationError, match="REGISTRY_CACHE_PUSH"):
        LocalExecutorConfig.model_validate({"EXECUTOR": "local", "REGISTRY_CACHE_PUSH": "later"})
    with pytest.raises(WorkerEnvironmentError, match="REGISTRY_CACHE_PUSH='later'"):
        load_environment({**BASE, "REGISTRY_CACHE_PUSH": "later"})
