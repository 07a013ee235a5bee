"""How long the `slipway` command takes to start, before it does anything: `slipway
--version` (which loads every command, as each command does), run one process after the
other, against the Python interpreter alone; and which libraries that start loads."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import rounded

# the server's libraries: a client command has no use for them
SERVER_LIBRARIES = ("pydantic", "yaml", "sqlalchemy", "grpc", "cryptography", "fastapi",
                    "redis", "boto3")


def _median_s(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loaded_server_libraries() -> list[str]:
    said = subprocess.run(
        [sys.executable, "-c", "import sys, slipway.cli.main; "
         "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
        check=True, capture_output=True, text=True).stdout.split()
    return [name for name in SERVER_LIBRARIES if name in said]


def run(runs: int = 15) -> dict[str, Any]:
    slipway = str(Path(sys.executable).with_name("slipway"))
    python_alone = _median_s([sys.executable, "-c", "pass"], runs)
    command = _median_s([slipway, "--version"], runs)
    return {
        "runs": runs,
        "slipway_version_s": rounded(command, 3),
        "python_alone_s": rounded(python_alone, 3),
        "slipway_own_start_s": rounded(command - python_alone, 3),
        "server_libraries_loaded": loaded_server_libraries(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 15), indent=2))
