"""`slipway login URL --sso`: single sign-on through the browser (docs/access.md). The
CLI waits on a loopback port; the server's login (GET /auth/oidc/login?cli_port=PORT)
leads the browser to the OpenID provider and, once signed in, back to
http://127.0.0.1:PORT/callback with the sign-in's token, which only this machine can
receive."""

from __future__ import annotations

import threading
import time
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

from slipway.cli.errors import CliError

WAIT_S = 300.0  # for the person to sign in
DONE_PAGE = (b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             b"<title>Signed in \xc2\xb7 slipway</title></head><body><h1>Signed in</h1>"
             b"<p>The slipway command line has your sign-in. You may close this page."
             b"</p></body></html>")


class _Receiver(HTTPServer):
    token: str | None = None


class _Callback(BaseHTTPRequestHandler):
    server: _Receiver

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        token = parse_qs(parts.query).get("token", [""])[0]
        if parts.path != "/callback" or not token:
            self.send_error(404)
            return
        self.server.token = token
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(DONE_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request line holds the token: never printed


def sign_in(server: str, say: Callable[[str], None], open_browser: bool = True,
            wait: float = WAIT_S) -> str:
    """The token of a single sign-on at `server`, through the browser."""
    receiver = _Receiver(("127.0.0.1", 0), _Callback)
    port = int(receiver.server_address[1])
    url = f"{server}/auth/oidc/login?cli_port={port}"
    worker = threading.Thread(target=_serve, args=(receiver, time.monotonic() + wait),
                              daemon=True)
    worker.start()
    say(f"Sign in with your browser: {url}")
    if open_browser:
        webbrowser.open(url)
    worker.join()
    receiver.server_close()
    if receiver.token is None:
        raise CliError(f"no sign-in arrived within {int(wait)} s; run `slipway login "
                       f"{server} --sso` again")
    return receiver.token


def _serve(receiver: _Receiver, deadline: float) -> None:
    receiver.timeout = 0.5
    while receiver.token is None and time.monotonic() < deadline:
        receiver.handle_request()
