"""DetermineCachedTag answers the first of the build's tags already in the registry."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.manager_harness import Harness, ScriptedExecutor
from support.protocol_worker import ProtocolWorker
from support.registry import Registry

from slipway.executors.base import WorkerSpec
from slipway.protocol import buildman_pb2 as pb

pytestmark = pytest.mark.podman


async def test_cached_tag_is_the_first_existing_tag(
    tmp_path: Path, registry: Registry, base_image: str
) -> None:
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"containers-storage:{base_image}",
         f"docker://{registry.host}/ns/repo:v1"],
        check=True, capture_output=True,
    )
    answers: list[str] = []
    harness = Harness(tmp_path, top={"SERVER_HOSTNAME": registry.host,
                                     "INSECURE_REGISTRIES": [registry.host]})

    async def worker(spec: WorkerSpec) -> None:
        w = ProtocolWorker(harness.address)
        await w.register(spec.registration_token)
        reply = await w.stub.DetermineCachedTag(pb.CachedTagRequest(
            job_jwt=w.job_jwt, base_image_name="busybox", base_image_tag="latest"))
        answers.append(reply.CachedTag)
        await w.set_phase(pb.COMPLETE, digest="sha256:" + "0" * 64)

    executor = ScriptedExecutor(harness.executor_configs()[0], "m", script=worker)
    await harness.start([executor])
    try:
        await harness.submit(tags=("latest", "v1", "v2"))
        await harness.wait_for(lambda: len(answers) == 1)
        assert answers == ["v1"]  # latest does not exist yet, v1 does
        await harness.submit(repository="empty", tags=("latest",))
        await harness.wait_for(lambda: len(answers) == 2)
        assert answers[1] == ""
    finally:
        await harness.stop()
