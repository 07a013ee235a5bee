"""Who may call each route of the API: the one table the authorization matrix test
(tests/api/test_authorization_matrix.py) checks every route of the OpenAPI document
against. A route without an entry here fails that test: a branch adding a route adds
its entry (what it needs, the status when allowed, and how to call it).

`needs`:
- "public": anyone, no token (health, metrics);
- "link": the credential is a signed link in the URL, any bearer token is ignored;
- "signed": the credential is the request's own signature (a webhook delivery signed
  with the trigger's secret); any bearer token is ignored, and none stands in for it;
- "token": any valid token;
- "read" / "write" / "admin": that role (or more) on the build's namespace (`acme`);
- "any-read" / "any-write" / "any-admin": that role on some namespace (routes without a
  namespace; what they show is then limited to the token's namespaces).
`denied`: the status of a valid token without the role (403, or 404 where the route does
not tell a thing the caller may not see from one that does not exist)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

Needs = Literal["public", "link", "signed", "token", "read", "write", "admin", "any-read",
                "any-write", "any-admin"]
BUILDS = "/api/v1/repository/acme/web/build/"
TRIGGERS = "/api/v1/repository/acme/web/trigger/"


class Ctx(Protocol):
    """What an entry's call is given: a client with the principal's token (or none), and
    the ways to make what a route acts on (with the admin token of the test)."""

    caller: httpx.AsyncClient

    async def waiting_build(self) -> str: ...

    async def finished_build(self) -> str: ...

    async def file_drop(self) -> tuple[str, str]:
        """A reserved upload: its id and the path (with its signed token) to PUT to."""

    async def uploaded_context_link(self) -> str:
        """The signed path a worker fetches an uploaded context from."""

    async def attested_build(self) -> str:
        """A finished build with signatures and attestations kept; its id."""

    async def token_on_acme(self) -> str:
        """A new token (read on acme) made by the test's admin; its id."""

    async def trigger_on_acme(self) -> str:
        """A new GitHub trigger of acme/web (made by the test's admin) on a git server
        that has a branch `main`, with the token to read it; its id."""

    async def signed_ping(self) -> tuple[str, dict[str, str], bytes]:
        """A new trigger's webhook path, and a GitHub ping delivery signed with its
        secret: the headers and the body to POST."""


