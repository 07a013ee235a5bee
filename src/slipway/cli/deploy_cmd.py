"""`slipway deploy manifests`: the objects that run slipway itself on OpenShift or
Kubernetes, as YAML for `oc apply -f -` / `kubectl apply -f -`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from slipway.cli.help_format import MARKUP_MODE
from slipway.images import MANAGER_IMAGE_REFERENCE

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$)({_LABEL}\.)*{_LABEL}$")

app = typer.Typer(help="Run slipway itself on OpenShift or Kubernetes.",
    no_args_is_help=True, rich_markup_mode=MARKUP_MODE)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _load(config_path: Path) -> Any:
    from slipway.config import ConfigError, load_config

    try:
        return load_config(config_path).config
    except ConfigError as exc:
        for message in exc.messages:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None


@app.command()
def manifests(
    namespace: str = typer.Option(
        "slipway", "--namespace", "-n", metavar="NAME", help="Namespace of the managers."
    ),
    replicas: int = typer.Option(
        1, "--replicas", metavar="N", help="Number of manager pods."),
    platform: str = typer.Option(
        "openshift", "--platform", metavar="PLATFORM",
        help="openshift (Routes, SCC) or kubernetes (Ingresses)."
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="The config.yaml the managers will run with: checked for N replicas; the "
        "ports, PUBLIC_URL's host and BUILDMAN_HOSTNAME are taken from it.",
    ),
    http_host: str = typer.Option(
        "", "--http-host", metavar="HOST", help="Host name of the HTTP API."),
    grpc_host: str = typer.Option(
        "", "--grpc-host", metavar="HOST",
        help="Host name workers dial for gRPC (BUILDMAN_HOSTNAME)."
    ),
    grpc_tls: str = typer.Option(
        "passthrough",
        "--grpc-tls",
        metavar="MODE",
        help="OpenShift gRPC Route: passthrough, or reencrypt (with --grpc-destination-ca).",
    ),
    grpc_destination_ca: Path | None = typer.Option(
        None, "--grpc-destination-ca", help="reencrypt: CA (PEM) of the pods' gRPC certificate."
    ),
    image: str = typer.Option(
        MANAGER_IMAGE_REFERENCE, "--image", metavar="IMAGE", help="The manager image."),
    config_secret: str = typer.Option(
        "slipway-config",
        "--config-secret",
        metavar="NAME",
        help="Secret with config.yaml and its files (mounted at /conf/stack).",
    ),
    ingress_class: str = typer.Option(
        "nginx", "--ingress-class", metavar="NAME", help="kubernetes: IngressClass."),
    tls_secret: str = typer.Option(
        "", "--tls-secret", metavar="NAME",
        help="kubernetes: TLS Secret of the Ingresses' hosts."
    ),
    data_size: str = typer.Option(
        "10Gi", "--data-size", metavar="SIZE", help="Size of the DATA_DIR volume."),
    storage_class: str = typer.Option(
        "", "--storage-class", metavar="NAME",
        help="StorageClass of the DATA_DIR volume (ReadWriteMany if N > 1)."
    ),
    cpu_request: str = typer.Option(
        "500m", "--cpu-request", metavar="CPU",
        help="CPU each manager pod requests (Kubernetes quantity, e.g. 500m)."),
    memory_request: str = typer.Option(
        "512Mi", "--memory-request", metavar="MEMORY",
        help="Memory each manager pod requests (e.g. 512Mi)."),
    cpu_limit: str = typer.Option(
        "2", "--cpu-limit", metavar="CPU", help="CPU limit of each manager pod (e.g. 2)."),
    memory_limit: str = typer.Option(
        "2Gi", "--memory-limit", metavar="MEMORY",
        help="Memory limit of each manager pod (e.g. 2Gi)."),
    builder_namespace: str = typer.Option(
        "builder", "--builder-namespace", metavar="NAME",
        help="Namespace of the build pods (BUILDER_NAMESPACE)."
    ),
    builder_service_account: str = typer.Option(
        "quay-builder", "--builder-service-account", metavar="NAME",
        help="Service account of the build pods."
    ),
    scc: str = typer.Option(
        "", "--scc", metavar="NAME", help="SCC name (default: the builder service account)."),
) -> None:
    """Print every object that runs slipway: the builder namespace's (docs/openshift.md, 6.4.2), the
    managers' RBAC there, and N managers behind one HTTP and one gRPC address.

    The config is not in them: create the Secret from your files first
    (`oc create secret generic slipway-config --from-file=config.yaml ...`)."""
    from slipway.deploy.from_config import config_facts
    from slipway.deploy.manifests import DeployOptions, deploy_manifests
    from slipway.openshift.manifests import to_yaml

    if replicas < 1:
        _fail(f"--replicas {replicas}: give 1 or more")
    if platform not in ("openshift", "kubernetes"):
        _fail(f"--platform {platform!r}: use openshift or kubernetes")
    if grpc_tls not in ("passthrough", "reencrypt"):
        _fail(
            f"--grpc-tls {grpc_tls!r}: use passthrough or reencrypt (gRPC needs HTTP/2 to "
            "the pod, which an edge-terminated Route does not give)"
        )
    scc = scc or builder_service_account
    for option, value in (
        ("--namespace", namespace),
        ("--builder-namespace", builder_namespace),
        ("--builder-service-account", builder_service_account),
        ("--scc", scc),
        ("--config-secret", config_secret),
    ):
        if not _DNS_LABEL.match(value):
            _fail(
                f"{option} {value!r} is not a valid name: use lower-case letters, digits and "
                "'-', starting and ending with a letter or digit, at most 63 characters"
            )

    http_port, grpc_port = 8700, 50051
    if config is not None:
        facts = config_facts(_load(config), replicas)
        for problem in facts.problems:
            typer.echo(f"error: {config}: {problem}", err=True)
        if facts.problems:
            raise typer.Exit(2)
        http_port, grpc_port = facts.http_port, facts.grpc_port
        http_host = http_host or facts.http_host
        grpc_host = grpc_host or facts.grpc_host
    for option, key, value in (
        ("--http-host", "PUBLIC_URL", http_host),
        ("--grpc-host", "BUILDMAN_HOSTNAME", grpc_host),
    ):
        if not value:
            _fail(f"no {option}: give it, or --config with {key} set to the public address")
        if not _HOST.match(value):
            _fail(f"{option} {value!r} is not a host name (e.g. slipway.apps.example.com)")
    destination_ca = ""
    if grpc_destination_ca is not None:
        try:
            destination_ca = grpc_destination_ca.read_text()
        except OSError as exc:
            _fail(f"--grpc-destination-ca {grpc_destination_ca}: {exc.strerror}")
        if "BEGIN CERTIFICATE" not in destination_ca:
            _fail(f"--grpc-destination-ca {grpc_destination_ca} is not a PEM certificate")

    opts = DeployOptions(
        namespace=namespace,
        replicas=replicas,
        image=image,
        platform="openshift" if platform == "openshift" else "kubernetes",
        http_host=http_host,
        grpc_host=grpc_host,
        http_port=http_port,
        grpc_port=grpc_port,
        grpc_tls="reencrypt" if grpc_tls == "reencrypt" else "passthrough",
        grpc_destination_ca=destination_ca,
        config_secret=config_secret,
        ingress_class=ingress_class,
        tls_secret=tls_secret,
        data_size=data_size,
        storage_class=storage_class,
        cpu_request=cpu_request,
        memory_request=memory_request,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
        builder_namespace=builder_namespace,
        builder_service_account=builder_service_account,
        scc=scc,
    )
    typer.echo(to_yaml(deploy_manifests(opts)), nl=False)
