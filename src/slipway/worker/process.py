"""Run a child process, streaming each output line to a callback as it arrives, and
kill its whole process group if the build is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

LineSink = Callable[[str], Awaitable[None]]
TAIL_LINES = 40
MAX_LINE = 64 * 1024  # a longer "line" is split, so one log entry stays bounded
KILL_GRACE = 5.0


@dataclass
class ProcessResult:
    returncode: int
    stdout: list[str] = field(default_factory=list)  # last TAIL_LINES lines
    stderr: list[str] = field(default_factory=list)

    def error_text(self) -> str:
        """The runtime's own message: from its last `Error` line on, else its last lines."""
        lines = [ln for ln in self.stderr if ln.strip()] or [ln for ln in self.stdout if ln.strip()]
        for i in range(len(lines) - 1, -1, -1):
            if lines[i].lstrip().lower().startswith(("error", "fatal")):
                return "\n".join(lines[i:])
        return "\n".join(lines[-5:]) or f"exited with status {self.returncode}"


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment minus its own secrets; proxies etc. pass through."""
    env = {k: v for k, v in os.environ.items() if k not in ("TOKEN",)}
    env.update(extra or {})
    return env


async def _pump(stream: asyncio.StreamReader, tail: deque[str], sink: LineSink | None) -> None:
    buf = b""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) < MAX_LINE:
                    break
                nl = MAX_LINE
                line, buf = buf[:nl], buf[nl:]
            else:
                line, buf = buf[:nl], buf[nl + 1 :]
            await _emit(line, tail, sink)
    if buf:
        await _emit(buf, tail, sink)


async def _emit(raw: bytes, tail: deque[str], sink: LineSink | None) -> None:
    # progress bars redraw with \r: keep what the terminal would finally show
    text = raw.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]
    tail.append(text)
    if sink is not None:
        await sink(text)


def _signal_group(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _group_children(pgid: int) -> list[int]:
    """Processes of the group other than its leader (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == pgid:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found.append(int(entry))
    return found


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Stop a cancelled child. The children go first (a RUN step), so podman/buildah see
    the step fail and remove their working container themselves; then the rest."""
    if proc.returncode is None:
        for pid in _group_children(proc.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
    if proc.returncode is None:
        _signal_group(proc, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
    _signal_group(proc, signal.SIGKILL)  # whatever is left of the group


async def run_process(
    argv: Sequence[str],
    sink: LineSink | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin_data: bytes | None = None,
) -> ProcessResult:
    """Run argv to completion. A missing program raises FileNotFoundError."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else child_environment(),
        cwd=cwd,
        start_new_session=True,  # its own process group, killed as a whole on cancel
    )
    out: deque[str] = deque(maxlen=TAIL_LINES)
    err: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        if stdin_data is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin_data)
            await proc.stdin.drain()
            proc.stdin.close()
        assert proc.stdout is not None and proc.stderr is not None
        await asyncio.gather(_pump(proc.stdout, out, sink), _pump(proc.stderr, err, sink))
        returncode = await proc.wait()
    except BaseException:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(_stop(proc))
        raise
    return ProcessResult(returncode, list(out), list(err))
