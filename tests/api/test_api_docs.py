"""/docs and /redoc work without internet: every script and style sheet they load is
served by slipway itself, and a real headless Chromium that can reach nothing but this
machine renders them."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.api_app import LiveApi, api_env, client

ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_doc_pages_load_their_assets_from_slipway(tmp_path: Path, page: str) -> None:
    async with api_env(tmp_path) as env, client(env.app) as c:
        r = await c.get(page)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        assets = ASSET.findall(r.text)
        assert any(a.endswith(".js") for a in assets), r.text
        for asset in assets:
            # a path on this server, not a CDN's URL
            assert asset.startswith("/") and not asset.startswith("//"), asset
            got = await c.get(asset)
            assert got.status_code == 200, asset
            kind = "javascript" if asset.endswith(".js") else "css" if asset.endswith(".css") \
                else "image"
            assert kind in got.headers["content-type"], (asset, got.headers["content-type"])
            assert len(got.content) > 1000, asset
        assert "cdn." not in r.text and "fonts.googleapis" not in r.text


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveApi]:
    server = LiveApi(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def render(url: str, profile: Path) -> str:
    """The DOM of `url` after its scripts ran, in a Chromium that can resolve no host but
    127.0.0.1 (as on a machine without internet)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/install-system.sh installs it)")
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_renders_offline_in_chromium(live: LiveApi, tmp_path: Path) -> None:
    dom = render(f"{live.url}/docs", tmp_path / "profile")
    # Swagger UI drew the operations it read from /openapi.json
    assert 'class="swagger-ui' in dom
    assert "/api/v1/repository/{namespace}/{repository}/build/" in dom
    assert "opblock" in dom


def test_redoc_renders_offline_in_chromium(live: LiveApi, tmp_path: Path) -> None:
    dom = render(f"{live.url}/redoc", tmp_path / "profile")
    assert "Start a build of an uploaded context" in dom  # an operation's description
    assert httpx.get(f"{live.url}/openapi.json").status_code == 200
