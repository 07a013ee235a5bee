"""How long the `slipway` command takes before its own work: `slipway --version` (which
loads every command), and `slipway build` up to its first request (to a port nobody
serves, so it stops there), each run one process after the other, against the Python
interpreter alone; and which of the server's libraries that loads."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import rounded


def _median_s(argv: list[str], runs: int, *, fails: bool = False) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if (done.returncode != 0) != fails:
            raise RuntimeError(f"{' '.join(argv[:2])}: exit {done.returncode}: "
                               f"{(done.stderr or done.stdout)[-500:]}")
    return statistics.median(times)


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run(runs: int = 15) -> dict[str, Any]:
    from support.cli_modules import run_and_list_modules, server_libraries_in

    slipway = str(Path(sys.executable).with_name("slipway"))
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Dockerfile").write_text("FROM scratch\n")
        build = ["build", context, "-t", "127.0.0.1:5000/team/app", "--server",
                 _refused_url(), "--token", "t"]
        python_alone = _median_s([sys.executable, "-c", "pass"], runs)
        version = _median_s([slipway, "--version"], runs)
        build_start = _median_s([slipway, *build], runs, fails=True)
        _, modules = run_and_list_modules(["slipway", *build])
    return {
        "runs": runs,
        "python_alone_s": rounded(python_alone, 3),
        "slipway_version_s": rounded(version, 3),
        "build_to_first_request_s": rounded(build_start, 3),
        "server_libraries_loaded": server_libraries_in(modules),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 15), indent=2))
