"""The gRPC listener with TLS from config: workers verify it with the configured CA."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import trustme
from support.manager_harness import Harness, ScriptedExecutor

from slipway.protocol import buildman_pb2 as pb
from slipway.protocol import buildman_pb2_grpc as pb_grpc


async def test_tls_listener_and_worker_environment(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path, key_path, ca_path = (tmp_path / n for n in ("tls.crt", "tls.key", "ca.crt"))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(ca_path))
    harness = Harness(
        tmp_path,
        manager={"EXECUTORS": [{"EXECUTOR": "local", "CA_CERT": str(ca_path)}]},
        top={"BUILDMAN_TLS_CERT": str(cert_path), "BUILDMAN_TLS_KEY": str(key_path),
             "BUILDMAN_HOSTNAME": "localhost"},
    )
    executor = ScriptedExecutor(harness.executor_configs()[0], "m")
    await harness.start([executor])
    try:
        trusted = grpc.ssl_channel_credentials(root_certificates=ca_path.read_bytes())
        async with grpc.aio.secure_channel(f"localhost:{harness.grpc_port}", trusted) as ch:
            reply = await pb_grpc.BuildManagerStub(ch).Ping(pb.PingRequest())
            assert reply.reply == "pong"
        # a client that does not trust the CA cannot talk to it
        other = trustme.CA()
        untrusted = grpc.ssl_channel_credentials(root_certificates=other.cert_pem.bytes())
        async with grpc.aio.secure_channel(f"localhost:{harness.grpc_port}", untrusted) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.BuildManagerStub(ch).Ping(pb.PingRequest(), timeout=5)
            assert err.value.code() is grpc.StatusCode.UNAVAILABLE
        # workers are told to use TLS and which CA to trust
        await harness.submit()
        await harness.wait_for(lambda: len(executor.started) == 1)
        env = executor.started[0].environment
        assert env["INSECURE"] == "false"
        assert env["TLS_CERT_PATH"] == str(ca_path)
        assert env["SERVER"] == f"localhost:{harness.grpc_port}"
        assert env["BUILDAH_ISOLATION"] == env["BULDAH_ISOLATION"] == "chroot"
    finally:
        await harness.stop()
