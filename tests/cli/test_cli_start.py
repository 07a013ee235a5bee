"""`slipway build` starts without the server's libraries: every client command used to
load the server's configuration models and PyYAML first, about 0.1 s of its start here
(benchmarks/README.md, the CLI's start). The commands that need them (`config`, `deploy`,
`serve`, `worker`) load them when they run: tests/cli/test_config_cli.py and the others
run those."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from support.cli_modules import run_and_list_modules, server_libraries_in
from support.fileserver import serve_files

from slipway.cli.client import ApiClient, Credentials


def test_build_reaches_its_first_request_without_the_servers_libraries(
    tmp_path: Path,
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}"
    done, modules = run_and_list_modules(
        ["slipway", "build", str(tmp_path), "-t", "127.0.0.1:5000/team/app",
         "--server", refused, "--token", "t"])
    assert done.returncode == 1 and "is `slipway serve` running?" in done.stderr, done.stderr
    assert "slipway.cli.builds_cmd" in modules
    assert server_libraries_in(modules) == []


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An HTTPS server whose CA this machine trusts (SSL_CERT_FILE, as httpx reads it)."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    info = {"/api/v1/slipway/info": (b'{"server": "tls"}', "application/json")}
    with serve_files(info, tls=context) as url:
        yield url


def test_an_https_server_is_verified_and_an_http_servers_client_speaks_no_tls(
    tls_server: str,
) -> None:
    """The client of an http:// server skips the CA bundle (the start's 30-50 ms): it
    never reaches a TLS server, even one this machine trusts."""
    with ApiClient(Credentials(tls_server, "t")) as client:
        assert client.http.get("/api/v1/slipway/info").json() == {"server": "tls"}
    with ApiClient(Credentials("http://127.0.0.1:1", "t")) as client, \
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.http.get(f"{tls_server}/api/v1/slipway/info")
