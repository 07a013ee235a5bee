"""The authorization matrix: every route of the OpenAPI document, called by a read, a
write and an admin token of the build's namespace (`acme`), the same of another
namespace, an expired and a revoked admin token of `acme`, and no token, answers the
status its entry in tests/support/route_access.py says. A route without an entry (or an
entry without a route) fails here. A webhook delivery's credential is its signature: no
bearer token, not even an admin's, stands in for it."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client
from support.git_server import HttpGitServer, bare_repository, commit_files, git, http_git_server
from support.route_access import BUILDS, ROUTES, TRIGGERS, RouteAccess

from slipway.api import context_url
from slipway.domain.phases import Phase
from slipway.signing import keys as signing_keys
from slipway.triggers.webhooks import sign

DIGEST = "sha256:" + "ab" * 32

ROLES = {"read": 1, "write": 2, "admin": 3}


@dataclass(frozen=True)
class Who:
    label: str
    role: str | None = None  # read, write, admin
    namespace: str | None = None  # acme (the build's) or other
    valid: bool = True


PRINCIPALS = [
    *(Who(f"{role} on acme", role, "acme") for role in ROLES),
    *(Who(f"{role} on other", role, "other") for role in ROLES),
    Who("expired admin on acme", "admin", "acme", valid=False),
    Who("revoked admin on acme", "admin", "acme", valid=False),
    Who("no token", valid=False),
]


def expected(entry: RouteAccess, who: Who) -> int:
    if entry.needs in ("public", "link", "signed"):
        return entry.ok
    if not who.valid:
        return 401
    assert who.role is not None
    if entry.needs == "token":
        return entry.ok
    if entry.needs.startswith("any-"):
        allowed = ROLES[who.role] >= ROLES[entry.needs.removeprefix("any-")]
        return entry.ok if allowed else 403
    allowed = who.namespace == "acme" and ROLES[who.role] >= ROLES[entry.needs]
    return entry.ok if allowed else entry.denied


class Ctx:
    def __init__(self, env: ApiEnv, admin: httpx.AsyncClient, caller: httpx.AsyncClient,
                 forge: HttpGitServer):
        self.env = env
        self.admin = admin
        self.caller = caller
        self.forge = forge

    async def _start(self, **body: str) -> str:
        body = body or {"archive_url": "https://example.com/c.tgz"}
        r = await self.admin.post(BUILDS, json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def waiting_build(self) -> str:
        return await self._start()

    async def finished_build(self) -> str:
        build_id = await self._start()
        await self.env.advance(build_id, Phase.COMPLETE, "done", completed=time.time())
        return build_id

    async def attested_build(self) -> str:
        """A finished build with what a signing worker reports kept (docs/signing.md)."""
        build_id = await self.finished_build()
        statement = {"_type": "https://in-toto.io/Statement/v1", "subject": []}
        payload = base64.b64encode(json.dumps(statement).encode()).decode()
        assert self.env.store.attestations is not None
        await self.env.store.attestations.put(build_id, {
            "key_id": "k", "signed": [DIGEST],
            "provenance": [{"digest": DIGEST, "platform": "",
                            "envelope": {"payload": payload, "signatures": []}}],
            "sbom": [{"digest": DIGEST, "platform": "", "document": {"bomFormat": "CycloneDX"}}],
        })
        return build_id

    async def file_drop(self) -> tuple[str, str]:
        r = await self.admin.post("/api/v1/filedrop/", json={"mimeType": "text/plain"})
        assert r.status_code == 200, r.text
        url = httpx.URL(r.json()["url"])
        return str(r.json()["file_id"]), url.raw_path.decode()

    async def uploaded_context_link(self) -> str:
        file_id, path = await self.file_drop()
        assert (await self.admin.put(path, content=b"FROM scratch\n")).status_code == 200
        record = await self.env.store.builds.get(await self._start(file_id=file_id))
        assert record is not None
        return httpx.URL(context_url(self.env.config, self.env.tokens, record)).raw_path.decode()

    async def token_on_acme(self) -> str:
        r = await self.admin.post("/api/v1/slipway/tokens/",
                                  json={"name": "victim", "scopes": {"acme": "read"}})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


    async def _trigger(self) -> dict[str, str]:
        r = await self.admin.post(TRIGGERS, json={
            "name": f"t-{secrets.token_hex(4)}", "kind": "github",
            "git_url": self.forge.url("web.git"), "token": self.forge.token})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def trigger_on_acme(self) -> str:
        return (await self._trigger())["id"]

    async def signed_ping(self) -> tuple[str, dict[str, str], bytes]:
        made = await self._trigger()
        body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
        headers = {"X-GitHub-Event": "ping", "Content-Type": "application/json",
                   "X-GitHub-Delivery": f"ping-{made['id']}",
                   "X-Hub-Signature-256": sign(made["webhook_secret"], body)}
        return httpx.URL(made["webhook_url"]).path, headers, body


async def token_of(env: ApiEnv, who: Who) -> str | None:
    if who.role is None:
        return None
    assert who.namespace is not None
    scopes = {who.namespace: who.role}
    if who.label.startswith("expired"):
        return await env.token(scopes, who.label, expires=time.time() - 1)
    token = await env.token(scopes, who.label)
    if who.label.startswith("revoked"):
        [stored] = [t for t in await env.store.tokens.list() if t.name == who.label]
        await env.store.tokens.revoke(stored.id, time.time())
    return token


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpGitServer]:
    """git's own server, with acme/web's repository: a branch main (what "run now" of a
    trigger builds)."""
    root = tmp_path_factory.mktemp("git")
    with http_git_server(root) as server:
        bare_repository(root, "web.git")
        work = root.parent / "work"
        git("clone", "--quiet", server.authed_url("web.git"), str(work))
        commit_files(work, {"Dockerfile": "FROM scratch\n"}, "first")
        git("push", "--quiet", "origin", "HEAD:main", cwd=work)
        yield server


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    # the refusals of the invalid tokens are many: none slowed down here (that is
    # tests/api/test_api_tokens.py's)
    key_file = tmp_path / "signing.key"
    key_file.write_text(signing_keys.generate("pass").encrypted_pem)
    async with api_env(tmp_path, ACCESS={"FAILED_AUTH_LIMIT": 100_000},
                       SIGNING={"KEY_FILE": str(key_file), "PASSPHRASE": "pass"}) as e:
        yield e


def openapi_routes(env: ApiEnv) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in env.app.openapi()["paths"].items()
            for method in ops}


async def test_every_route_of_the_openapi_document_has_an_entry(env: ApiEnv) -> None:
    routes = openapi_routes(env)
    assert sorted(routes - set(ROUTES)) == [], "add these to tests/support/route_access.py"
    assert sorted(set(ROUTES) - routes) == [], "routes no longer in the OpenAPI document"


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_each_principal_gets_the_expected_status(env: ApiEnv, forge: HttpGitServer,
                                                       route: tuple[str, str]) -> None:
    entry = ROUTES[route]
    root = await env.token({"*": "admin"}, "root")
    wrong: list[str] = []
    async with client(env.app, root) as admin:
        for who in PRINCIPALS:
            async with client(env.app, await token_of(env, who)) as caller:
                response = await entry.call(Ctx(env, admin, caller, forge))
            want = expected(entry, who)
            if response.status_code != want:
                wrong.append(f"{who.label}: {response.status_code} (expected {want}) "
                             f"{response.text[:200]}")
    assert wrong == []


async def test_no_bearer_token_stands_in_for_a_webhook_signature(
        env: ApiEnv, forge: HttpGitServer) -> None:
    root = await env.token({"*": "admin"}, "root")
    async with client(env.app, root) as admin:
        path, headers, body = await Ctx(env, admin, admin, forge).signed_ping()
        unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
        refused = await admin.post(path, headers=unsigned, content=body)
        forged = await admin.post(path, content=body, headers={
            **headers, "X-Hub-Signature-256": sign("not-the-secret", body)})
        accepted = await admin.post(path, headers=headers, content=body)
    assert (refused.status_code, forged.status_code) == (401, 401), refused.text
    assert accepted.status_code == 200 and accepted.json()["outcome"] == "ping"