Call = Callable[[Ctx], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class RouteAccess:
    needs: Needs
    ok: int
    call: Call = field(repr=False)
    denied: int = 403


async def _start(c: Ctx) -> httpx.Response:
    return await c.caller.post(BUILDS, json={"archive_url": "https://example.com/c.tgz"})


async def _list(c: Ctx) -> httpx.Response:
    return await c.caller.get(BUILDS)


async def _status(c: Ctx) -> httpx.Response:
    return await c.caller.get(f"{BUILDS}{await c.finished_build()}/status")


async def _get(c: Ctx) -> httpx.Response:
    return await c.caller.get(f"{BUILDS}{await c.finished_build()}")


async def _cancel(c: Ctx) -> httpx.Response:
    return await c.caller.delete(f"{BUILDS}{await c.waiting_build()}")


async def _logs(c: Ctx) -> httpx.Response:
    return await c.caller.get(f"{BUILDS}{await c.finished_build()}/logs")


async def _stream(c: Ctx) -> httpx.Response:
    return await c.caller.get(f"{BUILDS}{await c.finished_build()}/logs/stream")


async def _rebuild(c: Ctx) -> httpx.Response:
    return await c.caller.post(f"{BUILDS}{await c.finished_build()}/rebuild")


async def _filedrop(c: Ctx) -> httpx.Response:
    return await c.caller.post("/api/v1/filedrop/", json={"mimeType": "text/plain"})


async def _upload(c: Ctx) -> httpx.Response:
    _, path = await c.file_drop()
    return await c.caller.put(path, content=b"FROM scratch\n")


async def _download(c: Ctx) -> httpx.Response:
    return await c.caller.get(await c.uploaded_context_link())


def _get_path(path: str, **params: Any) -> Call:
    async def call(c: Ctx) -> httpx.Response:
        return await c.caller.get(path, params=params)
    return call


async def _make_token(c: Ctx) -> httpx.Response:
    return await c.caller.post("/api/v1/slipway/tokens/",
                               json={"name": "made", "scopes": {"acme": "read"}})


async def _revoke_token(c: Ctx) -> httpx.Response:
    return await c.caller.delete(f"/api/v1/slipway/tokens/{await c.token_on_acme()}")


async def _sign_in(c: Ctx) -> httpx.Response:
    return await c.caller.post("/api/v1/slipway/signin")


async def _sign_out(c: Ctx) -> httpx.Response:
    return await c.caller.post("/api/v1/slipway/signout")


async def _make_trigger(c: Ctx) -> httpx.Response:
    return await c.caller.post(TRIGGERS, json={
        "name": f"made-{secrets.token_hex(4)}", "kind": "generic",
        "git_url": "https://git.example.com/acme/web.git"})


async def _list_triggers(c: Ctx) -> httpx.Response:
    return await c.caller.get(TRIGGERS)


async def _show_trigger(c: Ctx) -> httpx.Response:
    return await c.caller.get(f"{TRIGGERS}{await c.trigger_on_acme()}")


async def _disable_trigger(c: Ctx) -> httpx.Response:
    return await c.caller.patch(f"{TRIGGERS}{await c.trigger_on_acme()}",
                                json={"enabled": False})


async def _delete_trigger(c: Ctx) -> httpx.Response:
    return await c.caller.delete(f"{TRIGGERS}{await c.trigger_on_acme()}")


async def _run_trigger(c: Ctx) -> httpx.Response:
    return await c.caller.post(f"{TRIGGERS}{await c.trigger_on_acme()}/run",
                               json={"ref": "main"})


async def _deliveries(c: Ctx) -> httpx.Response:
    return await c.caller.get(f"{TRIGGERS}{await c.trigger_on_acme()}/deliveries")


async def _webhook(c: Ctx) -> httpx.Response:
    path, headers, body = await c.signed_ping()
    return await c.caller.post(path, headers=headers, content=body)


def _of_attested(what: str) -> Call:
    async def call(c: Ctx) -> httpx.Response:
        return await c.caller.get(f"{BUILDS}{await c.attested_build()}/{what}")
    return call


async def _trace(c: Ctx) -> httpx.Response:
    return await c.caller.get(f"{BUILDS}{await c.finished_build()}/trace")


B = "/api/v1/repository/{namespace}/{repository}/build"
T = "/api/v1/repository/{namespace}/{repository}/trigger"
ROUTES: dict[tuple[str, str], RouteAccess] = {
    # signatures and attestations (docs/signing.md): the public key is public
    ("GET", "/api/v1/slipway/signing/public-key"): RouteAccess(
        "public", 200, _get_path("/api/v1/slipway/signing/public-key")),
    ("GET", f"{B}/{{build_id}}/signing"): RouteAccess("read", 200, _of_attested("signing")),
    ("GET", f"{B}/{{build_id}}/provenance"): RouteAccess("read", 200,
                                                         _of_attested("provenance")),
    ("GET", f"{B}/{{build_id}}/sbom"): RouteAccess("read", 200, _of_attested("sbom")),
    # the build's trace (docs/traces.md)
    ("GET", f"{B}/{{build_id}}/trace"): RouteAccess("read", 200, _trace),
    ("POST", f"{B}/"): RouteAccess("write", 201, _start),
    ("GET", f"{B}/"): RouteAccess("read", 200, _list),
    ("GET", f"{B}/{{build_id}}/status"): RouteAccess("read", 200, _status),
    ("GET", f"{B}/{{build_id}}"): RouteAccess("read", 200, _get),
    ("DELETE", f"{B}/{{build_id}}"): RouteAccess("admin", 201, _cancel),
    ("GET", f"{B}/{{build_id}}/logs"): RouteAccess("read", 200, _logs),
    ("GET", f"{B}/{{build_id}}/logs/stream"): RouteAccess("read", 200, _stream),
    ("POST", f"{B}/{{build_id}}/rebuild"): RouteAccess("write", 201, _rebuild),
    # triggers: as builds, a namespace's role decides (403 before the trigger is looked
    # up, so another namespace's caller learns nothing of which triggers exist)
    ("POST", f"{T}/"): RouteAccess("write", 201, _make_trigger),
    ("GET", f"{T}/"): RouteAccess("read", 200, _list_triggers),
    ("GET", f"{T}/{{trigger_id}}"): RouteAccess("read", 200, _show_trigger),
    ("PATCH", f"{T}/{{trigger_id}}"): RouteAccess("write", 200, _disable_trigger),
    ("DELETE", f"{T}/{{trigger_id}}"): RouteAccess("write", 204, _delete_trigger),
    ("POST", f"{T}/{{trigger_id}}/run"): RouteAccess("write", 201, _run_trigger),
    ("GET", f"{T}/{{trigger_id}}/deliveries"): RouteAccess("read", 200, _deliveries),
    # a forge's delivery: its signature is the credential (a ping answers 200)
    ("POST", "/api/v1/webhooks/{trigger_id}"): RouteAccess("signed", 200, _webhook),
    ("POST", "/api/v1/filedrop/"): RouteAccess("any-write", 200, _filedrop),
    ("PUT", "/api/v1/filedrop/{file_id}"): RouteAccess("link", 200, _upload),
    ("GET", "/api/v1/filedrop/{file_id}/content"): RouteAccess("link", 200, _download),
    ("GET", "/metrics"): RouteAccess("public", 200, _get_path("/metrics")),
    ("GET", "/healthz"): RouteAccess("public", 200, _get_path("/healthz")),
    ("GET", "/readyz"): RouteAccess("public", 200, _get_path("/readyz")),
    ("GET", "/api/v1/slipway/info"): RouteAccess("token", 200,
                                                 _get_path("/api/v1/slipway/info")),
    ("GET", "/api/v1/user/"): RouteAccess("token", 200, _get_path("/api/v1/user/")),
    ("GET", "/api/v1/repository"): RouteAccess("any-read", 200,
                                               _get_path("/api/v1/repository")),
    ("GET", "/api/v1/manager"): RouteAccess("any-read", 200, _get_path("/api/v1/manager")),
    ("GET", "/api/v1/slipway/tokens/"): RouteAccess("token", 200,
                                                    _get_path("/api/v1/slipway/tokens/")),
    # granting read on acme: allowed to whoever reads acme
    ("POST", "/api/v1/slipway/tokens/"): RouteAccess("read", 201, _make_token),
    # a token of acme, made by another: revoked by acme's admins; unseen by the rest
    ("DELETE", "/api/v1/slipway/tokens/{token_id}"): RouteAccess("admin", 200, _revoke_token,
                                                                 denied=404),
    ("GET", "/api/v1/slipway/audit/"): RouteAccess("any-admin", 200,
                                                   _get_path("/api/v1/slipway/audit/")),
    ("GET", "/api/v1/slipway/audit/export"): RouteAccess(
        "any-admin", 200, _get_path("/api/v1/slipway/audit/export")),
    ("GET", "/api/v1/slipway/signin"): RouteAccess("public", 200,
                                                   _get_path("/api/v1/slipway/signin")),
    ("POST", "/api/v1/slipway/signin"): RouteAccess("token", 200, _sign_in),
    # an API token is only forgotten by its client (a sign-in's would be revoked)
    ("POST", "/api/v1/slipway/signout"): RouteAccess("token", 200, _sign_out),
}
