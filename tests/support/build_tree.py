"""The processes and directories of one real build, found precisely (other builds, of
other checkouts too, run podman on the same machine at the same time).

A build's RUN step carries a marker that no other build has (`RUN echo <marker> && sleep
...`): its shell's command line holds it. The build's processes are those of the
sessions of the worker and of that shell (podman, buildah and their helpers share the
shell's session whatever the worker did with it), plus any process still holding the
marker; its directories are those the runtime's command line names (`--iidfile DIR/...`)
and the worker's private directory. Session ids are not reused while a member lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from support.images import host_images

SAFETY_LIMIT_S = 120.0  # guards against a hang; not a timing assertion


def new_marker() -> str:
    return f"slipway-test-{uuid.uuid4().hex[:12]}"


def long_run(base_image: str, marker: str) -> str:
    """A Dockerfile whose RUN step runs until it is stopped (an hour and more)."""
    return f"FROM {base_image}\nRUN echo {marker} started && sleep 3601 && echo done\n"


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _session(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[3])


def _pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


@dataclass
class BuildTree:
    marker: str
    build_id: str
    sessions: set[int] = field(default_factory=set)
    directories: set[Path] = field(default_factory=set)
    # the build's image names (registry/repository:tag) and the marker the worker gave
    # its working containers (the name of its private build directory)
    image_names: set[str] = field(default_factory=set)
    container_marker: str = ""

    def _running(self) -> list[tuple[int, str]]:
        """The build's processes still running: (pid, command line)."""
        found = []
        for pid in _pids():
            if pid == os.getpid():
                continue
            command = _cmdline(pid)
            sid = _session(pid)
            if sid is None:
                continue
            if sid in self.sessions or self.marker in command:
                found.append((pid, command))
        return found

    def alive(self) -> list[str]:
        """The build's processes still running, as "pid: command line"."""
        return [f"{pid}: {command[:200]}" for pid, command in self._running()]

    def kill_all(self) -> None:
        """SIGKILL every process of the build at once (the OOM killer taking them all)."""
        for pid, _ in self._running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def leftover_images(self) -> list[str]:
        """Images on this host that still carry one of the build's names."""
        if not self.image_names:
            return []
        return sorted(f"{str(image['Id'])[:12]}: {len(names)} names"
                      for image in host_images()
                      if self.image_names & (names := set(image.get("Names") or ())))

    def leftover_containers(self) -> list[str]:
        """buildah working containers of this build (found as the worker finds them)."""
        if not self.container_marker:
            return []
        from slipway.worker.runtimes.leftovers import marked_containers

        ids = _podman("ps", "--all", "--external", "--no-trunc", "--format", "{{.ID}}")
        root, _, driver = _podman(
            "info", "--format", "{{.Store.GraphRoot}}|{{.Store.GraphDriverName}}"
        ).strip().partition("|")
        return marked_containers(Path(root) / f"{driver}-containers", ids.split(),
                                 self.container_marker)

    def leftover_directories(self) -> list[Path]:
        private = Path(tempfile.gettempdir()).glob(f"slipway-worker-{self.build_id}-*")
        return sorted(d for d in {*self.directories, *private} if d.exists())


async def running_build(marker: str, build_id: str, worker_pid: int | None = None) -> BuildTree:
    """Once the marked RUN step runs: the build's sessions and directories."""
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while True:
        steps = [pid for pid in _pids() if pid != os.getpid() and marker in _cmdline(pid)]
        if steps:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the RUN step marked {marker} never started")
        await asyncio.sleep(0.1)
    tree = BuildTree(marker, build_id)
    tree.sessions = {s for s in map(_session, steps) if s is not None}
    if worker_pid is not None and (sid := _session(worker_pid)) is not None:
        tree.sessions.add(sid)
    for pid in _pids():
        if _session(pid) in tree.sessions:
            words = _cmdline(pid).split()
            for flag, value in itertools.pairwise(words):
                if flag == "--iidfile":
                    tree.directories.add(Path(value).parent)
    assert tree.directories, "the runtime's command line named no build directory"
    tree.container_marker = next(iter(tree.directories)).name
    return tree


async def step_command_running(tree: BuildTree, command: str) -> None:
    """Once the RUN step's own command (`command`, the start of its command line) runs in
    the build's sessions: before, the marker is seen while buildah still sets the step
    up, and a worker killed then leaves a step the runtime had not started to end."""
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while not any(_session(pid) in tree.sessions and _cmdline(pid).startswith(command)
                  for pid in _pids()):
        if time.monotonic() > deadline:
            raise AssertionError(f"the RUN step's {command!r} never ran")
        await asyncio.sleep(0.05)


def _podman(*args: str) -> str:
    driver = os.environ.get("STORAGE_DRIVER", "").strip()
    argv = ["podman", *(["--storage-driver", driver] if driver else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{argv}: {result.stderr[-2000:]}"
    return result.stdout


async def assert_no_process_or_directory_left(tree: BuildTree) -> None:
    """No process and no directory of the build remain (waits for them to go)."""
    deadline = time.monotonic() + SAFETY_LIMIT_S
    while tree.alive() or tree.leftover_directories():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"left behind: processes {tree.alive()}, "
                f"directories {tree.leftover_directories()}")
        await asyncio.sleep(0.1)


def remove_leftover_containers(tree: BuildTree) -> None:
    """Remove the build's working containers (what a forced stop may leave: the worker
    is killed before it can)."""
    leftovers = tree.leftover_containers()
    if leftovers:
        _podman("rm", "--force", *leftovers)


async def assert_nothing_left(tree: BuildTree) -> None:
    """No process and no directory of the build remain (waits for them to go); once
    they are gone, no working container and no image of the build either."""
    await assert_no_process_or_directory_left(tree)
    assert tree.leftover_containers() == [], "working containers left behind"
    assert tree.leftover_images() == [], "images left behind"
