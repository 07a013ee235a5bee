"""`slipway openshift ...`: the cluster set-up of docs/openshift.md (manifests, preflight checks,
TLS certificate checks)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from slipway.cli.help_format import MARKUP_MODE
from slipway.openshift.checks import Check, failed

if TYPE_CHECKING:
    from slipway.executors.kubernetes.config import KubernetesExecutorConfig

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

app = typer.Typer(
    help="OpenShift set-up: manifests, preflight checks, TLS checks.",
    no_args_is_help=True, rich_markup_mode=MARKUP_MODE
)
tls_app = typer.Typer(
    help="Checks of Quay's TLS certificate (docs/openshift.md, 6.4.1).",
    no_args_is_help=True, rich_markup_mode=MARKUP_MODE
)
app.add_typer(tls_app, name="tls")


def _print(checks: list[Check]) -> None:
    for check in checks:
        typer.echo(check.line())


@app.command()
def manifests(
    namespace: str = typer.Option("builder", "--namespace", "-n", help="Project of the builds."),
    service_account: str = typer.Option(
        "quay-builder", "--service-account", help="Service account the build pods run as."
    ),
    scc: str = typer.Option(
        "", "--scc", help="Name of the SecurityContextConstraints (default: the service account)."
    ),
) -> None:
    """Print the objects of docs/openshift.md's 6.4.2 as YAML for `oc apply -f -`.

    Namespace, ServiceAccount, `edit` RoleBinding, SecurityContextConstraints, and the Role
    and RoleBinding that let the service account use the SCC."""
    from slipway.openshift.manifests import builder_manifests, to_yaml

    for option, value in (
        ("--namespace", namespace),
        ("--service-account", service_account),
        ("--scc", scc or service_account),
    ):
        if not _DNS_LABEL.match(value):
            typer.echo(
                f"error: {option} {value!r} is not a valid name: use lower-case letters, "
                "digits and '-', starting and ending with a letter or digit, at most "
                "63 characters",
                err=True,
            )
            raise typer.Exit(2)

    typer.echo(to_yaml(builder_manifests(namespace, service_account, scc or None)), nl=False)


def _kubernetes_executors(config_path: Path, name: str) -> list[KubernetesExecutorConfig]:
    from slipway.config import ConfigError, load_config
    from slipway.executors.kubernetes.config import KubernetesExecutorConfig

    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        for message in exc.messages:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    manager = loaded.config.manager
    executors = [
        e
        for e in (manager.EXECUTORS if manager else [])
        if isinstance(e, KubernetesExecutorConfig) and (not name or name == e.NAME)
    ]
    if not executors:
        which = f"named {name!r} " if name else ""
        typer.echo(
            f"{config_path}: no kubernetes executor {which}in BUILD_MANAGER[1].EXECUTORS; "
            "add one with EXECUTOR: kubernetes (see `slipway config check`)",
            err=True,
        )
        raise typer.Exit(2)
    return executors


@app.command()
def preflight(
    config: Path = typer.Option(..., "--config", "-c", help="The config.yaml to check."),
    executor: str = typer.Option("", "--executor", help="Only the executor with this NAME."),
) -> None:
    """Check the cluster of each kubernetes executor of a config.yaml.

    API reachable over verified TLS, credentials valid, namespace and rights in it, SCC,
    labelled nodes. One line per check; exit 1 on any failure."""
    from slipway.openshift.preflight import preflight as run_preflight

    any_failed = False
    for executor_config in _kubernetes_executors(config, executor):
        typer.echo(
            f"executor {executor_config.NAME} ({executor_config.EXECUTOR}) -> "
            f"{executor_config.K8S_API_SERVER}, namespace {executor_config.BUILDER_NAMESPACE}"
        )
        checks = asyncio.run(run_preflight(executor_config))
        _print(checks)
        any_failed = any_failed or failed(checks)
    if any_failed:
        raise typer.Exit(1)


@tls_app.command("check")
def tls_check(
    cert: Path = typer.Option(..., "--cert", help="The certificate (ssl.cert)."),
    key: Path = typer.Option(..., "--key", help="Its private key (ssl.key)."),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Quay's config.yaml: the hosts are its SERVER_HOSTNAME and BUILDMAN_HOSTNAME.",
    ),
    hostname: str = typer.Option(
        "", "--hostname", help="Quay's host name (SERVER_HOSTNAME), when it is a custom one."
    ),
    builder_hostname: str = typer.Option(
        "", "--builder-hostname", help="The host workers dial (BUILDMAN_HOSTNAME)."
    ),
    registry_name: str = typer.Option(
        "", "--registry-name", help="The QuayRegistry's name (the operator's route names)."
    ),
    namespace: str = typer.Option("", "--namespace", help="Namespace of the QuayRegistry."),
    domain: str = typer.Option("", "--domain", help="The cluster's apps domain."),
) -> None:
    """Check Quay's certificate for the builder (docs/openshift.md, 6.4.1).

    It must cover the Quay host and the builder host (or a wildcard covering both), match
    the key, and be valid. The hosts come from --hostname/--builder-hostname, else from
    --config (SERVER_HOSTNAME, BUILDMAN_HOSTNAME), else from the operator's route names
    (--registry-name, --namespace, --domain). Exit 1 on any failure (expiry within 30
    days only warns)."""
    from slipway.openshift.tls import RouteNames, check_certificate, route_names

    quay, builder = hostname, builder_hostname
    if config is not None:
        from slipway.config import ConfigError, load_config
        from slipway.config_fields import split_host_port

        try:
            loaded = load_config(config).config
        except ConfigError as exc:
            for message in exc.messages:
                typer.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None
        quay = quay or split_host_port(loaded.SERVER_HOSTNAME)[0]
        builder = builder or split_host_port(loaded.BUILDMAN_HOSTNAME)[0]
    route_options = (registry_name, namespace, domain)
    if any(route_options) and not all(route_options):
        typer.echo(
            "error: --registry-name, --namespace and --domain go together (they make the "
            "operator's route names); give all three, or --hostname/--config",
            err=True,
        )
        raise typer.Exit(2)
    if all(route_options):
        defaults = route_names(registry_name, namespace, domain)
        quay, builder = quay or defaults.quay, builder or defaults.builder
    for value, how in (
        (quay, "--hostname, --config (SERVER_HOSTNAME)"),
        (builder, "--builder-hostname, --config (BUILDMAN_HOSTNAME)"),
    ):
        if not value:
            typer.echo(
                f"error: which host to check is not known: give {how}, or --registry-name, "
                "--namespace and --domain for the operator's route names",
                err=True,
            )
            raise typer.Exit(2)
    checks = check_certificate(cert, key, RouteNames(quay=quay.lower(), builder=builder.lower()))
    _print(checks)
    if failed(checks):
        raise typer.Exit(1)
