"""Run a child process, streaming each output line to a callback as it arrives, and
end its whole process group if the build is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from slipway.process_tree import end_processes, group_members

LineSink = Callable[[str], Awaitable[None]]
TAIL_LINES = 40
MAX_LINE = 64 * 1024  # a longer "line" is split, so one log entry stays bounded
# a cancelled RUN step gets this long to exit on SIGTERM, then the runtime this long to
# remove its working container once the step is killed (podman takes about a second)
STEP_TERM_GRACE = 2.0
RUNTIME_CLEANUP_GRACE = 2.0
# a runtime's own error line: `Error: ...` (podman, buildah), `ERROR: ...` (docker), and
# logrus lines of level error or fatal
_RUNTIME_ERROR = re.compile(r'^(?:error|fatal)\b|^time="[^"]*" level=(?:error|fatal) ', re.I)


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


class TrailingErrors:
    """Holds back the runtime's own error lines while nothing has followed them. When the
    runtime then fails, its message becomes the build's one error entry, so those lines
    are dropped rather than shown twice; when anything follows, or the runtime succeeds,
    they go out in their place."""

    def __init__(self, sink: LineSink) -> None:
        self._sink = sink
        self._held: list[str] = []

    async def output(self, line: str) -> None:
        await self.release()
        await self._sink(line)

    async def errors(self, line: str) -> None:
        if _RUNTIME_ERROR.match(line):
            self._held.append(line)
            return
        await self.output(line)

    async def release(self) -> None:
        held, self._held = self._held, []
        for line in held:
            await self._sink(line)


async def _stop(proc: asyncio.subprocess.Process, *, at_once: bool = False) -> None:
    """Stop a cancelled child and everything in its process group. The RUN step's
    processes go first, so podman/buildah see the step fail and remove their working
    container themselves; then whatever is left, including processes the runtime's
    death re-parented to PID 1 (they stay in the group). `at_once`: all of it SIGKILLed
    now, so that the runtime goes no step further (the caller removes what it leaves)."""
    group = proc.pid
    if proc.returncode is None and not at_once:
        await end_processes(lambda: group_members(group), term_grace=STEP_TERM_GRACE,
                            cleanup_grace=RUNTIME_CLEANUP_GRACE)
    else:
        await end_processes(lambda: group_members(group))
    await proc.wait()


async def run_process(
    argv: Sequence[str],
    sink: LineSink | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stdin_data: bytes | None = None,
    hold_errors: bool = False,
    stop_at_once: bool = False,
) -> ProcessResult:
    """Run argv to completion. A missing program raises FileNotFoundError. With
    `hold_errors`, the trailing error lines of a run that fails are not sent to `sink`
    (see TrailingErrors): the caller reports them as the error. `stop_at_once`: a run
    stopped (cancelled, or its sink raised) is killed without the RUN step's grace."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else child_environment(),
        cwd=cwd,
        # its own process group, ended as a whole on cancel; in the worker's session,
        # where the executor finds it if the worker itself is killed
        process_group=0,
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
        held = TrailingErrors(sink) if hold_errors and sink is not None else None
        await asyncio.gather(_pump(proc.stdout, out, held.output if held else sink),
                             _pump(proc.stderr, err, held.errors if held else sink))
        returncode = await proc.wait()
        if held is not None and returncode == 0:
            await held.release()
    except BaseException:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(_stop(proc, at_once=stop_at_once))
        raise
    return ProcessResult(returncode, list(out), list(err))
