"""The `ec2` executor's config."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import SecretStr, field_validator, model_validator

from slipway.config_fields import field, problem
from slipway.executors.config_base import ExecutorConfigBase


class EC2ExecutorConfig(ExecutorConfigBase):
    """`ec2`: an instance boots CoreOS with the Ignition config as user data."""

    IMPLEMENTATION: ClassVar[str] = "slipway.executors.ec2.executor:EC2Executor"

    EXECUTOR: Literal["ec2"]
    EC2_REGION: str = field(example="us-east-1")
    EC2_INSTANCE_TYPE: str = field(example="m5.large")
    AWS_ACCESS_KEY: SecretStr | None = field(None, example="AKIA...")
    AWS_SECRET_KEY: SecretStr | None = field(None, example="wJalr...")
    COREOS_AMI: str | None = field(None, example="ami-0123456789abcdef0")
    COREOS_STREAM_URL: str | None = field(
        None,
        example="http://127.0.0.1:8000/stable.json",
        description="CoreOS stream metadata to look COREOS_AMI up from",
    )
    EC2_VPC_SUBNET_ID: str | None = field(None, example="subnet-0123456789abcdef0")
    EC2_SECURITY_GROUP_IDS: list[str] = field(
        default_factory=list, example=["sg-0123456789abcdef0"]
    )
    EC2_KEY_NAME: str | None = field(None, example="builder-key")
    BLOCK_DEVICE_SIZE: int = field(48, example=48, unit="GiB", ge=1)
    EC2_ENDPOINT_URL: str | None = field(
        None, example="http://127.0.0.1:5000", description="for EC2-compatible clouds and tests"
    )

    @field_validator("EC2_SECURITY_GROUP_IDS", mode="before")
    @classmethod
    def _one_group(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_ami(self) -> EC2ExecutorConfig:
        if not self.COREOS_AMI and not self.COREOS_STREAM_URL:
            raise problem(
                "is required (there is no stream lookup without internet); add e.g. "
                "COREOS_AMI: ami-0123456789abcdef0, or give COREOS_STREAM_URL",
                key="COREOS_AMI",
            )
        if (self.AWS_ACCESS_KEY is None) != (self.AWS_SECRET_KEY is None):
            missing = "AWS_SECRET_KEY" if self.AWS_SECRET_KEY is None else "AWS_ACCESS_KEY"
            raise problem(
                "AWS_ACCESS_KEY and AWS_SECRET_KEY go together; give both, or "
                "neither to use the default AWS credential chain",
                key=missing,
            )
        return self
