"""The `slipway` command starts without the server's libraries: every client command
(`slipway build`, `logs`, `builds`) used to load pydantic and the config's models first,
about a fifth of a second of its start here (benchmarks/README.md, the CLI's start). The
commands that need them (`config`, `serve`, `worker`, `deploy`) load them when they run:
tests/cli/test_config_cli.py and the others run those."""

from __future__ import annotations

import subprocess
import sys

SERVER_LIBRARIES = {"pydantic", "yaml", "sqlalchemy", "grpc", "cryptography", "fastapi",
                    "redis", "boto3"}


def test_the_command_starts_without_the_servers_libraries() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, slipway.cli.main; "
         "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
        check=True, capture_output=True, text=True, timeout=60).stdout.split()
    assert SERVER_LIBRARIES.intersection(loaded) == set()
