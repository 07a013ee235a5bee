"""`slipway build` starts without the server's libraries: every client command used to
load the server's configuration models and PyYAML first, about 0.1 s of its start here
(benchmarks/README.md, the CLI's start). The commands that need them (`config`, `deploy`,
`serve`, `worker`) load them when they run: tests/cli/test_config_cli.py and the others
run those."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

SERVER_LIBRARIES = ("slipway.config", "yaml", "sqlalchemy", "grpc", "cryptography", "fastapi",
                    "redis", "boto3")


def test_build_reaches_its_first_request_without_the_servers_libraries(
    tmp_path: Path,
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{s.getsockname()[1]}"
    argv = ["slipway", "build", str(tmp_path), "-t", "127.0.0.1:5000/team/app",
            "--server", refused, "--token", "t"]
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('LOADED', *sys.modules, file=sys.stderr))\n"
            f"sys.argv = {argv!r}\n"
            "from slipway.cli.main import app\n"
            "app()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    said, _, loaded = done.stderr.rpartition("LOADED")
    assert done.returncode == 1 and "is `slipway serve` running?" in said, done.stderr
    modules = loaded.split()
    assert "slipway.cli.builds_cmd" in modules
    assert [name for name in SERVER_LIBRARIES
            if any(m == name or m.startswith(f"{name}.") for m in modules)] == []
