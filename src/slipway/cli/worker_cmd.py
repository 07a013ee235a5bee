"""`slipway worker`: run one build worker, configured by the environment (docs/protocol.md)."""

from __future__ import annotations

import typer

ENV_HELP = """Run one build worker: register with the manager, build, push, report.

Configured by the environment an executor sets: TOKEN, SERVER, BUILD_UUID,
CONTAINER_RUNTIME (podman|buildah|docker), BUILDAH_ISOLATION, INSECURE, TLS_CERT_PATH,
DOCKER_HOST, HTTP(S)_PROXY/NO_PROXY, REGISTRY_HOSTNAME; slipway additions:
INSECURE_REGISTRIES (comma-separated, reached over plain HTTP / without TLS verify),
INSECURE_LOOPBACK (true: every registry on loopback is too),
CONTEXT_MAX_BYTES, CONTEXT_MAX_FILES, STORAGE_DRIVER, HEARTBEAT_INTERVAL, RETRY_WINDOW,
WORK_DIR.

Exit status: 0 the build's end (COMPLETE/ERROR) was delivered or the manager told the
worker to stop; 1 the worker failed; 2 bad environment; 3 the manager was unreachable.
"""


def register(app: typer.Typer) -> None:
    """Add `slipway worker` to the main app."""

    @app.command("worker", help=ENV_HELP)
    def worker(
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    ) -> None:
        from slipway.worker.entry import run_from_environment

        raise typer.Exit(run_from_environment(verbose))
