"""One table of names drives the API, the CLI and the worker: each accepts what the others
accept and refuses, with the same reason, what they refuse (slipway.domain.names).

The API answers 400 naming the field; the CLI exits 1 before sending anything; the worker
reports ERROR before it fetches the build's package. An accepted name gets as far as the
next step: the API queues the build (201), the CLI goes on to contact the server, the
worker goes on to download the package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.api_app import ApiEnv, api_env, client
from support.fake_manager import FakeManager, serve_manager
from support.registry import free_port
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.protocol import buildman_pb2 as pb
from slipway.worker.agent import EXIT_OK, run_worker
from slipway.worker.environment import WorkerEnvironment

REGISTRY = "127.0.0.1:5000"
NAMESPACE, REPOSITORY, TAG = "acme", "web", "v1"
# REGISTRY/NAMESPACE/ is 20 characters; docker and podman take names of at most 255
LONGEST_REPOSITORY = "r" * 235


@dataclass(frozen=True)
class Name:
    field: str  # namespace, repository or tag
    value: str
    refusal: str = ""  # what every refusal says; "" when the name is valid

    @property
    def valid(self) -> bool:
        return not self.refusal

    @property
    def parts(self) -> tuple[str, str, str]:
        given = {"namespace": NAMESPACE, "repository": REPOSITORY, "tag": TAG}
        given[self.field] = self.value
        return given["namespace"], given["repository"], given["tag"]

    def __str__(self) -> str:
        shown = repr(self.value) if len(self.value) <= 20 else f"{len(self.value)} chars"
        return f"{self.field}={shown}{'' if self.valid else ' refused'}"


def ns(value: str, valid: bool = True) -> Name:
    return Name("namespace", value, "" if valid else f"namespace {value!r} is not valid")


def repo(value: str, valid: bool = True) -> Name:
    return Name("repository", value, "" if valid else f"repository {value!r} is not valid")


def tag(value: str, valid: bool = True) -> Name:
    return Name("tag", value, "" if valid else f"{value!r} is not a valid tag")


NAMES = [
    ns("acme"),
    ns("ab"),
    ns("team-a"),
    ns("a.b_c-d9"),
    ns("a", valid=False),  # Quay: at least 2 characters
    ns("Acme", valid=False),
    ns("team--a", valid=False),  # Quay: single separators
    ns("team__a", valid=False),
    ns("team-", valid=False),
    ns("-team", valid=False),
    ns("café", valid=False),
    ns("n" * 256, valid=False),
    repo("web"),
    repo("x"),
    repo("my-app"),
    repo("my--app"),  # OCI: dashes may repeat
    repo("my__app"),  # OCI: a double underscore
    repo("a.b_c"),
    repo(LONGEST_REPOSITORY),
    repo("app-", valid=False),  # Quay's own pattern lets these three through
    repo("a..b", valid=False),
    repo("a._b", valid=False),
    repo("a___b", valid=False),
    repo("App", valid=False),
    repo(".app", valid=False),
    repo("r" * 256, valid=False),
    Name("repository", LONGEST_REPOSITORY + "r", "makes an image name of 256 characters"),
    tag("latest"),
    tag("v1.2.3"),
    tag("_x"),
    tag("V_1-rc.2"),
    tag("t" * 128),
    tag("-x", valid=False),
    tag(".x", valid=False),
    tag("t" * 129, valid=False),
    tag("no spaces", valid=False),
    tag("vé", valid=False),
    tag("latest\n", valid=False),
    tag("", valid=False),
]
IDS = [str(name) for name in NAMES]
# what the API's message names: path parameters by name, tags by their body field
API_FIELD = {"namespace": "namespace", "repository": "repository", "tag": "docker_tags"}

HOSTS = [
    ("127.0.0.1:5000", True),
    ("registry.example.com", True),
    ("Registry.Example.com:443", True),
    ("localhost", True),
    ("localhost:5000", True),
    ("[::1]:5000", True),
    ("notahost", False),  # docker and podman read it as a Docker Hub namespace
    ("-bad.example.com", False),
    ("bad-.example.com", False),
    ("reg_istry.example.com", False),
    ("a..b", False),
    ("registry.example.com:", False),
    ("registry.example.com:http", False),
    ("registry.example.com:70000", False),
]


# -- the API ---------------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[ApiEnv, httpx.AsyncClient]]:
    others = [host for host, _ in HOSTS if host != REGISTRY]
    async with api_env(tmp_path, SERVER_HOSTNAME=REGISTRY, ALLOWED_REGISTRIES=others) as env:
        token = await env.token({"*": "admin"})
        async with client(env.app, token) as c:
            yield env, c


async def submit(
    c: httpx.AsyncClient, namespace: str, repository: str, **body: object
) -> httpx.Response:
    payload = {"archive_url": "https://example.com/context.tar.gz", **body}
    return await c.post(f"/api/v1/repository/{namespace}/{repository}/build/", json=payload)


@pytest.mark.parametrize("name", NAMES, ids=IDS)
async def test_api(api: tuple[ApiEnv, httpx.AsyncClient], name: Name) -> None:
    env, c = api
    namespace, repository, tag_ = name.parts
    r = await submit(c, namespace, repository, docker_tags=[tag_])
    if name.valid:
        assert r.status_code == 201, r.text
        builds = await env.store.builds.list_for_repository(namespace, repository)
        assert [b.tags for b in builds] == [[tag_]]
        return
    assert r.status_code == 400, r.text
    message = r.json()["error_message"]
    assert name.refusal in message and API_FIELD[name.field] in message
    # nothing was queued
    assert (await c.get("/api/v1/repository/acme/web/build/")).json()["builds"] == []


@pytest.mark.parametrize(("host", "valid"), HOSTS, ids=[h for h, _ in HOSTS])
async def test_api_registry(
    api: tuple[ApiEnv, httpx.AsyncClient], host: str, valid: bool
) -> None:
    _, c = api
    r = await submit(c, NAMESPACE, REPOSITORY, registry=host)
    if valid:
        assert r.status_code == 201, r.text
        return
    assert r.status_code == 400, r.text
    message = r.json()["error_message"]
    assert message.startswith(f"registry: {host!r} is not a registry host"), message
    assert "ALLOWED_REGISTRIES" in message


# -- the CLI ---------------------------------------------------------------------------


def cli_build(tmp_path: Path, target: str) -> tuple[int, str]:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    # nothing listens there: a target the CLI accepts fails on the connection instead
    env = {"SLIPWAY_URL": f"http://127.0.0.1:{free_port()}", "SLIPWAY_TOKEN": "x",
           "COLUMNS": "2000"}
    result = CliRunner().invoke(app, ["build", str(tmp_path), "-t", target], env=env)
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_cli(tmp_path: Path, name: Name) -> None:
    namespace, repository, tag_ = name.parts
    code, output = cli_build(tmp_path, f"{REGISTRY}/{namespace}/{repository}:{tag_}")
    assert code == 1
    if name.valid:
        assert "cannot reach slipway" in output, output
    else:
        assert " ".join(name.refusal.split()) in output, output


@pytest.mark.parametrize(("host", "valid"), HOSTS, ids=[h for h, _ in HOSTS])
def test_cli_registry(tmp_path: Path, host: str, valid: bool) -> None:
    code, output = cli_build(tmp_path, f"{host}/{NAMESPACE}/{REPOSITORY}:{TAG}")
    assert code == 1
    if valid:
        assert "cannot reach slipway" in output, output
    else:
        assert f"{host!r} is not a registry host" in output, output


# -- the worker ------------------------------------------------------------------------


async def worker_outcome(registry: str, repository: str, tags: list[str]) -> str:
    """The error the worker reports for a build of these names, whose package URL leads
    nowhere: a refusal of the names, or else the failed download."""
    package = f"http://127.0.0.1:{free_port()}/package.tar.gz"
    pack = pb.BuildPack(
        job_jwt="job-jwt", package_url=package, repository=repository, registry=registry,
        tag_names=tags, dockerfile_path="Dockerfile",
    )
    manager = FakeManager(pack)
    async with serve_manager(manager) as server:
        env = WorkerEnvironment(token=manager.token, server=server, build_uuid="b-1",
                                container_runtime="podman", insecure=True, retry_window=5.0)
        assert await run_worker(env) == EXIT_OK  # a failed build is the user's, not the worker's
    assert manager.rec.phase_names() == ["UNPACKING", "ERROR"]
    return " ".join(manager.rec.phases[-1].error_message.split())


@pytest.mark.parametrize("name", NAMES, ids=IDS)
async def test_worker(name: Name) -> None:
    namespace, repository, tag_ = name.parts
    error = await worker_outcome(REGISTRY, f"{namespace}/{repository}", [tag_])
    if name.valid:
        assert error.startswith("could not download the build package"), error
    else:
        assert " ".join(name.refusal.split()) in error, error


@pytest.mark.parametrize(("host", "valid"), HOSTS, ids=[h for h, _ in HOSTS])
async def test_worker_registry(host: str, valid: bool) -> None:
    error = await worker_outcome(host, f"{NAMESPACE}/{REPOSITORY}", [TAG])
    if valid:
        assert error.startswith("could not download the build package"), error
    else:
        assert f"{host.lower()!r} is not a registry host" in error, error
