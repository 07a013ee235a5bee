"""The web UI: one page at `/`, its ES modules and CSS under `/ui/` (no build step).

The page talks only to the public HTTP API, with the API token the user signed in with;
the Content-Security-Policy keeps every script, style and request on this origin."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).with_name("static")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
# the page is small and changes with each release: revalidate instead of caching
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def sign_in_link(public_url: str, token: str) -> str:
    """A link that signs the web UI in: the token is in the fragment, which browsers do not
    send to the server; the page removes it from the address bar and history."""
    return f"{public_url.rstrip('/')}/#token={token}"


def sign_in_hint(admin_token_file: Path) -> str:
    """How to sign the web UI in, for a start that prints no link (a configured server,
    whose output may be shipped to a log store): where a token is, never the token."""
    if admin_token_file.is_file():
        return (f"sign in to the web UI with an API token: the admin token is in "
                f"{admin_token_file} (readable by its owner only)")
    # tokens are stored hashed: a token that is not in the file cannot be shown again
    return (f"sign in to the web UI with an API token: the admin token of the first start "
            f"is no longer in {admin_token_file} (on this machine); use the copy kept then")


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=HEADERS)


class _Assets:
    """StaticFiles with the page's headers on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def mount_ui(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui", _Assets(StaticFiles(directory=STATIC)), name="ui")
