"""The failover of Quay's guide (MINIMUM_RETRY_THRESHOLD in docs/configuration.md) with
two real executors of different kinds: Kubernetes (the API test double) with
MINIMUM_RETRY_THRESHOLD 1, then EC2 (moto in server mode) with 0. A worker that never
registers makes the build go kubernetes, kubernetes, ec2, as the guide says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import trustme
from prometheus_client import REGISTRY
from support.k8s_api import K8sApiDouble
from support.manager_harness import Harness
from support.moto_server import moto_server, reset

from slipway.domain.phases import Phase
from slipway.executors.registry import create_executor

REGION = "us-east-1"


@pytest.fixture
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        reset(url)
        yield url


def _fallbacks(executor: str) -> float:
    value = REGISTRY.get_sample_value(
        "slipway_executor_fallbacks_total", {"executor": executor, "reason": "not_allowed"})
    return value or 0.0


async def test_attempts_go_kubernetes_kubernetes_ec2(tmp_path: Path, moto_url: str) -> None:
    k8s = K8sApiDouble(tmp_path / "k8s", namespaces=("builder",)).start()
    aws = boto3.client("ec2", region_name=REGION, endpoint_url=moto_url,
                       aws_access_key_id="AKIATEST", aws_secret_access_key="test-secret")
    ami = aws.register_image(Name="fedora-coreos-x86_64", Architecture="x86_64")["ImageId"]
    ca = tmp_path / "ssl.cert"
    trustme.CA().cert_pem.write_to_path(str(ca))
    harness = Harness(tmp_path, manager={"EXECUTORS": [
        {"EXECUTOR": "kubernetesPodman", "NAME": "openshift", "MINIMUM_RETRY_THRESHOLD": 1,
         "SETUP_TIME": 1, "K8S_API_SERVER": k8s.server, "K8S_API_TLS_CA": str(k8s.ca_path),
         "SERVICE_ACCOUNT_TOKEN": k8s.token, "BUILDER_NAMESPACE": "builder",
         "CA_CERT": str(ca)},
        {"EXECUTOR": "ec2", "NAME": "aws", "MINIMUM_RETRY_THRESHOLD": 0, "SETUP_TIME": 1,
         "EC2_REGION": REGION, "EC2_INSTANCE_TYPE": "m5.large", "COREOS_AMI": ami,
         "EC2_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY": "AKIATEST",
         "AWS_SECRET_KEY": "test-secret", "CA_CERT": str(ca)},
    ]})
    executors = [create_executor(c, "manager-a") for c in harness.executor_configs()]
    fallbacks_before = _fallbacks("openshift")
    await harness.start(executors)
    try:
        build_id = await harness.submit()
        record = await harness.wait_phase(build_id, Phase.INTERNAL_ERROR, Phase.COMPLETE)
        assert record.phase is Phase.INTERNAL_ERROR
        assert "never registered" in (record.error or "")
        assert [a.executor for a in record.attempts] == ["openshift", "openshift", "aws"]
        # the metric counts the attempt kubernetes was passed over for
        assert _fallbacks("openshift") - fallbacks_before == 1
        # every worker is cleaned up: Jobs deleted, the one instance terminated
        await harness.wait_for(lambda: k8s.objects("jobs", "builder") == [])
        instances = [i for r in aws.describe_instances()["Reservations"] for i in r["Instances"]]
        assert [i["InstanceId"] for i in instances] == [record.attempts[2].worker_id]

        def terminated() -> bool:
            reply = aws.describe_instances(InstanceIds=[instances[0]["InstanceId"]])
            state = reply["Reservations"][0]["Instances"][0]["State"]["Name"]
            return state in ("shutting-down", "terminated")

        await harness.wait_for(terminated)
    finally:
        await harness.stop()
        k8s.stop()
        aws.close()
