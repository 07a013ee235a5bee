"""The `slipway` console script run as a real process, as CI runs it: its standard output
and error in files the test reads while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SLIPWAY = Path(sys.executable).parent / "slipway"
GUARD_S = 300.0  # against a hang; not a timing assertion


class CliProcess:
    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str],
                 name: str = "cli") -> None:
        self.stdout_path = tmp_path / f"{name}.out"
        self.stderr_path = tmp_path / f"{name}.err"
        full_env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COLUMNS": "",
                    **env}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([str(SLIPWAY), *args], stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, env=full_env)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, text: str, *, stream: str = "stdout", within: float = GUARD_S) -> None:
        deadline = time.monotonic() + within
        while text not in (self.stdout if stream == "stdout" else self.stderr):
            if self.proc.poll() is not None:
                raise AssertionError(f"slipway exited {self.proc.returncode} before printing "
                                     f"{text!r}:\n{self.stdout}\n{self.stderr}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never printed:\n{self.stdout}\n{self.stderr}")
            time.sleep(0.05)

    def wait(self, within: float = GUARD_S) -> int:
        try:
            return self.proc.wait(within)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"slipway still running:\n{self.stdout}\n{self.stderr}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def log_lines(entries: list[dict[str, object]]) -> list[str]:
    """How `slipway build`/`logs` print log entries (phases marked with ──)."""
    return [f"── {e['message']}" if e.get("type") == "phase" else str(e["message"])
            for e in entries]


def printed_once_in_order(printed: str, expected: list[str]) -> bool:
    """Whether the lines `expected` are in `printed` as one block, none repeated
    elsewhere (a log line printed twice, or one missing, fails)."""
    lines = printed.splitlines()
    n = len(expected)
    blocks = [i for i in range(len(lines) - n + 1) if lines[i:i + n] == expected]
    return len(blocks) == 1 and all(lines.count(line) == expected.count(line)
                                    for line in expected)
