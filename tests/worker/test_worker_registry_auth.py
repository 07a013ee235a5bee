"""How the worker's own registry calls find their way and their credentials, as the
container tools do: registries.conf's entries (registries_conf.endpoint), the host's auth
files (registry_auth.host_credentials), a registry's 401 challenge."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from slipway.worker import registries_conf
from slipway.worker.registries_conf import Endpoint, endpoint
from slipway.worker.registry_auth import Challenge, host_credentials, parse_challenge
from slipway.worker.runtimes.base import Credentials


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(registries_conf, "SYSTEM_DROP_INS", tmp_path / "registries.conf.d")
    return tmp_path / "registries.conf"


def env_for(conf: Path) -> dict[str, str]:
    return {"CONTAINERS_REGISTRIES_CONF": str(conf), "HOME": str(conf.parent / "home")}


def test_the_best_matching_entry_of_registries_conf(conf: Path) -> None:
    conf.write_text('unqualified-search-registries = ["docker.io"]\n'
                    '[[registry]]\nlocation = "reg.example.com"\ninsecure = true\n'
                    '[[registry]]\nprefix = "reg.example.com/team"\n'
                    'location = "mirror.example.com/team-moved"\n'
                    '[[registry]]\nprefix = "*.blocked.example"\nblocked = true\n')
    env = env_for(conf)
    assert endpoint("reg.example.com/other/app", env) == Endpoint(
        "reg.example.com/other/app", insecure=True)
    # the longest prefix wins, and its location replaces it
    assert endpoint("reg.example.com/team/app", env) == Endpoint(
        "mirror.example.com/team-moved/app")
    assert endpoint("reg.example.com/teamster/app", env).name == "reg.example.com/teamster/app"
    assert endpoint("a.blocked.example/x", env).blocked
    assert endpoint("elsewhere.example.com/x", env) == Endpoint("elsewhere.example.com/x")
    moved = endpoint("reg.example.com/team/app", env)
    assert (moved.registry, moved.repository) == ("mirror.example.com", "team-moved/app")


def test_drop_ins_and_the_v1_format(conf: Path) -> None:
    conf.write_text('[registries.insecure]\nregistries = ["old.example.com:5000"]\n'
                    '[registries.block]\nregistries = ["bad.example.com"]\n')
    drop_ins = registries_conf.SYSTEM_DROP_INS
    drop_ins.mkdir()
    (drop_ins / "50-local.conf").write_text(
        '[[registry]]\nlocation = "new.example.com"\ninsecure = true\n')
    env = env_for(conf)
    assert endpoint("old.example.com:5000/app", env).insecure
    assert endpoint("bad.example.com/app", env).blocked
    assert endpoint("new.example.com/app", env).insecure
    conf.write_text("this is [not toml\n")  # a broken file is not a failure
    assert endpoint("reg.example.com/app", env) == Endpoint("reg.example.com/app")


def test_challenges() -> None:
    assert parse_challenge('Bearer realm="https://auth.example.com/token",'
                           'service="registry.example.com",scope="repository:a/b:pull"') == (
        Challenge("bearer", {"realm": "https://auth.example.com/token",
                             "service": "registry.example.com",
                             "scope": "repository:a/b:pull"}))
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge(
        "basic", {"realm": "Registry Realm"})
    assert parse_challenge("") is None


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_the_hosts_auth_files_most_specific_key_first(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {
        "https://legacy.example.com/v1/": _auth("old", "pw-old"),
        "https://index.docker.io/v1/": _auth("hub", "pw-hub"),  # as `docker login` writes
        "reg.example.com": _auth("whole", "pw-whole"),
        "reg.example.com/team": _auth("team", "pw-team"),
    }}))
    env = {"HOME": str(home)}
    assert await host_credentials("reg.example.com/team/app", env) == Credentials(
        "team", "pw-team")
    assert await host_credentials("reg.example.com/other/app", env) == Credentials(
        "whole", "pw-whole")
    assert await host_credentials("legacy.example.com/app", env) == Credentials(
        "old", "pw-old")
    assert await host_credentials("docker.io/team/app", env) == Credentials("hub", "pw-hub")
    assert await host_credentials("unknown.example.com/app", env) is None
    # containers' own auth.json comes first; REGISTRY_AUTH_FILE alone when set
    (tmp_path / "xdg" / "containers").mkdir(parents=True)
    (tmp_path / "xdg" / "containers" / "auth.json").write_text(json.dumps(
        {"auths": {"reg.example.com": _auth("podman", "pw-podman")}}))
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    assert await host_credentials("reg.example.com/other/app", env) == Credentials(
        "podman", "pw-podman")
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "missing.json")
    assert await host_credentials("reg.example.com/other/app", env) is None
