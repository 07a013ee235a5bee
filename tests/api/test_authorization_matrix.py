"""The authorization matrix: every route of the OpenAPI document, called by a read, a
write and an admin token of the build's namespace (`acme`), the same of another
namespace, an expired and a revoked admin token of `acme`, and no token, answers the
status its entry in tests/support/route_access.py says. A route without an entry (or an
entry without a route) fails here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client
from support.route_access import BUILDS, ROUTES, RouteAccess

from slipway.api import context_url
from slipway.domain.phases import Phase

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
    if entry.needs in ("public", "link"):
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
    def __init__(self, env: ApiEnv, admin: httpx.AsyncClient, caller: httpx.AsyncClient):
        self.env = env
        self.admin = admin
        self.caller = caller

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


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[ApiEnv]:
    # the refusals of the invalid tokens are many: none slowed down here (that is
    # tests/api/test_api_tokens.py's)
    async with api_env(tmp_path, ACCESS={"FAILED_AUTH_LIMIT": 100_000}) as e:
        yield e


def openapi_routes(env: ApiEnv) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in env.app.openapi()["paths"].items()
            for method in ops}


async def test_every_route_of_the_openapi_document_has_an_entry(env: ApiEnv) -> None:
    routes = openapi_routes(env)
    assert sorted(routes - set(ROUTES)) == [], "add these to tests/support/route_access.py"
    assert sorted(set(ROUTES) - routes) == [], "routes no longer in the OpenAPI document"


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_each_principal_gets_the_expected_status(env: ApiEnv,
                                                       route: tuple[str, str]) -> None:
    entry = ROUTES[route]
    root = await env.token({"*": "admin"}, "root")
    wrong: list[str] = []
    async with client(env.app, root) as admin:
        for who in PRINCIPALS:
            async with client(env.app, await token_of(env, who)) as caller:
                response = await entry.call(Ctx(env, admin, caller))
            want = expected(entry, who)
            if response.status_code != want:
                wrong.append(f"{who.label}: {response.status_code} (expected {want}) "
                             f"{response.text[:200]}")
    assert wrong == []
