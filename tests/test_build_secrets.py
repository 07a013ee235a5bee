"""Build secrets without a worker: the API keeps the values to itself (only the ids are
shown), stores them encrypted with the precedence the docs give, refuses bad ids and
values with a 400 that never quotes a value, deletes them when the build ends; a rebuild
cannot have the submitted ones back; BUILD_SECRETS is checked and masked like other
config secrets; the key file is private; the CLI's --secret reads files and variables;
the worker masks every line of a secret."""

from __future__ import annotations

import stat
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from support.api_app import ApiEnv, api_env, client

from slipway.build_secrets import load_or_create_key
from slipway.cli.client import CliError
from slipway.cli.secret_flags import parse_secrets
from slipway.config import ConfigError, load_config
from slipway.config.masking import effective_config
from slipway.protocol import buildman_pb2 as pb
from slipway.store.schema import build_secrets
from slipway.store.secrets import BuildSecretStore, SecretsUnavailable
from slipway.worker.build import pack_secrets
from slipway.worker.environment import WorkerEnvironment

BUILDS = "/api/v1/repository/acme/web/build/"
TOKEN = "npm-token-9f8e7d6c5b4a"
CONFIGURED = {"acme": {"npm": "namespace-npm-value", "shared": "namespace-shared-value"},
              "acme/web": {"shared": "repository-shared-value"}}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    async with api_env(tmp_path, BUILD_SECRETS=CONFIGURED) as e:
        yield e


@pytest.fixture
async def admin(env: ApiEnv) -> AsyncIterator[httpx.AsyncClient]:
    async with client(env.app, await env.token({"*": "admin"}, "root")) as c:
        yield c


async def post(c: httpx.AsyncClient, path: str = BUILDS, **body: Any) -> httpx.Response:
    return await c.post(path, json={"archive_url": "https://example.com/c.tgz", **body})


async def sealed_rows(env: ApiEnv) -> dict[str, str]:
    async with env.store.db.read() as conn:
        rows = await conn.execute(select(build_secrets.c.build_id, build_secrets.c.sealed))
        return {r.build_id: r.sealed for r in rows.all()}


