"""Which of the server's libraries a `slipway` command has loaded by the time it exits: a
client command has no use for them (tests/cli/test_cli_start.py, benchmarks/cli_start.py)."""

from __future__ import annotations

import subprocess
import sys

# pydantic is not among them: typer 0.29 converts a command's parameters with it
SERVER_LIBRARIES = ("slipway.config", "yaml", "sqlalchemy", "grpc", "cryptography", "fastapi",
                    "redis", "boto3")


def run_and_list_modules(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`argv` (["slipway", ...]) run in a fresh interpreter; its result (the module list
    taken off its stderr) and the modules it had loaded when it exited."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('LOADED', *sys.modules, file=sys.stderr))\n"
            f"sys.argv = {argv!r}\n"
            "from slipway.cli.main import app\n"
            "app()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    said, _, loaded = done.stderr.rpartition("LOADED")
    done.stderr = said
    return done, loaded.split()


def server_libraries_in(modules: list[str]) -> list[str]:
    return [name for name in SERVER_LIBRARIES
            if any(m == name or m.startswith(f"{name}.") for m in modules)]
