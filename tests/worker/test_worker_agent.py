"""The worker against a recording in-test manager (real gRPC), real podman builds and a
real registry: phases in order, logs as docker JSON, digest on COMPLETE, errors as
ERROR, heartbeat false stops the build, an unreachable manager is retried then fatal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
import trustme
from support.archives import tar_gz
from support.build_tree import long_run, new_marker, running_build
from support.fake_manager import FakeManager, serve_manager
from support.fileserver import serve_files
from support.registry import Registry, free_port

from slipway.protocol import buildman_pb2 as pb
from slipway.worker.agent import EXIT_OK, EXIT_UNREACHABLE, heartbeat, run_worker
from slipway.worker.environment import WorkerEnvironment

TOKEN = "registration-token"
SECRETS = (
    "job-jwt-0123456789",
    "push-token-abcdefghij",
    "pull-token-klmnopqrst",
    "presigned-signature-uvwxyz",
)


def make_pack(url: str, registry: str, **extra: object) -> pb.BuildPack:
    fields: dict[str, object] = {
        "job_jwt": SECRETS[0],
        "package_url": url,
        "context": "/app",
        "dockerfile_path": "Dockerfile",
        "repository": "ns/app",
        "registry": registry,
        "push_token": SECRETS[1],
        "pull_token": SECRETS[2],
        "tag_names": ["v1", "latest"],
    }
    fields.update(extra)
    return pb.BuildPack(**fields)  # type: ignore[arg-type]


def worker_env(server: str, registry: str = "", **extra: object) -> WorkerEnvironment:
    fields: dict[str, object] = {
        "token": TOKEN,
        "server": server,
        "build_uuid": "b-1",
        "container_runtime": "podman",
        "insecure": True,
        "insecure_registries": (registry,) if registry else (),
        "heartbeat_interval": 0.2,
        "retry_window": 5.0,
    }
    fields.update(extra)
    return WorkerEnvironment(**fields)  # type: ignore[arg-type]


async def build_package(package: bytes, registry: Registry) -> tuple[int, FakeManager]:
    """The worker's exit code and the manager it reported to, for a build of `package`
    (served over HTTP) that pushes to `registry`."""
    with serve_files({"/p": (package, "application/gzip")}) as files:
        manager = FakeManager(make_pack(f"{files}/p", registry.host), TOKEN)
        async with serve_manager(manager) as server:
            return await run_worker(worker_env(server, registry.host)), manager


def skopeo_digest(ref: str) -> str:
    argv = ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{ref}"]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def assert_no_secrets(manager: FakeManager, caplog: pytest.LogCaptureFixture) -> None:
    sent = [m.log_message for m in manager.rec.logs] + [p.error_message for p in manager.rec.phases]
    for secret in (*SECRETS, TOKEN):
        assert not any(secret in s for s in sent), f"{secret} leaked to the manager"
        assert secret not in caplog.text, f"{secret} leaked to the worker's log"


@pytest.mark.podman
async def test_build_reports_phases_logs_and_the_pushed_digest(
    tmp_path: Path, base_image: str, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    package = tar_gz(
        {
            "app/Dockerfile": (
                f'FROM {base_image} AS build\nARG WHO=nobody\nRUN echo "built by $WHO" > /who\n'
                f"FROM {base_image}\nCOPY --from=build /who /who\nCOPY hello.txt /\n"
                "RUN cat /who /hello.txt\n"
            ),
            "app/hello.txt": "hello from the package\n",
        }
    )
    with serve_files({"/pkg.tar.gz": (package, "application/gzip")}) as files:
        pack = make_pack(
            f"{files}/pkg.tar.gz?X-Amz-Signature={SECRETS[3]}",
            registry.host,
            build_args=[{"name": "WHO", "value": "slipway"}],
        )
        manager = FakeManager(pack, TOKEN)
        async with serve_manager(manager) as server:
            code = await run_worker(worker_env(server, registry.host))

    assert code == EXIT_OK
    rec = manager.rec
    assert rec.registrations == [TOKEN]
    assert rec.heartbeats >= 1
    assert rec.phase_names() == ["UNPACKING", "PULLING", "BUILDING", "PUSHING", "COMPLETE"]
    seqs = [p.sequence_number for p in rec.phases]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    pulling = rec.phases[1].pull_metadata
    assert (pulling.base_image, pulling.base_image_tag) == ("localhost/slipway-base", "latest")

    digest = rec.phases[-1].image_digest
    assert digest.startswith("sha256:")
    assert skopeo_digest(f"{registry.host}/ns/app:v1") == digest
    assert skopeo_digest(f"{registry.host}/ns/app:latest") == digest

    log_seqs = [m.sequence_number for m in rec.logs]
    assert log_seqs == sorted(log_seqs) and len(set(log_seqs)) == len(log_seqs)
    lines = rec.stream_lines()
    assert any(line.startswith("[1/2] STEP 1/3: FROM") for line in lines), lines
    assert "built by slipway" in lines and "hello from the package" in lines
    # logs carry the phase they were sent in
    assert {m.phase for m in rec.logs} >= {"building"}
    # clean-up happened (after COMPLETE, before the worker exited): the local tags are gone
    exists = await asyncio.to_thread(
        subprocess.run, ["podman", "image", "exists", f"{registry.host}/ns/app:v1"]
    )
    assert exists.returncode == 1
    assert_no_secrets(manager, caplog)


@pytest.mark.podman
async def test_a_dockerfile_of_only_from_leaves_an_unnamed_image_of_a_local_list(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    """`FROM localhost/list` alone "builds" the list's image for the host, which has no
    name of its own when a multi-platform build made the list: the clean-up takes the
    build's tags off it and leaves it (it used to remove it, breaking the user's list)."""
    unique = new_marker()
    context = tmp_path / "unnamed"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base_image}\nLABEL slipway.test={unique}\n")
    made = await asyncio.to_thread(subprocess.run, ["podman", "build", "-q", "--layers=false",
                                                    str(context)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    instance = made.stdout.strip().splitlines()[-1]
    listed = f"localhost/slipway-test-list-{unique.lower()}"
    try:
        for argv in (["manifest", "create", listed],
                     ["manifest", "add", listed, f"containers-storage:{instance}"]):
            subprocess.run(["podman", *argv], check=True, capture_output=True)
        package = tar_gz({"app/Dockerfile": f"FROM {listed}\n"})
        code, manager = await build_package(package, registry)
        assert code == EXIT_OK
        assert manager.rec.phase_names()[-1] == "COMPLETE"
        tagged = subprocess.run(["podman", "image", "exists", f"{registry.host}/ns/app:v1"])
        assert tagged.returncode == 1  # the build's tags went
        kept = subprocess.run(["podman", "image", "exists", instance])
        assert kept.returncode == 0, "the clean-up removed the base list's image"
        used = subprocess.run(["podman", "image", "inspect", "--format", "{{.ID}}", listed],
                              capture_output=True, text=True)
        assert used.stdout.strip() == instance  # the list still leads to it
    finally:
        subprocess.run(["podman", "manifest", "rm", listed], capture_output=True)
        subprocess.run(["podman", "rmi", "--force", instance], capture_output=True)


@pytest.mark.podman
async def test_failing_build_sends_error_log_and_error_phase(
    tmp_path: Path, base_image: str, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    package = tar_gz({"app/Dockerfile": f"FROM {base_image}\nRUN echo failing now; exit 7\n"})
    code, manager = await build_package(package, registry)

    assert code == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "PULLING", "BUILDING", "ERROR"]
    error = manager.rec.phases[-1].error_message
    assert "exit status 7" in error
    errors = [e["error"] for e in manager.rec.log_entries() if "error" in e]
    assert errors and "exit status 7" in errors[-1]
    assert "failing now" in manager.rec.stream_lines()
    assert_no_secrets(manager, caplog)


@pytest.mark.podman
async def test_missing_base_image_is_a_build_error(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    missing = f"{registry.host}/nobody/nothing:1"
    package = tar_gz({"app/Dockerfile": f"FROM {missing}\nRUN true\n"})
    code, manager = await build_package(package, registry)
    assert code == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "PULLING", "ERROR"]
    assert f"could not pull base image {missing}" in manager.rec.phases[-1].error_message
    assert "manifest unknown" in manager.rec.phases[-1].error_message


@pytest.mark.podman
async def test_heartbeat_false_stops_the_running_build(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    marker = "sleep 6071"
    package = tar_gz(
        {"app/Dockerfile": f"FROM {base_image}\nRUN echo started-sleeping && {marker}\n"}
    )
    with serve_files({"/p": (package, "application/gzip")}) as files:
        manager = FakeManager(make_pack(f"{files}/p", registry.host), TOKEN)

        def on_log(entry: dict[str, str]) -> None:
            if "started-sleeping\n" in entry.get("stream", ""):
                manager.keep_going = False

        manager.on_log = on_log
        async with serve_manager(manager) as server:
            code = await run_worker(worker_env(server, registry.host))

    assert code == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "PULLING", "BUILDING"]
    assert "started-sleeping" in manager.rec.stream_lines()
    still = await asyncio.to_thread(
        subprocess.run, ["pgrep", "-f", marker], capture_output=True, text=True
    )
    assert still.stdout.strip() == "", "the build's RUN step survived the stop"


async def test_unsafe_package_is_an_error_naming_the_member(tmp_path: Path) -> None:
    package = tar_gz({"app/Dockerfile": "FROM scratch\n", "../../escape.txt": "x"})
    work = tmp_path / "work"
    work.mkdir()
    with serve_files({"/p": (package, "application/gzip")}) as files:
        manager = FakeManager(make_pack(f"{files}/p", "127.0.0.1:1"), TOKEN)
        async with serve_manager(manager) as server:
            code = await run_worker(worker_env(server, work_dir=str(work)))
    assert code == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "ERROR"]
    assert "'../../escape.txt'" in manager.rec.phases[-1].error_message
    assert not any("escape.txt" in files for _, _, files in os.walk(tmp_path))
    assert not list(work.iterdir()), "the build's temp dir was not removed"


async def test_manager_that_comes_up_late_is_retried(tmp_path: Path) -> None:
    port = free_port()
    with serve_files({}) as files:
        manager = FakeManager(make_pack(f"{files}/missing", "127.0.0.1:1"), TOKEN)
        worker = asyncio.create_task(run_worker(worker_env(f"127.0.0.1:{port}", retry_window=30)))
        await asyncio.sleep(1.0)  # the worker is dialling a port nobody listens on yet
        assert not worker.done()
        async with serve_manager(manager, port):
            code = await asyncio.wait_for(worker, 60)
    assert code == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "ERROR"]
    assert "HTTP 404" in manager.rec.phases[-1].error_message


async def test_unreachable_manager_gives_up_with_nonzero_exit() -> None:
    env = worker_env(f"127.0.0.1:{free_port()}", retry_window=1.0)
    assert await run_worker(env) == EXIT_UNREACHABLE


async def test_refused_registration_token_exits_nonzero_without_retrying() -> None:
    manager = FakeManager(pb.BuildPack(job_jwt="j"), token="the-right-one")
    async with serve_manager(manager) as server:
        code = await run_worker(worker_env(server, retry_window=30))
    assert code == EXIT_UNREACHABLE
    assert manager.rec.registrations == [TOKEN]


class HeldHeartbeat:
    """A heartbeat stream whose answer the test hands over."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[pb.HeartbeatResponse] = (
            asyncio.get_running_loop().create_future())
        self.reading = asyncio.Event()

    async def write(self, request: pb.HeartbeatRequest) -> None:
        pass

    async def read(self) -> pb.HeartbeatResponse:
        self.reading.set()
        return await self.answer

    def cancel(self) -> bool:
        return True


