"""The executor interface: start, stop and count build workers on one control plane."""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from slipway.executors.config_base import ExecutorConfigBase

ConfigT = TypeVar("ConfigT", bound=ExecutorConfigBase)


class ExecutorError(Exception):
    """The control plane refused or failed to start/stop a worker. The manager then
    tries the next executor; the message is shown to operators, so it carries the
    control plane's own words (and never a secret)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What an executor needs to start one worker for one build attempt."""

    build_id: str
    job_id: str
    namespace: str
    registration_token: str
    # host:port the worker dials (BUILDMAN_HOSTNAME)
    manager_address: str
    # the worker environment (docs/protocol.md), ready to pass on
    environment: dict[str, str] = field(default_factory=dict)
    manager_id: str = ""


def staged_rollout_allows(namespace: str, fraction: float) -> bool:
    """Quay's rule: the last byte of sha256(namespace) < 256 * fraction."""
    return hashlib.sha256(namespace.encode()).digest()[-1] < 256 * fraction


class Executor(abc.ABC, Generic[ConfigT]):
    """One configured entry of EXECUTORS. `config` is its validated model, the executor's
    own (field names are the YAML keys: config.NAME, config.SETUP_TIME, ...)."""

    def __init__(self, config: ConfigT, manager_id: str) -> None:
        self.config: ConfigT = config
        self.manager_id = manager_id

    @property
    def name(self) -> str:
        return self.config.NAME

    @property
    def setup_time(self) -> int:
        return self.config.SETUP_TIME

    def allows(self, namespace: str, retries_remaining: int) -> bool:
        """Whether this executor may run an attempt of a build in `namespace` whose queue
        item has `retries_remaining` left after this attempt was counted."""
        threshold = self.config.MINIMUM_RETRY_THRESHOLD
        if threshold and retries_remaining < threshold:
            return False
        whitelist = self.config.NAMESPACE_WHITELIST
        if whitelist is not None and namespace not in whitelist:
            return False
        rollout = self.config.STAGED_ROLLOUT
        return rollout is None or staged_rollout_allows(namespace, rollout)

    @abc.abstractmethod
    async def start_worker(self, spec: WorkerSpec) -> str:
        """Start a worker; return its id on this control plane (process id, Job name,
        instance id). Raise ExecutorError when it cannot be started."""

    @abc.abstractmethod
    async def stop_worker(self, worker_id: str) -> None:
        """Stop the worker and everything it left running. A worker that is already
        gone is not an error. Raise ExecutorError when the control plane fails."""

    async def release_worker(self, worker_id: str) -> None:
        """The worker reported its build's end and leaves by itself once it has cleaned
        up. By default it is stopped at once: a Job or an instance takes its leftovers
        with it. An executor whose workers leave leftovers behind waits for them."""
        await self.stop_worker(worker_id)

    @abc.abstractmethod
    async def running_count(self) -> int:
        """Workers of this manager that this executor currently runs."""

    def hurry(self) -> None:  # an optional hook
        """A forced shutdown: stop workers from now on without waiting for them. A Job or
        an instance is deleted at once anyway, and takes its processes with it."""

    async def open(self) -> None:  # an optional hook
        """Get ready before the first build (the local executor starts a standby worker)."""

    async def close(self) -> None:  # an optional hook: most executors hold nothing
        """Release clients and connections."""
