"""An uploaded context is deleted once its build ended and the grace passed; "build again"
of that build then says clearly that the context is gone (manager/admission.py)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from support.api_app import api_env, client

from slipway.domain.phases import Phase
from slipway.store.housekeeping import HousekeepingPolicy

BUILDS = "/api/v1/repository/acme/web/build/"
POLICY = HousekeepingPolicy(archive_after=0, context_grace=3600)


async def upload(c: httpx.AsyncClient) -> str:
    r = await c.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"})
    assert r.status_code == 200, r.text
    drop = r.json()
    r = await c.put(httpx.URL(drop["url"]).raw_path.decode(), content=b"FROM scratch\n")
    assert r.status_code == 200, r.text
    return str(drop["file_id"])


async def test_build_again_after_the_context_is_gone_says_so(tmp_path: Path) -> None:
    async with api_env(tmp_path) as env, client(
            env.app, await env.token({"*": "admin"}, "root")) as admin:
        file_id = await upload(admin)
        uploaded = tmp_path / "data" / "uploads" / file_id
        assert uploaded.is_file()
        r = await admin.post(BUILDS, json={"file_id": file_id})
        assert r.status_code == 201, r.text
        build_id = r.json()["id"]

        # a build still waiting keeps its context, however long ago it was uploaded
        assert (await env.store.housekeeping(POLICY).run()).contexts_deleted == 0
        # ended within the grace: kept for "build again"
        await env.advance(build_id, Phase.COMPLETE, completed=time.time() - 600)
        assert (await env.store.housekeeping(POLICY).run()).contexts_deleted == 0
        assert uploaded.is_file()

        # ended two hours ago: gone
        await env.advance(build_id, Phase.COMPLETE, completed=time.time() - 7200)
        report = await env.store.housekeeping(POLICY).run()
        assert (report.contexts_deleted, report.context_bytes_deleted) == (1, 13)
        assert not uploaded.exists()

        r = await admin.post(f"{BUILDS}{build_id}/rebuild")
        assert r.status_code == 400, r.text
        assert (f"the uploaded context of build {build_id} is no longer on this server; "
                "start a new build with the context") in r.text
        # the build itself, and its log, are still there
        assert (await admin.get(f"{BUILDS}{build_id}")).json()["phase"] == "complete"