async def test_a_heartbeat_cancelled_as_its_answer_arrives_ends() -> None:
    """The worker ends its heartbeat by cancelling it once the build is over; a cancel in
    the same turn of the loop as a beat's answer must end it too, or the worker never
    exits (Python 3.11's asyncio.wait_for swallowed such a cancel)."""
    stream = HeldHeartbeat()
    stub = SimpleNamespace(Heartbeat=lambda: stream)
    beat = asyncio.create_task(heartbeat(stub, "job-jwt", worker_env("127.0.0.1:1")))  # type: ignore[arg-type]
    await stream.reading.wait()
    stream.answer.set_result(pb.HeartbeatResponse(reply=True))
    beat.cancel()
    done, _ = await asyncio.wait({beat}, timeout=5)
    assert done, "the heartbeat beat on after it was cancelled"
    assert beat.cancelled()


class CancellingManager(FakeManager):
    """Answers the first registration with CANCELLED, as an overloaded or stopping
    manager (or a proxy in front of it) does."""

    async def RegisterBuildJob(
        self, request: pb.BuildJobArgs, context: grpc.aio.ServicerContext
    ) -> pb.BuildPack:
        if not self.rec.registrations:
            self.rec.registrations.append(request.register_jwt)
            await context.abort(grpc.StatusCode.CANCELLED, "CANCELLED")
        return await super().RegisterBuildJob(request, context)


