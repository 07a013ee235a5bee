"""The `ec2` executor: one CoreOS instance per build attempt, booted with the Ignition config.

boto3 is blocking: every call runs in a thread (`asyncio.to_thread`) on one client made once.
Every AWS failure (throttling, no capacity, bad AMI/subnet, auth, unreachable endpoint)
becomes an ExecutorError carrying AWS's code and message, so the manager moves on to the
next executor.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import httpx
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from slipway.executors.base import Executor, ExecutorError, WorkerSpec
from slipway.executors.bootstrap import ignition_json
from slipway.executors.ec2.config import EC2ExecutorConfig
from slipway.secret import reveal

log = logging.getLogger(__name__)

BUILD_TAG = "slipway-build-id"
JOB_TAG = "slipway-job-id"
MANAGER_TAG = "slipway-manager-id"
EXECUTOR_TAG = "slipway-executor"
NAMESPACE_TAG = "slipway-namespace"
KEPT_TAG = "slipway-debug-kept"

# AWS's limit on user data, before its base64 encoding.
USER_DATA_LIMIT = 16 * 1024
STREAM_CACHE_S = 3600.0
_GONE = ("InvalidInstanceID.NotFound",)
# Graviton (arm64) instance types: a1, or a "g" among the letters after the generation
# (m6g, t4g, c7gn, im4gn, is4gen); x86 suffixes (a, i, d, n, e, z, b) never hold one.
_ARM_TYPE = re.compile(r"^(a1|[a-z]+\d+[a-z]*g[a-z]*)\.")

T = TypeVar("T")


class EC2ExecutorError(ExecutorError):
    """An ExecutorError with AWS's error code (e.g. InsufficientInstanceCapacity)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


def _aws_error(operation: str, exc: Exception) -> EC2ExecutorError:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")) or "no message"
        return EC2ExecutorError(f"EC2 {operation} failed: {code}: {message}", code)
    # BotoCoreError texts (EndpointConnectionError names the URL, NoCredentialsError says
    # none were found) carry no credentials.
    return EC2ExecutorError(f"EC2 {operation} failed: {exc}", type(exc).__name__)


def architecture_of(instance_type: str) -> str:
    """The CoreOS stream architecture an instance type runs."""
    return "aarch64" if _ARM_TYPE.match(instance_type) else "x86_64"