async def test_values_are_kept_encrypted_shown_by_id_and_gone_at_the_end(
    env: ApiEnv, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    r = await post(admin, secrets={"npm": TOKEN, "extra.key-1": "another-value"})
    assert r.status_code == 201, r.text
    build = r.json()
    assert build["options"]["secrets"] == ["extra.key-1", "npm", "shared"]
    # submitted over the repository's, the repository's over the namespace's
    assert await env.store.secrets.get(build["id"]) == {
        "npm": TOKEN, "shared": "repository-shared-value", "extra.key-1": "another-value"}
    sealed = (await sealed_rows(env))[build["id"]]
    assert TOKEN not in sealed and "another-value" not in sealed
    shown = [r.text]
    for path in ("", build["id"], f"{build['id']}/logs"):
        shown.append((await admin.get(f"{BUILDS}{path}")).text)
    for text in shown:
        assert TOKEN not in text and "repository-shared-value" not in text
    for db_file in (tmp_path / "data").glob("slipway.db*"):
        assert TOKEN.encode() not in db_file.read_bytes()
    assert (await admin.delete(f"{BUILDS}{build['id']}")).status_code == 201
    assert build["id"] not in await sealed_rows(env)  # ended: its secrets went with it
    assert await env.store.secrets.get(build["id"]) == {}


async def test_builds_without_secrets_store_none(tmp_path: Path) -> None:
    async with api_env(tmp_path / "other") as plain:
        async with client(plain.app, await plain.token({"*": "admin"})) as c:
            r = await post(c)
        assert r.status_code == 201 and "secrets" not in r.json()["options"]
        assert await sealed_rows(plain) == {}


@pytest.mark.parametrize(
    ("secrets", "words"),
    [
        ({"has space": "value-1234"}, "secret id 'has space' is not valid"),
        ({"../x": "value-1234"}, "secret id '../x' is not valid"),
        ({"x" * 129: "value-1234"}, "is not valid: 1-128 letters"),
        ({"short": "abc"}, "secret 'short': its value is shorter than 4 characters"),
        ({"big": "v" * (64 * 1024 + 1)}, "secret 'big': its value is 65537 bytes, more than"),
        ({"nul": "value\x00-1234"}, "secret 'nul': its value contains a NUL"),
        ({f"s{i}": "value-1234" for i in range(33)}, "33 secrets given, at most 32"),
        ({"n": 12345}, "secrets.n: Input should be a valid string"),
    ],
)
async def test_bad_secrets_are_400_without_the_value(
    env: ApiEnv, admin: httpx.AsyncClient, secrets: dict[str, Any], words: str
) -> None:
    r = await post(admin, secrets=secrets)
    assert r.status_code == 400, r.text
    message = r.json()["error_message"]
    assert words in message
    for value in secrets.values():
        if isinstance(value, str) and len(value) >= 4:
            assert value not in r.text
    assert await sealed_rows(env) == {}


async def test_too_many_once_merged_with_the_configured_ones(tmp_path: Path) -> None:
    configured = {"acme": {f"c{i}": "value-1234" for i in range(30)}}
    async with api_env(tmp_path, BUILD_SECRETS=configured) as e:
        async with client(e.app, await e.token({"*": "admin"})) as c:
            r = await post(c, secrets={"a": "value-1234", "b": "value-1234", "d": "value-1234"})
        assert r.status_code == 400
        assert r.json()["error_message"] == "secrets: 33 secrets given, at most 32 per build"
        assert await sealed_rows(e) == {}


async def test_rebuild_gets_the_configured_secrets_but_not_the_submitted(
    env: ApiEnv, admin: httpx.AsyncClient
) -> None:
    submitted = (await post(admin, secrets={"npm": TOKEN, "once": "only-this-build"})).json()
    await admin.delete(f"{BUILDS}{submitted['id']}")
    r = await admin.post(f"{BUILDS}{submitted['id']}/rebuild")
    assert r.status_code == 400
    assert r.json()["error_message"] == (
        f"build {submitted['id']} was given secrets once when it was submitted; a build's "
        "secrets are deleted when it ends, so start a new build with them")
    configured_only = (await post(admin)).json()
    assert configured_only["options"]["secrets"] == ["npm", "shared"]
    await admin.delete(f"{BUILDS}{configured_only['id']}")
    again = await admin.post(f"{BUILDS}{configured_only['id']}/rebuild")
    assert again.status_code == 201, again.text
    assert await env.store.secrets.get(again.json()["id"]) == {
        "npm": "namespace-npm-value", "shared": "repository-shared-value"}


def test_config_checks_and_masks_build_secrets(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent("""\
        BUILD_SECRETS:
          acme/web: {npm: configured-npm-value}
        BUILD_SECRETS_KEY: key-text-not-shown
    """))
    config = load_config(path).config
    shown = str(effective_config(config))
    assert "configured-npm-value" not in shown and "key-text-not-shown" not in shown
    for text, words in [
        ("BUILD_SECRETS: {Acme: {npm: value-1234}}", "'Acme' is not a namespace"),
        ("BUILD_SECRETS: {acme: {'bad id': value-1234}}", "secret id 'bad id' is not valid"),
        ("BUILD_SECRETS: {acme: {npm: abc}}", "its value is shorter than 4 characters"),
    ]:
        path.write_text(text + "\n")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert any("BUILD_SECRETS" in m and words in m for m in info.value.messages), (
            info.value.messages)
        assert "value-1234" not in str(info.value.messages)


async def test_key_file_is_private_and_a_wrong_key_says_so(
    env: ApiEnv, admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    key_file = tmp_path / "data" / "keys" / "build-secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_key(None, tmp_path / "data") == key_file.read_bytes().strip()
    r = await post(admin, secrets={"a": TOKEN})
    other = BuildSecretStore(env.store.db)
    other.unlock(load_or_create_key(None, tmp_path / "elsewhere"))
    with pytest.raises(SecretsUnavailable, match="needs the same BUILD_SECRETS_KEY"):
        await other.get(r.json()["id"])
    with pytest.raises(SecretsUnavailable, match="is not a Fernet key"):
        other.unlock(b"not-a-key")


def test_cli_secret_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tok").write_text(TOKEN)
    monkeypatch.setenv("NPM_TOKEN", "from-the-environment")
    monkeypatch.setenv("plain", "read-by-its-id")
    monkeypatch.delenv("UNSET_VARIABLE", raising=False)
    assert parse_secrets([f"id=npm,src={tmp_path / 'tok'}", "id=env1,env=NPM_TOKEN",
                          "id=plain", "type=file,id=f2,source=" + str(tmp_path / "tok")]) == {
        "npm": TOKEN, "env1": "from-the-environment", "plain": "read-by-its-id", "f2": TOKEN}
    for flag, words in [
        ("npm", "write id=NAME,src=FILE or id=NAME,env=VARIABLE"),
        ("src=/x", "no id"),
        ("id=a b,src=/x", "secret id 'a b' is not valid"),
        (f"id=x,src={tmp_path / 'missing'}", "cannot read"),
        ("id=x,env=UNSET_VARIABLE", "$UNSET_VARIABLE is not set"),
        ("id=x,type=ssh,src=/x", "type must be file or env"),
    ]:
        with pytest.raises(CliError) as info:
            parse_secrets([flag])
        assert words in str(info.value)
    with pytest.raises(CliError, match="given twice"):
        parse_secrets(["id=NPM_TOKEN", "id=NPM_TOKEN"])


def test_worker_masks_each_line_of_a_secret() -> None:
    pack = pb.BuildPack(job_jwt="job-token-value")
    pack.secrets.add(name="key", value="-----BEGIN KEY-----\nAbCdEfGh12345678\n-----END KEY-----\n")
    masked = pack_secrets(pack, WorkerEnvironment(token="registration-token", server="127.0.0.1:1"))
    assert "AbCdEfGh12345678" in masked and "-----BEGIN KEY-----" in masked
    assert pack.secrets[0].value in masked
