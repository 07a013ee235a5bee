"""Finding and ending the processes of one build by their session or process group (Linux).

A build's processes are found by the ids that every descendant inherits and keeps: the
local executor starts each worker as the leader of its own session, and the worker starts
each podman/buildah call as the leader of a process group inside that session. podman
and buildah with `--isolation chroot` run a RUN step (buildah-chroot-runtime,
buildah-chroot-exec, the step's shell and its children) in the runtime's own process
group and session. When the runtime dies, its helpers die with it, but the step's own
processes are re-parented to PID 1 and run on, still in that group and session; they
carry the container's environment, not the worker's, so only these ids find them.

A process that calls setsid() itself (a daemon started by a RUN step) leaves both; only
a cgroup would hold it, and on Kubernetes or EC2 the Job's or the instance's end does.

Stdlib only: the worker imports this at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

POLL_SECONDS = 0.05
# SIGKILL rounds before giving up on a process that will not go (it is in the kernel,
# e.g. waiting on a dead NFS server; nothing more can be done from here)
KILL_ROUNDS = 100


@dataclass(frozen=True)
class Proc:
    pid: int
    pgid: int
    sid: int

    @property
    def leads_group(self) -> bool:
        return self.pid == self.pgid


def processes() -> list[Proc]:
    """Every live process (zombies, which only wait to be reaped, left out)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # the command name in parentheses may hold spaces and parentheses
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] in ("Z", "X"):
            continue
        found.append(Proc(int(entry), int(fields[2]), int(fields[3])))
    return found


def session_members(sid: int) -> list[Proc]:
    return [p for p in processes() if p.sid == sid]


def group_members(pgid: int) -> list[Proc]:
    return [p for p in processes() if p.pgid == pgid]


def send(procs: list[Proc], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, sig)


async def wait_gone(find: Callable[[], list[Proc]], within: float) -> bool:
    """Whether `find` comes back empty within `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while find():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


async def end_processes(
    find: Callable[[], list[Proc]], *, term_grace: float = 0.0, cleanup_grace: float = 0.0
) -> None:
    """End every process `find` returns, and any that appear while it does.

    The followers (processes that lead no group: a RUN step, the runtime's helpers) go
    first: SIGTERM, then after `term_grace` SIGKILL. The runtime, a group leader, sees
    its step fail and removes its working container; it gets `cleanup_grace` for that.
    Then everything left is SIGKILLed until nothing is. With no graces: SIGKILL at once.
    With no follower (the runtime is between steps, or in COMMIT) there is nothing for it
    to see fail, so no grace is waited: it is killed at once, and what it leaves (working
    containers, a half-tagged image) is the worker's clean-up's to remove."""
    step_running = any(not p.leads_group for p in find())
    if term_grace > 0 and step_running:
        send([p for p in find() if not p.leads_group], signal.SIGTERM)
        if await wait_gone(find, term_grace):
            return
    if cleanup_grace > 0 and step_running:
        send([p for p in find() if not p.leads_group], signal.SIGKILL)
        if await wait_gone(find, cleanup_grace):
            return
    for _ in range(KILL_ROUNDS):
        left = find()
        if not left:
            return
        send(left, signal.SIGKILL)
        await asyncio.sleep(POLL_SECONDS)
