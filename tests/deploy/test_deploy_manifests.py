"""`slipway deploy manifests`: every object validated (Kubernetes' OpenAPI schemas through
kubernetes-validate; OpenShift's Route and SCC against their schemas in tests/data), for 1
and 3 replicas, on OpenShift and on plain Kubernetes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import trustme
import yaml
from typer.testing import CliRunner

from slipway import __version__
from slipway.cli.main import app
from slipway.openshift.preflight import REQUIRED

runner = CliRunner()
SCHEMAS = Path(__file__).parents[1] / "data" / "openshift"
OPENSHIFT_SCHEMAS = {
    "Route": SCHEMAS / "route.openshift.io-v1-Route.schema.json",
    "SecurityContextConstraints": SCHEMAS
    / "security.openshift.io-v1-SecurityContextConstraints.schema.json",
}
HTTP_HOST = "slipway.apps.ocp.example.com"
GRPC_HOST = "slipway-grpc.apps.ocp.example.com"


def render(*args: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["deploy", "manifests", *args])
    assert result.exit_code == 0, result.output
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def validate(doc: dict[str, Any]) -> None:
    schema_file = OPENSHIFT_SCHEMAS.get(doc["kind"])
    if schema_file is not None:
        schema = json.loads(schema_file.read_text())
        jsonschema.Draft202012Validator(schema).validate(doc)
    else:
        kubernetes_validate.validate(doc, "1.30", strict=True)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


HOSTS = ("--http-host", HTTP_HOST, "--grpc-host", GRPC_HOST)


@pytest.mark.parametrize("platform", ["openshift", "kubernetes"])
@pytest.mark.parametrize("replicas", [1, 3])
def test_every_object_validates(platform: str, replicas: int) -> None:
    docs = render(*HOSTS, "--platform", platform, "--replicas", str(replicas))
    for doc in docs:
        validate(doc)
    deployment = one(docs, "Deployment", "slipway")
    assert deployment["spec"]["replicas"] == replicas
    [claim] = by_kind(docs, "PersistentVolumeClaim")
    # uploaded contexts are fetched through the Service, from any replica
    assert claim["spec"]["accessModes"] == (
        ["ReadWriteMany"] if replicas > 1 else ["ReadWriteOnce"]
    )
    strategy = deployment["spec"]["strategy"]["type"]
    assert strategy == ("RollingUpdate" if replicas > 1 else "Recreate")
    [budget] = by_kind(docs, "PodDisruptionBudget")
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": deployment["spec"]["selector"],
    }
    if platform == "openshift":
        assert {d["metadata"]["name"] for d in by_kind(docs, "Route")} == {
            "slipway",
            "slipway-grpc",
        }
        assert by_kind(docs, "Ingress") == []
        assert len(by_kind(docs, "SecurityContextConstraints")) == 1
    else:
        assert by_kind(docs, "Route") == [] and by_kind(docs, "SecurityContextConstraints") == []
        assert {d["metadata"]["name"] for d in by_kind(docs, "Ingress")} == {
            "slipway",
            "slipway-grpc",
        }


def test_objects_come_in_the_seed_order_and_reuse_openshift_manifests() -> None:
    docs = render(*HOSTS)
    seed = runner.invoke(app, ["openshift", "manifests"])
    seed_docs = [d for d in yaml.safe_load_all(seed.stdout) if d]
    # project, service account, role binding, SCC first: the very objects of Quay's guide,
    # 6.4.2 (docs/openshift.md)
    assert docs[: len(seed_docs)] == seed_docs
    assert [(d["kind"], d["metadata"]["name"]) for d in docs[len(seed_docs) :]] == [
        ("Namespace", "slipway"),
        ("ServiceAccount", "slipway"),
        ("Secret", "slipway-token"),
        ("Role", "slipway-manager"),
        ("RoleBinding", "slipway-manager"),
        ("PersistentVolumeClaim", "slipway-data"),
        ("Deployment", "slipway"),
        ("Service", "slipway"),
        ("PodDisruptionBudget", "slipway"),
        ("Route", "slipway"),
        ("Route", "slipway-grpc"),
    ]


def test_the_manager_may_do_what_the_executor_and_preflight_need_in_the_builder_namespace() -> (
    None
):
    docs = render(*HOSTS, "--namespace", "ci", "--builder-namespace", "builds")
    role = one(docs, "Role", "slipway-manager")
    assert role["metadata"]["namespace"] == "builds"
    allowed = {
        (verb, group, resource)
        for rule in role["rules"]
        for verb in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert set(REQUIRED) <= allowed
    binding = one(docs, "RoleBinding", "slipway-manager")
    assert binding["metadata"]["namespace"] == "builds"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "slipway", "namespace": "ci"}]
    deployment = one(docs, "Deployment", "slipway")
    assert deployment["metadata"]["namespace"] == "ci"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "slipway"
    token = one(docs, "Secret", "slipway-token")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "slipway"}


def test_pods_probe_mount_the_config_and_expose_both_ports() -> None:
    docs = render(*HOSTS)
    pod = one(docs, "Deployment", "slipway")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == f"quay.io/slipway/slipway:{__version__}"
    assert container["args"] == ["serve", "--config", "/conf/stack/config.yaml"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert {"name": "config", "secret": {"secretName": "slipway-config"}} in pod["volumes"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8700, "grpc": 50051}
    service = one(docs, "Service", "slipway")
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
        "http": "http",
        "grpc": "grpc",
    }
    labels = pod and one(docs, "Deployment", "slipway")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_grpc_route_keeps_http2_to_the_pod() -> None:
    docs = render(*HOSTS)
    grpc = one(docs, "Route", "slipway-grpc")["spec"]
    assert grpc["host"] == GRPC_HOST
    assert grpc["port"] == {"targetPort": "grpc"}
    assert grpc["tls"]["termination"] == "passthrough"
    http = one(docs, "Route", "slipway")["spec"]
    assert http["host"] == HTTP_HOST
    assert http["tls"]["termination"] == "edge"


def test_reencrypt_route_carries_the_pods_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    docs = render(*HOSTS, "--grpc-tls", "reencrypt", "--grpc-destination-ca", str(ca))
    route = one(docs, "Route", "slipway-grpc")
    validate(route)
    assert route["spec"]["tls"]["termination"] == "reencrypt"
    assert route["spec"]["tls"]["destinationCACertificate"] == ca.read_text()


def test_the_route_schema_refuses_what_openshift_refuses() -> None:
    """The checked-in schema is not a rubber stamp."""
    route = one(render(*HOSTS), "Route", "slipway-grpc")
    route["spec"]["tls"]["destinationCACertificate"] = "-----BEGIN CERTIFICATE-----"
    with pytest.raises(jsonschema.ValidationError):
        validate(route)  # passthrough with a certificate
    route["spec"]["tls"] = {"termination": "h2"}
    with pytest.raises(jsonschema.ValidationError):
        validate(route)
    scc = by_kind(render(*HOSTS), "SecurityContextConstraints")[0]
    del scc["priority"]  # required, though nullable
    with pytest.raises(jsonschema.ValidationError):
        validate(scc)


def test_kubernetes_grpc_ingress_asks_for_grpc_to_the_backend() -> None:
    docs = render(*HOSTS, "--platform", "kubernetes", "--tls-secret", "slipway-tls")
    grpc = one(docs, "Ingress", "slipway-grpc")
    assert grpc["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/backend-protocol": "GRPCS"
    }
    assert grpc["spec"]["tls"] == [{"hosts": [GRPC_HOST], "secretName": "slipway-tls"}]
    [rule] = grpc["spec"]["rules"]
    assert rule["host"] == GRPC_HOST
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "slipway",
        "port": {"name": "grpc"},
    }


def _config(tmp_path: Path, **keys: Any) -> Path:
    (tmp_path / "ssl.cert").write_text("")
    raw = {
        "SERVER_HOSTNAME": "quay.example.com",
        "API_LISTEN_ADDRESS": "0.0.0.0:8080",
        "GRPC_LISTEN_ADDRESS": "0.0.0.0:9443",
        "PUBLIC_URL": f"https://{HTTP_HOST}",
        "BUILDMAN_HOSTNAME": f"{GRPC_HOST}:443",
        "BUILDMAN_TLS_CERT": "/conf/stack/ssl.cert",
        "BUILDMAN_TLS_KEY": "/conf/stack/ssl.key",
        "DB_URI": "postgresql://slipway@db.example.com/slipway",
        "BUILD_MANAGER": [
            "ephemeral",
            {
                "ORCHESTRATOR": {"REDIS_HOST": "redis.example.com"},
                "EXECUTORS": [{"EXECUTOR": "local"}],
            },
        ],
        **keys,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_hosts_and_ports_come_from_the_config(tmp_path: Path) -> None:
    docs = render("--config", str(_config(tmp_path)), "--replicas", "3")
    for doc in docs:
        validate(doc)
    [container] = one(docs, "Deployment", "slipway")["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8080,
        "grpc": 9443,
    }
    assert one(docs, "Route", "slipway")["spec"]["host"] == HTTP_HOST
    assert one(docs, "Route", "slipway-grpc")["spec"]["host"] == GRPC_HOST


def test_a_config_that_cannot_run_as_replicas_is_refused_with_the_fixes(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        API_LISTEN_ADDRESS="127.0.0.1:8700",
        DB_URI=f"sqlite:///{tmp_path}/slipway.db",
        BUILD_MANAGER=["ephemeral", {"EXECUTORS": [{"EXECUTOR": "local"}]}],
    )
    result = runner.invoke(app, ["deploy", "manifests", "--config", str(config), "--replicas", "3"])
    assert result.exit_code == 2
    assert "API_LISTEN_ADDRESS is 127.0.0.1:8700" in result.output
    assert "set API_LISTEN_ADDRESS: 0.0.0.0:8700" in result.output
    assert "DB_URI is SQLite, which 3 replicas cannot share" in result.output
    assert "add ORCHESTRATOR: {REDIS_HOST: ...}" in result.output
    assert result.stdout.count("---") == 0  # nothing printed to apply
    # one replica may keep SQLite and the in-memory orchestrator
    single = _config(tmp_path, DB_URI=f"sqlite:///{tmp_path}/slipway.db")
    assert runner.invoke(app, ["deploy", "manifests", "--config", str(single)]).exit_code == 0


def test_a_grpc_listener_without_tls_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, BUILDMAN_TLS_CERT=None, BUILDMAN_TLS_KEY=None)
    result = runner.invoke(app, ["deploy", "manifests", "--config", str(config)])
    assert result.exit_code == 2
    assert "BUILDMAN_TLS_CERT is not set" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grpc-host", GRPC_HOST], "no --http-host: give it, or --config with PUBLIC_URL"),
        ([*HOSTS, "--replicas", "0"], "--replicas 0: give 1 or more"),
        ([*HOSTS, "--grpc-tls", "edge"], "--grpc-tls 'edge': use passthrough or reencrypt"),
        ([*HOSTS, "--platform", "nomad"], "--platform 'nomad': use openshift or kubernetes"),
        ([*HOSTS, "--namespace", "Slipway"], "--namespace 'Slipway' is not a valid name"),
        (["--http-host", "a_b.example.com", "--grpc-host", GRPC_HOST], "is not a host name"),
    ],
)
def test_bad_options_say_what_is_wrong(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["deploy", "manifests", *args])
    assert result.exit_code == 2
    assert message in result.output
