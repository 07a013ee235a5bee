"""The ec2 executor against moto in server mode: real boto3 HTTP calls to a local EC2 API."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import moto.settings
import pytest
import trustme
from support.moto_server import moto_server, reset

from slipway.config.models import EC2ExecutorConfig
from slipway.executors.base import ExecutorError, WorkerSpec
from slipway.executors.bootstrap import METADATA_BLOCK_UNIT, WORKER_UNIT, files_by_path
from slipway.executors.ec2.executor import EC2Executor

REGION = "us-east-1"
ACCESS_KEY = "AKIATESTTESTTEST"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.registration.sig"
KEYS = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4SrYkfM8Xu op@example"]
PROXY = "http://proxy.internal:3128"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(moto_url: str) -> Iterator[Any]:
    """A plain boto3 client on a freshly reset moto, to set up and inspect."""
    reset(moto_url)
    client = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    yield client
    client.close()


@pytest.fixture
def network(aws: Any) -> dict[str, Any]:
    vpc = aws.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    groups = [
        aws.create_security_group(GroupName=name, Description="builders", VpcId=vpc)["GroupId"]
        for name in ("builders", "egress")
    ]
    aws.create_key_pair(KeyName="builder-key")
    amis = {
        arch: aws.register_image(Name=f"fedora-coreos-40-{arch}", Architecture=arch)["ImageId"]
        for arch in ("x86_64", "arm64")
    }
    [image] = aws.describe_images(ImageIds=[amis["x86_64"]])["Images"]
    return {
        "subnet": subnet,
        "groups": groups,
        "ami": amis["x86_64"],
        "arm_ami": amis["arm64"],
        "image": image,
    }


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ssl.cert"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def ca_pem(ca_file: Path) -> str:
    return ca_file.read_text()


def make_config(moto_url: str, **values: Any) -> EC2ExecutorConfig:
    return EC2ExecutorConfig.model_validate(
        {
            "EXECUTOR": "ec2",
            "NAME": "ec2-fallback",
            "EC2_REGION": REGION,
            "EC2_INSTANCE_TYPE": "m5.large",
            "AWS_ACCESS_KEY": ACCESS_KEY,
            "AWS_SECRET_KEY": SECRET_KEY,
            "EC2_ENDPOINT_URL": moto_url,
            "CONTAINER_RUNTIME": "podman",
        }
        | values
    )


@pytest.fixture
async def executors() -> AsyncIterator[list[EC2Executor]]:
    made: list[EC2Executor] = []
    yield made
    for executor in made:
        await executor.close()


def executor(made: list[EC2Executor], config: EC2ExecutorConfig, manager: str) -> EC2Executor:
    result = EC2Executor(config, manager)
    made.append(result)
    return result


def spec(build_id: str = "b-42", manager: str = "manager-1") -> WorkerSpec:
    return WorkerSpec(
        build_id=build_id,
        job_id=f"job-{build_id}",
        namespace="acme",
        registration_token=TOKEN,
        manager_address="buildman.example:443",
        environment={
            "TOKEN": TOKEN,
            "SERVER": "buildman.example:443",
            "BUILD_UUID": build_id,
            "CONTAINER_RUNTIME": "podman",
        },
        manager_id=manager,
    )


def describe(aws: Any, instance_id: str) -> dict[str, Any]:
    reservations = aws.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservations[0]["Instances"][0])


def state(aws: Any, instance_id: str) -> str:
    return str(describe(aws, instance_id)["State"]["Name"])


async def test_run_instances_carries_every_setting(
    moto_url: str, aws: Any, network: dict[str, Any], executors: list[EC2Executor]
) -> None:
    config = make_config(
        moto_url,
        COREOS_AMI=network["ami"],
        EC2_INSTANCE_TYPE="c5.xlarge",
        EC2_VPC_SUBNET_ID=network["subnet"],
        EC2_SECURITY_GROUP_IDS=network["groups"],
        EC2_KEY_NAME="builder-key",
        BLOCK_DEVICE_SIZE=64,
    )
    instance_id = await executor(executors, config, "manager-1").start_worker(spec("b-42"))

    instance = describe(aws, instance_id)
    assert instance["InstanceType"] == "c5.xlarge"
    assert instance["ImageId"] == network["ami"]
    assert instance["SubnetId"] == network["subnet"]
    assert sorted(g["GroupId"] for g in instance["SecurityGroups"]) == sorted(network["groups"])
    assert instance["KeyName"] == "builder-key"
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["slipway-build-id"] == "b-42"
    assert tags["slipway-job-id"] == "job-b-42"
    assert tags["slipway-manager-id"] == "manager-1"
    assert tags["slipway-executor"] == "ec2-fallback"
    assert tags["Name"] == "slipway-build-b-42"

    # The root volume (the AMI's root device, not an extra disk) is resized and goes away
    # with the instance.
    [mapping] = instance["BlockDeviceMappings"]
    assert mapping["DeviceName"] == network["image"]["RootDeviceName"]
    assert mapping["Ebs"]["DeleteOnTermination"] is True
    [volume] = aws.describe_volumes(VolumeIds=[mapping["Ebs"]["VolumeId"]])["Volumes"]
    assert volume["Size"] == 64
    assert volume["VolumeType"] == "gp3"

    shutdown = aws.describe_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior"
    )
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"


async def test_default_volume_is_48_gib(
    moto_url: str, aws: Any, network: dict[str, Any], executors: list[EC2Executor]
) -> None:
    config = make_config(moto_url, COREOS_AMI=network["ami"])
    instance_id = await executor(executors, config, "manager-1").start_worker(spec())
    volume_id = describe(aws, instance_id)["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert aws.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["Size"] == 48


async def test_user_data_is_the_ignition_document(
    moto_url: str,
    aws: Any,
    network: dict[str, Any],
    ca_file: Path,
    ca_pem: str,
    executors: list[EC2Executor],
) -> None:
    config = make_config(
        moto_url,
        COREOS_AMI=network["ami"],
        SSH_AUTHORIZED_KEYS=KEYS,
        CA_CERT=str(ca_file),
        HTTP_PROXY=PROXY,
        HTTPS_PROXY=PROXY,
        NO_PROXY="localhost",
    )
    instance_id = await executor(executors, config, "manager-1").start_worker(spec())

    attribute = aws.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    document = json.loads(base64.b64decode(attribute["UserData"]["Value"]))
    assert document["ignition"]["version"].startswith("3.")
    units = {u["name"]: u["contents"] for u in document["systemd"]["units"]}
    assert "/usr/bin/podman run" in units[WORKER_UNIT]
    # EC2 always blocks the build's access to the instance metadata service.
    assert METADATA_BLOCK_UNIT in units
    assert document["passwd"]["users"] == [{"name": "core", "sshAuthorizedKeys": KEYS}]
    files = files_by_path(document)
    assert ca_pem in files.values()
    env = files["/etc/slipway/worker.env"]
    assert f"TOKEN={TOKEN}" in env.splitlines()
    for key in ("HTTP_PROXY", "HTTPS_PROXY"):
        assert f"{key}={PROXY}" in env.splitlines()
    assert "NO_PROXY=localhost" in env.splitlines()


async def test_count_is_this_managers_pending_and_running_instances(
    moto_url: str, aws: Any, network: dict[str, Any], executors: list[EC2Executor]
) -> None:
    config = make_config(moto_url, COREOS_AMI=network["ami"])
    mine = executor(executors, config, "manager-1")
    other_manager = executor(executors, config, "manager-2")
    other_executor = executor(
        executors, make_config(moto_url, COREOS_AMI=network["ami"], NAME="ec2-other"), "manager-1"
    )
    assert await mine.running_count() == 0

    kept = [await mine.start_worker(spec(f"b-{i}")) for i in range(3)]
    await other_manager.start_worker(spec("b-other"))
    await other_executor.start_worker(spec("b-other-executor"))
    aws.stop_instances(InstanceIds=[kept[1]])  # stopped: no longer a running worker
    await mine.stop_worker(kept[2])  # terminated

    assert state(aws, kept[0]) in ("pending", "running")
    assert await mine.running_count() == 1
    assert await other_manager.running_count() == 1
    assert await other_executor.running_count() == 1


async def test_stop_terminates_and_a_second_stop_is_fine(
    moto_url: str, aws: Any, network: dict[str, Any], executors: list[EC2Executor]
) -> None:
    ec2 = executor(executors, make_config(moto_url, COREOS_AMI=network["ami"]), "manager-1")
    instance_id = await ec2.start_worker(spec())
    await ec2.stop_worker(instance_id)
    assert state(aws, instance_id) in ("shutting-down", "terminated")
    await ec2.stop_worker(instance_id)
    # An instance that does not exist (any more) is not an error either.
    await ec2.stop_worker("i-0123456789abcdef0")
    assert await ec2.running_count() == 0


async def test_debug_keeps_the_instance_but_stops_counting_it(
    moto_url: str, aws: Any, network: dict[str, Any], executors: list[EC2Executor]
) -> None:
    config = make_config(moto_url, COREOS_AMI=network["ami"], DEBUG=True)
    ec2 = executor(executors, config, "manager-1")
    instance_id = await ec2.start_worker(spec())
    await ec2.stop_worker(instance_id)
    assert state(aws, instance_id) in ("pending", "running")
    assert await ec2.running_count() == 0


async def test_unknown_ami_is_an_executor_error(
    moto_url: str,
    aws: Any,
    network: dict[str, Any],
    executors: list[EC2Executor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # moto checks AMIs only when asked to (the server runs in this process).
    monkeypatch.setattr(moto.settings, "ENABLE_AMI_VALIDATION", True)
    ec2 = executor(
        executors, make_config(moto_url, COREOS_AMI="ami-0badbadbadbadbad0"), "manager-1"
    )
    with pytest.raises(ExecutorError, match="InvalidAMIID") as raised:
        await ec2.start_worker(spec())
    assert "ami-0badbadbadbadbad0" in str(raised.value)
    assert await ec2.running_count() == 0


async def test_invalid_subnet_is_an_executor_error_with_awss_message(
    moto_url: str, aws: Any, network: dict[str, Any], executors: list[EC2Executor]
) -> None:
    config = make_config(moto_url, COREOS_AMI=network["ami"], EC2_VPC_SUBNET_ID="subnet-nope")
    with pytest.raises(ExecutorError) as raised:
        await executor(executors, config, "manager-1").start_worker(spec())
    message = str(raised.value)
    assert "InvalidSubnetID.NotFound" in message
    assert "The subnet ID 'subnet-nope' does not exist" in message
    assert SECRET_KEY not in message and ACCESS_KEY not in message


async def test_unreachable_endpoint_is_an_executor_error(
    network: dict[str, Any], executors: list[EC2Executor]
) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound then closed: nothing listens there
    config = make_config(f"http://127.0.0.1:{port}", COREOS_AMI=network["ami"])
    ec2 = executor(executors, config, "manager-1")
    for call in (ec2.start_worker(spec()), ec2.running_count(), ec2.stop_worker("i-1")):
        with pytest.raises(ExecutorError, match=f"127.0.0.1:{port}") as raised:
            await call
        assert SECRET_KEY not in str(raised.value)


class _AWSErrorHandler(BaseHTTPRequestHandler):
    """Answers every EC2 call with one AWS error document (moto cannot produce these)."""

    status = 400
    code = ""
    message = ""
    calls: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).calls.append(body)
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{self.code}</Code><Message>{self.message}</Message>"
            "</Error></Errors><RequestID>req-1</RequestID></Response>"
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
        (
            500,
            "InsufficientInstanceCapacity",
            "We currently do not have sufficient m5.large capacity in the Availability Zone",
        ),
    ],
)
async def test_aws_refusals_become_executor_errors(
    status: int, code: str, message: str, executors: list[EC2Executor]
) -> None:
    handler = type(
        "Handler",
        (_AWSErrorHandler,),
        {"status": status, "code": code, "message": message, "calls": []},
    )
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            config = make_config(
                f"http://127.0.0.1:{server.server_address[1]}", COREOS_AMI="ami-12345678"
            )
            with pytest.raises(ExecutorError) as raised:
                await executor(executors, config, "manager-1").start_worker(spec())
        finally:
            server.shutdown()
    assert f"{code}: {message}" in str(raised.value)
    assert SECRET_KEY not in str(raised.value)
    assert getattr(raised.value, "code", None) == code


class _StreamHandler(BaseHTTPRequestHandler):
    stream: bytes = b""

    def do_GET(self) -> None:
        if self.path != "/streams/stable.json":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.stream)))
        self.end_headers()
        self.wfile.write(self.stream)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stream_url(network: dict[str, Any], aws: Any) -> Iterator[str]:
    arm_ami = network["arm_ami"]
    stream = {
        "stream": "stable",
        "architectures": {
            "x86_64": {
                "images": {
                    "aws": {
                        "regions": {
                            REGION: {"release": "40.1", "image": network["ami"]},
                            "eu-west-1": {"release": "40.1", "image": "ami-elsewhere"},
                        }
                    }
                }
            },
            "aarch64": {
                "images": {
                    "aws": {
                        "regions": {
                            REGION: {"release": "40.1", "image": arm_ami},
                        }
                    }
                }
            },
        },
    }
    handler = type("Handler", (_StreamHandler,), {"stream": json.dumps(stream).encode()})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}/streams/stable.json"
        server.shutdown()


async def test_ami_from_coreos_stream(
    moto_url: str,
    aws: Any,
    network: dict[str, Any],
    stream_url: str,
    executors: list[EC2Executor],
) -> None:
    x86 = executor(executors, make_config(moto_url, COREOS_STREAM_URL=stream_url), "manager-1")
    assert describe(aws, await x86.start_worker(spec()))["ImageId"] == network["ami"]

    arm_config = make_config(moto_url, COREOS_STREAM_URL=stream_url, EC2_INSTANCE_TYPE="m7g.large")
    arm = executor(executors, arm_config, "manager-1")
    assert describe(aws, await arm.start_worker(spec()))["ImageId"] == network["arm_ami"]


async def test_stream_without_the_region_or_unreachable_is_an_executor_error(
    moto_url: str, stream_url: str, executors: list[EC2Executor]
) -> None:
    elsewhere = make_config(moto_url, COREOS_STREAM_URL=stream_url, EC2_REGION="ap-south-2")
    with pytest.raises(ExecutorError, match="no AWS image for x86_64 in ap-south-2"):
        await executor(executors, elsewhere, "manager-1").start_worker(spec())
    missing = make_config(moto_url, COREOS_STREAM_URL=stream_url.replace("stable", "nope"))
    with pytest.raises(ExecutorError, match="404"):
        await executor(executors, missing, "manager-1").start_worker(spec())
