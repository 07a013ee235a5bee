"""schemathesis against the OpenAPI document of a live API (uvicorn on a free port),
with an admin token: no route answers 5xx, and every answer keeps the document (its
status codes, content types and schemas). A bounded number of examples per route keeps
the run short; `SCHEMATHESIS_EXAMPLES` raises it for a longer hunt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from support.api_app import LiveApi, api_env, client

from slipway.domain.phases import Phase
from slipway.triggers.webhooks import sign

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    # generated tokens never count as a client's failures here: an admin token is sent
    server = LiveApi(tmp, SERVER_HOSTNAME="127.0.0.1:5000").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def admin_token(live: LiveApi) -> str:
    return live.token({"*": "admin"}, "schemathesis")


CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


def test_the_api_keeps_its_openapi_document(live: LiveApi, admin_token: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {admin_token}"}
    started = httpx.post(f"{live.url}/api/v1/repository/acme/web/build/", headers=headers,
                         json={"archive_url": "https://example.com/context.tar.gz"})
    assert started.status_code == 201, started.text
    # a trigger on a git address that refuses connections at once (no network here)
    trigger = httpx.post(f"{live.url}/api/v1/repository/acme/web/trigger/", headers=headers,
                         json={"name": "fuzzed", "kind": "github",
                               "git_url": "http://127.0.0.1:9/acme/web.git"})
    assert trigger.status_code == 201, trigger.text
    known = {"namespace": "acme", "repository": "web", "build_id": started.json()["id"],
             "trigger_id": trigger.json()["id"]}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(), real=st.booleans())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case, real: bool) -> None:
            if real and case.path_parameters:
                # half the cases name a repository and build that exist: random names
                # are refused before a route does anything
                for name in case.path_parameters.keys() & known.keys():
                    case.path_parameters[name] = known[name]
            case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS,
                                   timeout=30)

        try:
            check()
        except Exception as exc:  # every operation's failure is reported, not the first
            failures.append(f"{operation.label}: {exc}")
    assert failures == [], "\n\n".join(failures)


async def test_what_schemathesis_found_is_a_400(tmp_path: Path) -> None:
    """A log `start` past any entry's number (a 32-bit column on PostgreSQL; SQLite's
    integers end at 2**63) was a 500 from the database driver; it is a 400 now, and a
    Last-Event-ID of that size is ignored."""
    async with api_env(tmp_path) as env, client(env.app, await env.token({"*": "admin"})) as c:
        r = await c.post("/api/v1/repository/acme/web/build/",
                         json={"archive_url": "https://example.com/context.tar.gz"})
        build = f"/api/v1/repository/acme/web/build/{r.json()['id']}"
        await env.advance(r.json()["id"], Phase.COMPLETE, "done")
        for path in (f"{build}/logs", f"{build}/logs/stream"):
            huge = await c.get(path, params={"start": 669435266987518504617602606694400})
            assert huge.status_code == 400, huge.text
            assert "start" in huge.json()["error_message"]
        stream = await c.get(f"{build}/logs/stream", headers={"Last-Event-ID": "9" * 5000})
        assert stream.status_code == 200 and "event: end" in stream.text


async def test_every_answer_of_the_webhook_and_triggers_is_documented(tmp_path: Path) -> None:
    """schemathesis found the webhook's 404 (no such trigger) undocumented: its document
    named only 201. Each answer a forge or a user meets (no trigger, unsigned, a ping, an
    ignored event, a bad body, too large; a trigger name taken) is in the document now,
    with the schema its body keeps."""
    async with api_env(tmp_path, TRIGGER_WEBHOOK_MAX_BYTES=4096) as env, \
            client(env.app, await env.token({"*": "admin"})) as c:
        document = env.app.openapi()
        schema = schemathesis.openapi.from_dict(document)
        webhook = schema["/api/v1/webhooks/{trigger_id}"]["POST"]
        create = schema["/api/v1/repository/{namespace}/{repository}/trigger/"]["POST"]
        body = {"name": "web", "kind": "github", "git_url": "http://127.0.0.1:9/web.git"}
        made = await c.post("/api/v1/repository/acme/web/trigger/", json=body)
        taken = await c.post("/api/v1/repository/acme/web/trigger/", json=body)
        path, secret = httpx.URL(made.json()["webhook_url"]).path, made.json()["webhook_secret"]

        async def deliver(event: str, payload: bytes, signed: bool = True) -> httpx.Response:
            headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
            if signed:
                headers["X-Hub-Signature-256"] = sign(secret, payload)
            return await c.post(path, headers=headers, content=payload)

        answers = {
            "no trigger": await c.post("/api/v1/webhooks/0", content=b"{}"),
            "unsigned": await deliver("push", b"{}", signed=False),
            "ping": await deliver("ping", b'{"zen": "hi"}'),
            "ignored": await deliver("issues", b'{"action": "opened"}'),
            "not JSON": await deliver("push", b"not json"),
            "too large": await deliver("push", b"{}" + b" " * 5000),
        }
    assert {k: r.status_code for k, r in answers.items()} == {
        "no trigger": 404, "unsigned": 401, "ping": 200, "ignored": 202, "not JSON": 400,
        "too large": 413}
    documented = document["paths"]["/api/v1/webhooks/{trigger_id}"]["post"]["responses"]
    assert {str(r.status_code) for r in answers.values()} - set(documented) == set()
    for response in answers.values():
        webhook.validate_response(response)  # the body keeps the documented schema
    assert (made.status_code, taken.status_code) == (201, 409)
    created = document["paths"]["/api/v1/repository/{namespace}/{repository}/trigger/"]
    assert {"201", "409"} <= set(created["post"]["responses"])
    create.validate_response(made)
    create.validate_response(taken)
