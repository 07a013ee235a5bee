"""Run a real CNCF distribution registry (`/usr/bin/docker-registry`) for a test.

with run_registry() as reg:            # anonymous push/pull
    reg.host                            # "127.0.0.1:PORT"
with run_registry(auth=("alice", "s3cret")) as reg:   # htpasswd (bcrypt) auth
    ...
with token_service({"alice": "s3cret"}) as tokens, run_registry(token=tokens) as reg:
    ...                                 # Bearer tokens (support/registry_token.py)
with run_registry(tls=(chain_pem, key_pem)) as reg:   # HTTPS (reg.url)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from slipway.local_registry import write_config
from support.ports import free_port

if TYPE_CHECKING:
    from support.registry_token import TokenService

REGISTRY_BIN = "/usr/bin/docker-registry"
# A guard against a registry that never comes up, not a timing assertion.
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Registry:
    host: str  # "127.0.0.1:PORT", what image references and push targets use
    storage: Path
    username: str | None = None
    password: str | None = None
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"




def bcrypt_hash(password: str) -> str:
    """The registry accepts bcrypt entries only."""
    try:
        import bcrypt

        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    except ImportError:
        pass
    htpasswd = shutil.which("htpasswd")
    if htpasswd:
        out = subprocess.run(
            [htpasswd, "-nbB", "x", password], check=True, capture_output=True, text=True
        ).stdout
        return out.strip().split(":", 1)[1]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt on Debian knows $2b$

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    unverified = ssl._create_unverified_context()  # the test's own certificate
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/v2/", timeout=1, context=unverified).close()
            return
        except urllib.error.HTTPError:
            return  # 401 with auth on: it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not answer at {url}: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def run_registry(auth: tuple[str, str] | None = None, *, token: TokenService | None = None,
                 tls: tuple[Path, Path] | None = None) -> Iterator[Registry]:
    """Start a registry on a free 127.0.0.1 port with a temporary storage dir: htpasswd
    `auth`, or Bearer tokens of `token`; over HTTPS with `tls` (certificate chain and key
    files)."""
    with tempfile.TemporaryDirectory(prefix="slipway-registry-") as tmp:
        root = Path(tmp)
        port = free_port()
        # slipway's own config of `serve --registry`, so the tests push to what it runs
        config = write_config(f"127.0.0.1:{port}", root)
        storage = root / "storage"
        if auth:
            htpasswd = root / "htpasswd"
            htpasswd.write_text(f"{auth[0]}:{bcrypt_hash(auth[1])}\n")
            with config.open("a") as appended:
                appended.write("\n".join(["auth:", "  htpasswd:", "    realm: slipway-test",
                                          f"    path: {htpasswd}", ""]))
        if token:
            with config.open("a") as appended:
                appended.write("\n".join([
                    "auth:", "  token:", f"    realm: {token.realm}",
                    f"    service: {token.service}", f"    issuer: {token.issuer}",
                    f"    rootcertbundle: {token.bundle}", ""]))
        log = root / "registry.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        if tls:  # the config's http section is written once: its TLS by the variables
            env.update(REGISTRY_HTTP_TLS_CERTIFICATE=str(tls[0]),
                       REGISTRY_HTTP_TLS_KEY=str(tls[1]))
        scheme = "https" if tls else "http"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        try:
            _wait_until_up(f"{scheme}://127.0.0.1:{port}", proc, log)
            yield Registry(
                host=f"127.0.0.1:{port}",
                storage=storage,
                username=auth[0] if auth else None,
                password=auth[1] if auth else None,
                scheme=scheme,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
