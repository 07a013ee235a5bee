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


# -- a worker's private directory, held while any of its processes lives ---------------
# The local executor and its worker each hold a shared flock on this file in the
# worker's directory; the kernel drops a lock with the last process holding it, however
# it ended (kill -9 included). A directory whose lock can be taken exclusively has no
# live worker and no live executor: it is abandoned, whichever manager made it.
DIRECTORY_LOCK = ".slipway-worker.lock"
# an abandoned directory without a lock file is removed only past this age: younger, its
# executor may be between creating it and locking it (directories of older versions
# have none)
UNLOCKED_DIRECTORY_AGE_S = 3600.0


def hold_directory(directory: str | os.PathLike[str], *, create: bool = True) -> int:
    """Take a shared lock on `directory`'s lock file for as long as the returned file
    descriptor is open (in this process and any that inherits it). Without `create`, a
    directory that has no lock file raises FileNotFoundError."""
    import fcntl

    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    fd = os.open(os.path.join(directory, DIRECTORY_LOCK), flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        raise
    return fd


def remove_abandoned_directories(parent: str | os.PathLike[str], prefix: str,
                                 now: float | None = None) -> list[str]:
    """Remove the directories `parent/prefix*` that no live process holds; the ones
    removed. A live worker's, of this manager or another on the same host, stays."""
    import fcntl
    import shutil
    import time

    removed = []
    for entry in sorted(os.listdir(parent)):
        path = os.path.join(parent, entry)
        if not entry.startswith(prefix) or not os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            fd = os.open(os.path.join(path, DIRECTORY_LOCK), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            age = (now or time.time()) - os.stat(path).st_mtime
            if age > UNLOCKED_DIRECTORY_AGE_S:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            continue
        except OSError:
            continue  # not ours to read
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # held: its worker or its executor lives
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed
