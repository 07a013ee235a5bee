"""A private redis-server for tests: free 127.0.0.1 port, no persistence, optional
password and TLS (certificates from `trustme`), with stop/kill/restart helpers."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import trustme

from slipway.config.models import RedisConfig
from support.ports import free_port


class RedisServer:
    def __init__(
        self,
        *,
        password: str | None = None,
        tls: bool = False,
        tls_client_auth: bool = False,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.password = password
        self.tls = tls
        self.tls_client_auth = tls_client_auth
        self.extra_args = extra_args or []
        self.dir = Path(tempfile.mkdtemp(prefix="slipway-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        if tls:
            self.ca = trustme.CA()
            server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
            server_cert.private_key_and_cert_chain_pem.write_to_path(str(self.dir / "server.pem"))
            self.ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
            client_cert = self.ca.issue_cert("slipway-client@example.org")
            client_cert.private_key_and_cert_chain_pem.write_to_path(str(self.dir / "client.pem"))

    @property
    def ca_path(self) -> str:
        return str(self.dir / "ca.pem")

    @property
    def client_pem_path(self) -> str:
        return str(self.dir / "client.pem")

    def _argv(self) -> list[str]:
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        if self.tls:
            pem = str(self.dir / "server.pem")
            argv += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                pem,
                "--tls-key-file",
                pem,
                "--tls-ca-cert-file",
                self.ca_path,
                "--tls-auth-clients",
                "yes" if self.tls_client_auth else "no",
            ]
        else:
            argv += ["--port", str(self.port)]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        return argv + self.extra_args

    def start(self) -> None:
        assert self.proc is None, "already running"
        self.proc = subprocess.Popen(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = (
                    (self.dir / "redis.log").read_text()
                    if (self.dir / "redis.log").exists()
                    else ""
                )
                self.proc = None
                raise RuntimeError(f"redis-server exited at start: {err}{log[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError("redis-server did not start listening in time")

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: an unclean crash; with no persistence all data is lost."""
        self._end(signal.SIGKILL)

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, **overrides: object) -> RedisConfig:
        """The ORCHESTRATOR section that reaches this server."""
        data: dict[str, object] = {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": self.port,
            "REDIS_PASSWORD": self.password,
        }
        if self.tls:
            data["REDIS_SSL"] = True
            data["REDIS_CA_CERT"] = self.ca_path
            if self.tls_client_auth:
                data["REDIS_CERT_AND_KEY"] = self.client_pem_path
        data.update(overrides)
        return RedisConfig.model_validate(data)
