"""The signing routes without SIGNING (docs/signing.md): no public key, and a build has no
signatures to show; both say why."""

from __future__ import annotations

from pathlib import Path

from support.server import running_server


async def test_without_signing_there_is_no_key_and_no_attestation(tmp_path: Path) -> None:
    async with running_server(tmp_path) as slipway:
        key = await slipway.api.get("/api/v1/slipway/signing/public-key")
        assert key.status_code == 404
        assert "SIGNING is not configured" in key.json()["error_message"]
        missing = await slipway.api.get(
            "/api/v1/repository/team/app/build/00000000-0000-0000-0000-000000000000/signing")
        assert missing.status_code == 404  # no such build
        build = await slipway.start_build("team", "app", archive_url="https://example.com/c.tgz")
        unsigned = await slipway.api.get(f"/api/v1/repository/team/app/build/{build['id']}/signing")
        assert unsigned.status_code == 200
        assert unsigned.json()["signed"] is False and unsigned.json()["error"] is None
        assert "SIGNING was off" in unsigned.json()["reason"]
