"""The build page's signature status (docs/signing.md) in a real headless Chromium: a
signed build shows what was signed and by which key, and its provenance and SBOM download
as the API serves them; a build without signatures says so."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.browser import chromium, chromium_available
from support.enqueue import enqueue
from support.server import RunningServer, running_server

from slipway.domain.phases import Phase
from slipway.signing import dsse, keys, provenance
from slipway.store.records import NewBuild

pytestmark = pytest.mark.skipif(
    not chromium_available(), reason="chromium is not installed (scripts/install-system.sh)")

DIGEST = "sha256:" + "ab" * 32


async def seed_complete(slipway: RunningServer, repository: str) -> str:
    store = slipway.server.store
    assert slipway.server.control is not None
    record = await enqueue(slipway.server.control, NewBuild(
        namespace="team", repository=repository, tags=["latest"], registry="127.0.0.1:1",
        archive_url="http://127.0.0.1:1/never-fetched.tar.gz"))
    async with store.db.write() as conn:  # claimed first: no worker is started for it
        await store.queue.remove_for_build(conn, record.id)
    async with store.db.write() as conn:
        await store.builds.update(conn, record.id, phase=Phase.COMPLETE, completed=time.time(),
                                  image_digest=DIGEST)
    return record.id


def attestations(build_id: str) -> dict[str, Any]:
    """What a worker reports with COMPLETE (worker/signing.py), made with a real key."""
    key = keys.generate("passphrase")
    facts = provenance.BuildFacts(
        builder_id="https://builds.example.com/slipway", build_id=build_id,
        started_on="2026-01-01T00:00:00Z", finished_on="2026-01-01T00:01:00Z",
        executor="podman on test", source={"digest": {"sha256": "00" * 32}},
        dockerfile="Dockerfile", target="", tags=["latest"], platforms=[], build_args={})
    statement = provenance.statement(facts, [provenance.Subject("127.0.0.1:1/team/app",
                                                                DIGEST)])
    return {"key_id": key.key_id, "signed": [{"digest": DIGEST}],
            "provenance": [{"platform": "", "digest": DIGEST,
                            "envelope": dsse.sign(key, statement)}],
            "sbom": [{"platform": "", "digest": DIGEST,
                      "document": {"bomFormat": "CycloneDX", "specVersion": "1.6",
                                   "components": [{"name": "busybox"}]}}]}


async def test_the_build_page_shows_the_signature_and_downloads_the_attestations(
    tmp_path: Path
) -> None:
    async with running_server(tmp_path) as slipway, chromium() as browser:
        signed_id = await seed_complete(slipway, "app")
        unsigned_id = await seed_complete(slipway, "other")
        document = attestations(signed_id)
        store = slipway.server.store.attestations
        assert store is not None
        await store.put(signed_id, document)
        page = await (await browser.new_context(accept_downloads=True)).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{slipway.base_url}/")
        await page.evaluate("t => sessionStorage.setItem('slipway.token', t)",
                            slipway.server.admin_token)
        await page.goto(f"{slipway.base_url}/#/build/team/app/{signed_id}")
        signing = page.locator("#build-signing")
        await signing.locator(".signed").wait_for()
        assert "signed (1 digest, key " + document["key_id"][:12] in await signing.inner_text()
        async with page.expect_download() as got:
            await signing.get_by_role("button", name="Provenance").click()
        saved = tmp_path / "provenance.json"
        await (await got.value).save_as(saved)
        assert json.loads(saved.read_text()) == [document["provenance"][0]["envelope"]]
        async with page.expect_download() as got:
            await signing.get_by_role("button", name="SBOM").click()
        await (await got.value).save_as(tmp_path / "sbom.json")
        assert json.loads((tmp_path / "sbom.json").read_text()) == document["sbom"][0][
            "document"]

        await page.goto(f"{slipway.base_url}/#/build/team/other/{unsigned_id}")
        await page.locator("#build-signing", has_text="not signed").wait_for()
        assert errors == []
