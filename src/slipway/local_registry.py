"""`slipway serve --registry`: a registry for the user's builds, started and stopped with
the server.

It is Debian's `docker-registry` (CNCF distribution) on a loopback address, plain HTTP and
without authentication (which is why it may not listen elsewhere), its config, storage
and log in DATA_DIR/registry/. The embedded default pushes to it without a config
(LOOPBACK_REGISTRIES); with a config file, `serve` adds its address to ALLOWED_REGISTRIES
and INSECURE_REGISTRIES for the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import httpx

from slipway.domain.loopback import is_loopback_registry
from slipway.domain.names import InvalidName, check_registry_host

DEFAULT_ADDRESS = "127.0.0.1:5000"
BINARY = "docker-registry"
OPTION = "--registry-address"
# a guard against a registry that never answers, not a timing expectation
START_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


class LocalRegistryError(Exception):
    """The local registry cannot start; the message says why and what to do."""


@dataclass
class LocalRegistry:
    address: str
    directory: Path
    process: asyncio.subprocess.Process

    @property
    def storage(self) -> Path:
        return self.directory / "storage"

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def check_address(address: str) -> None:
    """host:port on loopback: the registry has no authentication."""
    try:
        check_registry_host(address)
    except InvalidName as exc:
        raise LocalRegistryError(f"{OPTION}: {exc}") from None
    if not is_loopback_registry(address) or ":" not in address.rsplit("]", 1)[-1]:
        raise LocalRegistryError(
            f"{OPTION}: {address!r} is not a loopback host:port; the local registry has no "
            f"authentication, so it listens on loopback only (e.g. {DEFAULT_ADDRESS})")


def _config(address: str, storage: Path) -> str:
    return "\n".join([
        "# written by slipway at each start of the registry",
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {address}",
        "",
    ])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when `slipway serve` dies, even by SIGKILL, so
    no registry is left holding the port (Linux; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


async def start_local_registry(address: str, data_dir: Path) -> LocalRegistry:
    """Start docker-registry on `address`, its files in DATA_DIR/registry/; return once
    it answers. Raises LocalRegistryError."""
    from slipway.server import StartupError, bind_listener

    check_address(address)
    binary = shutil.which(BINARY)
    if binary is None:
        raise LocalRegistryError(
            f"{BINARY} is not installed: install Debian's docker-registry package "
            "(apt-get install docker-registry), or start serve without --registry and push "
            "to a registry of yours")
    try:  # in use: say so, naming the option, as for the server's own addresses
        bind_listener(address, OPTION).close()
    except StartupError as exc:
        raise LocalRegistryError(str(exc)) from None
    directory = Path(data_dir) / "registry"
    config = await asyncio.to_thread(write_config, address, directory)
    log_path = directory / "registry.log"
    # REGISTRY_* variables would override the config file (the registry reads them)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            binary, "serve", str(config), stdin=asyncio.subprocess.DEVNULL, stdout=log,
            stderr=log, env=env, preexec_fn=_die_with_parent)
    registry = LocalRegistry(address, directory, process)
    try:
        await _wait_until_up(registry, log_path)
    except BaseException:
        await registry.stop()
        raise
    return registry


def write_config(address: str, directory: Path) -> Path:
    """Write the registry's config (filesystem storage in `directory`/storage, deletes
    on, no authentication, listening on `address`) to `directory`/config.yml; its path.
    The tests' registry (tests/support/registry.py) starts from it too."""
    storage = directory / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yml"
    config.write_text(_config(address, storage))
    return config


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


async def _wait_until_up(registry: LocalRegistry, log_path: Path) -> None:
    url = f"http://{registry.address}/v2/"
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if registry.process.returncode is not None:
                last = await asyncio.to_thread(_last_line, log_path)
                raise LocalRegistryError(
                    f"{BINARY} exited at start ({last}); its log is {log_path}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise LocalRegistryError(
                    f"{BINARY} did not answer at {url} within {START_TIMEOUT_S:.0f} s; its "
                    f"log is {log_path}")
            await asyncio.sleep(0.1)