class EC2Executor(Executor[EC2ExecutorConfig]):
    """Starts workers as EC2 instances of COREOS_AMI (or the AMI COREOS_STREAM_URL names
    for the region), tagged with the build, the job, the manager and the executor."""

    def __init__(self, config: EC2ExecutorConfig, manager_id: str) -> None:
        super().__init__(config, manager_id)
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._stream_ami: tuple[float, str] | None = None
        self._root_devices: dict[str, str] = {}

    # -- the client ------------------------------------------------------------------

    def _make_client(self) -> Any:
        access_key = reveal(self.config.AWS_ACCESS_KEY)
        secret_key = reveal(self.config.AWS_SECRET_KEY)
        if bool(access_key) != bool(secret_key):
            raise EC2ExecutorError(
                f"executor {self.name}: set both AWS_ACCESS_KEY and AWS_SECRET_KEY, or "
                "neither to use the default AWS credential chain"
            )
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=self.config.EC2_REGION,
        )
        return session.client(
            "ec2",
            endpoint_url=self.config.EC2_ENDPOINT_URL or None,
            config=BotoConfig(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=10,
                read_timeout=30,
                max_pool_connections=32,
                user_agent_extra="slipway",
            ),
        )

    async def _ec2(self) -> Any:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    try:
                        self._client = await asyncio.to_thread(self._make_client)
                    except BotoCoreError as exc:
                        raise _aws_error("client setup", exc) from None
        return self._client

    async def _call(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(operation, exc) from None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    # -- the AMI ---------------------------------------------------------------------

    async def _ami(self) -> str:
        if self.config.COREOS_AMI:
            return self.config.COREOS_AMI
        url = self.config.COREOS_STREAM_URL
        if not url:
            raise EC2ExecutorError(
                f"executor {self.name}: set COREOS_AMI (or COREOS_STREAM_URL to look it up)"
            )
        now = time.monotonic()
        if self._stream_ami is not None and now - self._stream_ami[0] < STREAM_CACHE_S:
            return self._stream_ami[1]
        ami = await self._ami_from_stream(url)
        self._stream_ami = (now, ami)
        return ami

    async def _ami_from_stream(self, url: str) -> str:
        """The AMI of the region and architecture in a CoreOS stream document
        (architectures.<arch>.images.aws.regions.<region>.image)."""
        region = self.config.EC2_REGION
        arch = architecture_of(self.config.EC2_INSTANCE_TYPE)
        try:
            async with httpx.AsyncClient(timeout=10.0, follow_redirects=True) as http:
                response = await http.get(url)
                response.raise_for_status()
                stream = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise EC2ExecutorError(
                f"COREOS_STREAM_URL {url}: cannot read the stream: {exc}"
            ) from None
        try:
            return str(stream["architectures"][arch]["images"]["aws"]["regions"][region]["image"])
        except (KeyError, TypeError):
            raise EC2ExecutorError(
                f"COREOS_STREAM_URL {url}: the stream has no AWS image for {arch} in "
                f"{region}; set COREOS_AMI instead"
            ) from None

    # -- the Executor interface --------------------------------------------------------

    def _tags(self, spec: WorkerSpec) -> list[dict[str, str]]:
        tags = {
            "Name": f"slipway-build-{spec.build_id}",
            BUILD_TAG: spec.build_id,
            JOB_TAG: spec.job_id,
            MANAGER_TAG: self.manager_id,
            EXECUTOR_TAG: self.name,
            NAMESPACE_TAG: spec.namespace,
        }
        return [{"Key": key, "Value": value[:256]} for key, value in tags.items()]

    async def _root_device(self, client: Any, ami: str) -> str:
        """The AMI's root device name, so BLOCK_DEVICE_SIZE resizes the root volume rather
        than adding a second one (CoreOS: /dev/xvda)."""
        if ami not in self._root_devices:
            response = await self._call("DescribeImages", client.describe_images, ImageIds=[ami])
            images = response.get("Images") or []
            if not images:
                raise EC2ExecutorError(
                    f"EC2 DescribeImages: the AMI {ami} does not exist in "
                    f"{self.config.EC2_REGION} (COREOS_AMI)",
                    "InvalidAMIID.NotFound",
                )
            self._root_devices[ami] = str(images[0].get("RootDeviceName") or "/dev/xvda")
        return self._root_devices[ami]

    def _run_request(
        self, spec: WorkerSpec, ami: str, root_device: str, user_data: str
    ) -> dict[str, Any]:
        config = self.config
        tags = self._tags(spec)
        request: dict[str, Any] = {
            "ImageId": ami,
            "InstanceType": config.EC2_INSTANCE_TYPE,
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": user_data,  # botocore base64-encodes it
            "BlockDeviceMappings": [
                {
                    "DeviceName": root_device,
                    "Ebs": {
                        "VolumeSize": config.BLOCK_DEVICE_SIZE,
                        "VolumeType": "gp3",
                        "DeleteOnTermination": True,
                    },
                }
            ],
            # The machine powers itself off after MAX_LIFETIME_S: that must end the bill.
            "InstanceInitiatedShutdownBehavior": "terminate",
            # IMDSv2 with one hop: containers behind a bridge cannot reach the metadata
            # service (the Ignition config also blocks it with nftables).
            "MetadataOptions": {
                "HttpTokens": "required",
                "HttpPutResponseHopLimit": 1,
                "HttpEndpoint": "enabled",
            },
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tags},
                {"ResourceType": "volume", "Tags": tags},
            ],
        }
        if config.EC2_VPC_SUBNET_ID:
            request["SubnetId"] = config.EC2_VPC_SUBNET_ID
        if config.EC2_SECURITY_GROUP_IDS:
            request["SecurityGroupIds"] = list(config.EC2_SECURITY_GROUP_IDS)
        if config.EC2_KEY_NAME:
            request["KeyName"] = config.EC2_KEY_NAME
        return request

    async def start_worker(self, spec: WorkerSpec) -> str:
        user_data = ignition_json(self.config, spec, block_metadata=True)
        if len(user_data.encode()) > USER_DATA_LIMIT:
            raise EC2ExecutorError(
                f"the Ignition config is {len(user_data.encode())} bytes, over EC2's "
                f"{USER_DATA_LIMIT}-byte user-data limit; use fewer CA_CERT/EXTRA_CA_CERTS "
                "certificates or SSH_AUTHORIZED_KEYS"
            )
        ami = await self._ami()
        client = await self._ec2()
        root_device = await self._root_device(client, ami)
        request = self._run_request(spec, ami, root_device, user_data)
        response = await self._call("RunInstances", client.run_instances, **request)
        instance_id = str(response["Instances"][0]["InstanceId"])
        log.info(
            "executor %s started instance %s (%s, %s) for build %s",
            self.name,
            instance_id,
            ami,
            request["InstanceType"],
            spec.build_id,
        )
        return instance_id

    async def stop_worker(self, worker_id: str) -> None:
        client = await self._ec2()
        try:
            if self.config.DEBUG:
                await self._keep(client, worker_id)
                return
            await self._call(
                "TerminateInstances", client.terminate_instances, InstanceIds=[worker_id]
            )
        except EC2ExecutorError as exc:
            if exc.code in _GONE:
                log.info("executor %s: instance %s is already gone", self.name, worker_id)
                return
            raise

    async def _keep(self, client: Any, worker_id: str) -> None:
        """DEBUG: leave the instance running for inspection (its MAX_LIFETIME_S still
        applies) but stop counting it as this manager's worker."""
        await self._call(
            "CreateTags",
            client.create_tags,
            Resources=[worker_id],
            Tags=[{"Key": KEPT_TAG, "Value": self.manager_id}],
        )
        await self._call(
            "DeleteTags", client.delete_tags, Resources=[worker_id], Tags=[{"Key": MANAGER_TAG}]
        )
        log.warning(
            "executor %s: DEBUG is set, instance %s is kept running for inspection",
            self.name,
            worker_id,
        )

    async def running_count(self) -> int:
        client = await self._ec2()
        filters = [
            {"Name": f"tag:{MANAGER_TAG}", "Values": [self.manager_id]},
            {"Name": f"tag:{EXECUTOR_TAG}", "Values": [self.name]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]

        def count() -> int:
            pages = client.get_paginator("describe_instances").paginate(Filters=filters)
            return sum(
                len(reservation["Instances"])
                for page in pages
                for reservation in page["Reservations"]
            )

        return await self._call("DescribeInstances", count)
