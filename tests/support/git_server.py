"""Git servers the trigger tests start: git's own `git http-backend` (CGI) behind a small
HTTP server that asks for a token (Basic auth, as GitHub and GitLab take one), and sshd
taking one deploy key. Repositories are bare ones in a directory of the test's."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from support.local_http import serving
from support.ports import free_port

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"


def git(*args: str, cwd: Path | None = None) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Ann Author", GIT_AUTHOR_EMAIL="ann@example.com",
               GIT_COMMITTER_NAME="Ann Author", GIT_COMMITTER_EMAIL="ann@example.com",
               GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd or "/tmp"))
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def bare_repository(root: Path, name: str) -> Path:
    path = root / name
    git("init", "--bare", "--quiet", "-b", "main", str(path))
    return path


def commit_files(work: Path, files: dict[str, str], message: str) -> str:
    """Write `files` in the working copy, commit them; the new commit's id."""
    for name, text in files.items():
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@dataclass
class HttpGitServer:
    root: Path
    port: int
    user: str
    token: str
    # (method, path, authorized) of each request, in order
    requests: list[tuple[str, str, bool]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def authed_url(self, name: str) -> str:
        return f"http://{self.user}:{self.token}@127.0.0.1:{self.port}/{name}"


def _handler(server: HttpGitServer) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{server.user}:{server.token}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            authorized = self.headers.get("Authorization") == expected
            server.requests.append((self.command, self.path, authorized))
            if not authorized:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = self._chunked()
            else:
                body = self.rfile.read(length) if length else b""
            env = {
                "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command,
                "PATH_INFO": path, "QUERY_STRING": query, "REMOTE_USER": server.user,
                "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": self.headers.get(
                    "Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            }
            out = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True,
                                 check=False).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers: list[tuple[str, str]] = []
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _chunked(self) -> bytes:
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()

        do_GET = _serve
        do_POST = _serve

    return Handler


@contextlib.contextmanager
def http_git_server(root: Path, user: str = "x-access-token",
                    token: str = "ghp_s3cretCloneToken0123456789") -> Iterator[HttpGitServer]:
    """`git http-backend` serving the bare repositories under `root` (push allowed), on a
    free 127.0.0.1 port; every request needs the token."""
    if not Path(HTTP_BACKEND).exists():
        pytest.skip("git http-backend is not installed")
    state = HttpGitServer(root=root, port=0, user=user, token=token)
    with serving(_handler(state)) as port:
        state.port = port
        yield state


@dataclass(frozen=True)
class SshGitServer:
    port: int
    user: str
    deploy_key: str  # the private part, as a user gives it to the trigger

    def url(self, repository: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repository}"




@contextlib.contextmanager
def ssh_git_server(scratch: Path) -> Iterator[SshGitServer]:
    """sshd on a free 127.0.0.1 port, taking only a new deploy key (ed25519) for the
    current user; git runs over it as it does over GitHub's or GitLab's SSH."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        pytest.skip("sshd is not installed (openssh-server)")
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o700)
    host_key = scratch / "host_ed25519"
    deploy = scratch / "deploy_ed25519"
    for key in (host_key, deploy):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    authorized = scratch / "authorized_keys"
    authorized.write_text(deploy.with_suffix(".pub").read_text())
    os.chmod(authorized, 0o600)
    port = free_port()
    config = scratch / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
        f"PidFile {scratch / 'sshd.pid'}", "LogLevel ERROR", "",
    ]))
    with contextlib.suppress(OSError):  # its privilege-separation directory, as root
        Path("/run/sshd").mkdir(exist_ok=True)
    log = scratch / "sshd.log"
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)],
                            stderr=log.open("wb"), stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {log.read_text()}")
            time.sleep(0.05)
        import getpass

        yield SshGitServer(port=port, user=getpass.getuser(),
                           deploy_key=deploy.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