async def test_a_call_the_manager_side_cancelled_is_tried_again() -> None:
    with serve_files({}) as files:
        manager = CancellingManager(make_pack(f"{files}/missing", "127.0.0.1:1"), TOKEN)
        async with serve_manager(manager) as server:
            code = await run_worker(worker_env(server, retry_window=30))
    assert code == EXIT_OK
    assert manager.rec.registrations == [TOKEN, TOKEN]
    assert manager.rec.phase_names() == ["UNPACKING", "ERROR"]


class SlowRegistrationManager(FakeManager):
    """Takes longer to answer a registration than any other call may take."""

    async def RegisterBuildJob(
        self, request: pb.BuildJobArgs, context: grpc.aio.ServicerContext
    ) -> pb.BuildPack:
        await asyncio.sleep(1.0)
        return await super().RegisterBuildJob(request, context)


async def test_a_slow_registration_is_awaited_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retry would be refused: the first attempt spent the one-time token."""
    monkeypatch.setattr("slipway.worker.agent.CALL_TIMEOUT", 0.3)
    with serve_files({}) as files:
        manager = SlowRegistrationManager(make_pack(f"{files}/missing", "127.0.0.1:1"), TOKEN)
        async with serve_manager(manager) as server:
            code = await run_worker(worker_env(server, retry_window=30))
    assert code == EXIT_OK
    assert manager.rec.registrations == [TOKEN]


@pytest.mark.podman
async def test_manager_restart_mid_build_loses_nothing(
    tmp_path: Path, base_image: str, registry: Registry
) -> None:
    package = tar_gz(
        {"app/Dockerfile": f"FROM {base_image}\nRUN echo before-restart && sleep 2 && echo after\n"}
    )
    port = free_port()
    with serve_files({"/p": (package, "application/gzip")}) as files:
        manager = FakeManager(make_pack(f"{files}/p", registry.host), TOKEN)
        down = asyncio.Event()

        def on_log(entry: dict[str, str]) -> None:
            if "before-restart\n" in entry.get("stream", ""):
                down.set()

        manager.on_log = on_log
        worker = asyncio.create_task(
            run_worker(worker_env(f"127.0.0.1:{port}", registry.host, retry_window=30))
        )
        async with serve_manager(manager, port):
            await asyncio.wait_for(down.wait(), 60)
        # the manager is gone (UNAVAILABLE) while the build goes on; it comes back
        await asyncio.sleep(0.5)
        async with serve_manager(manager, port):
            code = await asyncio.wait_for(worker, 120)

    assert code == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "PULLING", "BUILDING", "PUSHING", "COMPLETE"]
    lines = manager.rec.stream_lines()
    assert "before-restart" in lines and "after" in lines
    assert manager.rec.phases[-1].image_digest == skopeo_digest(f"{registry.host}/ns/app:v1")


def tls_credentials(ca: trustme.CA) -> grpc.ServerCredentials:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    key = cert.private_key_pem.bytes()
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return grpc.ssl_server_credentials([(key, chain)])


async def test_tls_manager_verified_with_tls_cert_path(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with serve_files({}) as files:
        manager = FakeManager(make_pack(f"{files}/missing", "127.0.0.1:1"), TOKEN)
        async with serve_manager(manager, tls=tls_credentials(ca)) as server:
            port = server.rsplit(":", 1)[1]
            env = worker_env(f"localhost:{port}", insecure=False, tls_cert_path=str(ca_file))
            assert await run_worker(env) == EXIT_OK
    assert manager.rec.phase_names() == ["UNPACKING", "ERROR"]


async def test_tls_manager_with_an_unknown_ca_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    manager = FakeManager(pb.BuildPack(job_jwt="j"), TOKEN)
    async with serve_manager(manager, tls=tls_credentials(trustme.CA())) as server:
        port = server.rsplit(":", 1)[1]
        env = worker_env(
            f"localhost:{port}", insecure=False, tls_cert_path=str(other), retry_window=1.0
        )
        assert await run_worker(env) == EXIT_UNREACHABLE
    assert manager.rec.registrations == []


@pytest.mark.parametrize("command", [["slipway", "worker"], ["python", "-m", "slipway.worker"]],
                         ids=["slipway worker", "python -m slipway.worker"])
async def test_slipway_worker_command_reads_the_environment(
    tmp_path: Path, command: list[str]
) -> None:
    """Both ways a worker starts (the local executor uses the lighter second one)."""
    program = str(Path(sys.executable).parent / command[0])
    with serve_files({}) as files:
        manager = FakeManager(make_pack(f"{files}/missing", "127.0.0.1:1"), TOKEN)
        async with serve_manager(manager) as server:
            env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY")}
            env.update(
                {
                    "TOKEN": TOKEN,
                    "SERVER": server,
                    "BUILD_UUID": "b-cli",
                    "INSECURE": "true",
                    "CONTAINER_RUNTIME": "buildah",
                    "BULDAH_ISOLATION": "chroot",
                }
            )
            proc = await asyncio.create_subprocess_exec(
                program,
                *command[1:],
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == EXIT_OK, err.decode()
    assert manager.rec.registrations == [TOKEN]
    assert manager.rec.phase_names() == ["UNPACKING", "ERROR"]
    assert "b-cli" in err.decode()
    for secret in (TOKEN, *SECRETS):
        assert secret not in (out + err).decode()


@pytest.mark.podman
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signalled_worker_ends_its_build_and_removes_its_files(
    tmp_path: Path, base_image: str, registry: Registry, sig: signal.Signals
) -> None:
    """On its own, with no executor to clean up after it: podman and the RUN step end,
    the build's directory goes, and the worker exits 0."""
    marker = new_marker()
    work = tmp_path / "work"
    work.mkdir()
    package = tar_gz({"app/Dockerfile": long_run(base_image, marker)})
    with serve_files({"/p": (package, "application/gzip")}) as files:
        manager = FakeManager(make_pack(f"{files}/p", registry.host), TOKEN)
        async with serve_manager(manager) as server:
            env = {**os.environ, "TOKEN": TOKEN, "SERVER": server, "INSECURE": "true",
                   "CONTAINER_RUNTIME": "podman", "WORK_DIR": str(work),
                   "INSECURE_REGISTRIES": registry.host}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "slipway.worker", env=env, start_new_session=True,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            try:
                tree = await running_build(marker, "b-signal", proc.pid)
                assert [d.parent for d in tree.directories] == [work]
                proc.send_signal(sig)
                _, err = await asyncio.wait_for(proc.communicate(), 120)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    assert proc.returncode == EXIT_OK, err.decode()
    assert "told to stop" in err.decode()
    assert tree.alive() == []
    assert list(work.iterdir()) == []
