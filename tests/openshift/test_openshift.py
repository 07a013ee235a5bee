"""`slipway openshift manifests | preflight | tls check`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import trustme
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.k8s_api import K8sApiDouble
from typer.testing import CliRunner

from slipway.cli.main import app

DATA = Path(__file__).parents[1] / "data" / "k8s"
runner = CliRunner()

# Required fields of security.openshift.io/v1 SecurityContextConstraints (openshift/api);
# the nullable ones must be present, null allowed.
SCC_REQUIRED = {
    "allowHostDirVolumePlugin",
    "allowHostIPC",
    "allowHostNetwork",
    "allowHostPID",
    "allowHostPorts",
    "allowPrivilegedContainer",
    "allowedCapabilities",
    "defaultAddCapabilities",
    "priority",
    "readOnlyRootFilesystem",
    "requiredDropCapabilities",
    "volumes",
}


# ---- manifests -------------------------------------------------------------------------


def test_manifests_are_the_seed_set_up_as_applicable_yaml() -> None:
    result = runner.invoke(
        app,
        ["openshift", "manifests", "--namespace", "builds", "--service-account", "quay-builder"],
    )
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Namespace", "builds"),
        ("ServiceAccount", "quay-builder"),
        ("RoleBinding", "quay-builder-edit"),
        ("SecurityContextConstraints", "quay-builder"),
        ("Role", "quay-builder-scc"),
        ("RoleBinding", "quay-builder-scc"),
    ]
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    edit = by_name[("RoleBinding", "quay-builder-edit")]
    assert edit["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "edit",
    }
    for binding in (edit, by_name[("RoleBinding", "quay-builder-scc")]):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "quay-builder", "namespace": "builds"}
        ]
    role = by_name[("Role", "quay-builder-scc")]
    assert role["rules"][0]["resourceNames"] == ["quay-builder"]
    assert role["rules"][0]["verbs"] == ["use"]
    for doc in docs:
        if doc["kind"] == "Namespace" or doc["kind"] == "SecurityContextConstraints":
            assert "namespace" not in doc["metadata"]  # cluster-scoped
        else:
            assert doc["metadata"]["namespace"] == "builds"
        if doc["apiVersion"].startswith("security.openshift.io"):
            # OpenShift types are not in kubernetes-validate's schemas: check the API's
            # required fields by structure instead.
            assert doc.keys() >= SCC_REQUIRED
            assert doc["allowPrivilegedContainer"] is True
            for strategy in ("runAsUser", "seLinuxContext", "supplementalGroups", "fsGroup"):
                assert doc[strategy] == {"type": "RunAsAny"}
        else:
            kubernetes_validate.validate(doc, "1.30", strict=True)


def test_manifests_reject_invalid_names() -> None:
    result = runner.invoke(app, ["openshift", "manifests", "--service-account", "Quay_Builder"])
    assert result.exit_code == 2
    assert "--service-account 'Quay_Builder' is not a valid name" in result.output


# ---- tls check -------------------------------------------------------------------------

DOMAIN = "apps.ocp.example.com"
QUAY = f"quay-quay-quay-enterprise.{DOMAIN}"
BUILDER = f"quay-quay-builder-quay-enterprise.{DOMAIN}"


def _write_cert(
    tmp: Path,
    names: list[str],
    *,
    days: int = 365,
    other_key: bool = False,
    not_before: dt.datetime | None = None,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start = not_before or now - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "x")])
        )
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=days))
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = tmp / "ssl.cert", tmp / "ssl.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    written_key = ec.generate_private_key(ec.SECP256R1()) if other_key else key
    key_path.write_bytes(
        written_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _tls(cert: Path, key: Path) -> Any:
    return runner.invoke(
        app,
        [
            "openshift",
            "tls",
            "check",
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--registry-name",
            "quay",
            "--namespace",
            "quay-enterprise",
            "--domain",
            DOMAIN,
        ],
    )


def test_tls_exact_route_names_pass(tmp_path: Path) -> None:
    result = _tls(*_write_cert(tmp_path, [QUAY, BUILDER]))
    assert result.exit_code == 0, result.output
    assert f"ok   Quay route {QUAY}: covered (listed)" in result.output
    assert f"ok   builder route {BUILDER}: covered (listed)" in result.output
    assert "ok   private key: matches the certificate" in result.output


def test_tls_wildcard_covers_both_routes(tmp_path: Path) -> None:
    result = _tls(*_write_cert(tmp_path, [f"*.{DOMAIN.upper()}"]))
    assert result.exit_code == 0, result.output
    assert f"covered (wildcard *.{DOMAIN})" in result.output


def test_tls_wildcard_one_level_too_high_does_not_cover(tmp_path: Path) -> None:
    result = _tls(*_write_cert(tmp_path, ["*.ocp.example.com"]))
    assert result.exit_code == 1
    assert f"FAIL Quay route {QUAY}" in result.output


def test_tls_missing_builder_route_is_named_with_the_fix(tmp_path: Path) -> None:
    result = _tls(*_write_cert(tmp_path, [QUAY]))
    assert result.exit_code == 1
    assert f"ok   Quay route {QUAY}" in result.output
    assert f"FAIL builder route {BUILDER}: missing from the certificate's DNS names ({QUAY})" in (
        result.output
    )
    assert f"fix: reissue the certificate with {BUILDER}" in result.output


def test_tls_wrong_key(tmp_path: Path) -> None:
    result = _tls(*_write_cert(tmp_path, [QUAY, BUILDER], other_key=True))
    assert result.exit_code == 1
    assert "FAIL private key" in result.output
    assert "is not the key of" in result.output


def test_tls_expired_fails_and_expiring_soon_warns(tmp_path: Path) -> None:
    expired = _write_cert(
        tmp_path,
        [QUAY, BUILDER],
        days=-1,
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=90),
    )
    result = _tls(*expired)
    assert result.exit_code == 1
    assert "FAIL validity: expired on" in result.output

    result = _tls(*_write_cert(tmp_path, [QUAY, BUILDER], days=10))
    assert result.exit_code == 0, result.output
    assert "WARN validity: expires in 9 days" in result.output or "expires in 10 days" in (
        result.output
    )


def test_tls_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate")
    result = _tls(tmp_path / "junk.pem", tmp_path / "nope.key")
    assert result.exit_code == 1
    assert "FAIL certificate" in result.output and "cannot be read" in result.output


# ---- preflight -------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[K8sApiDouble]:
    double = K8sApiDouble(tmp_path / "k8s").start()
    double.add_node("metal-0", {"beta.kubernetes.io/instance-type": "n1-standard-4"})
    double.add_node("virt-0", {"beta.kubernetes.io/instance-type": "n1-standard-2"})
    yield double
    double.stop()


def _config(tmp: Path, api: K8sApiDouble, **changes: Any) -> Path:
    """The example config of Quay's guide (docs/openshift.md), pointed at the test double."""
    raw = yaml.safe_load((DATA / "seed-config.yaml").read_text())
    executor = raw["BUILD_MANAGER"][1]["EXECUTORS"][0]
    executor.update(
        K8S_API_SERVER=api.server, K8S_API_TLS_CA=str(api.ca_path), SERVICE_ACCOUNT_TOKEN=api.token
    )
    executor.update(changes)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _preflight(config: Path) -> Any:
    return runner.invoke(app, ["openshift", "preflight", "--config", str(config)])


def test_preflight_all_ok(api: K8sApiDouble, tmp_path: Path) -> None:
    result = _preflight(_config(tmp_path, api))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    checks = [line for line in lines if line.startswith(("ok", "WARN", "FAIL"))]
    assert all(line.startswith("ok") for line in checks), result.output
    assert any("TLS certificate verified" in line for line in checks)
    assert any(
        "authenticated as system:serviceaccount:builder:quay-builder" in line for line in checks
    )
    assert any("may create, list and delete Jobs" in line for line in checks)
    assert any("SecurityContextConstraints quay-builder" in line for line in checks)
    assert any(
        "nodes labelled beta.kubernetes.io/instance-type=n1-standard-4: metal-0" in line
        for line in checks
    )
    assert api.token not in result.output


def test_preflight_missing_rights_say_which_and_how_to_fix(
    api: K8sApiDouble, tmp_path: Path
) -> None:
    api.permissions = {("list", "batch", "jobs", "builder"), ("get", "", "namespaces", "")}
    result = _preflight(_config(tmp_path, api))
    assert result.exit_code == 1
    assert "not allowed: create jobs.batch, delete jobs.batch, create pods, create secrets" in (
        result.output
    )
    assert (
        "fix: oc policy add-role-to-user -n builder edit system:serviceaccount:builder:quay-builder"
        in result.output
    )
    # the builder account may not list nodes: a warning with the admin's command, not a failure
    assert "WARN nodes labelled" in result.output
    assert "oc get nodes -l beta.kubernetes.io/instance-type=n1-standard-4" in result.output


def test_preflight_bad_token(api: K8sApiDouble, tmp_path: Path) -> None:
    result = _preflight(_config(tmp_path, api, SERVICE_ACCOUNT_TOKEN="expired-token-abc"))
    assert result.exit_code == 1
    assert "FAIL SERVICE_ACCOUNT_TOKEN valid: HTTP 401 Unauthorized" in result.output
    assert "fix: oc create token -n builder quay-builder" in result.output
    assert "expired-token-abc" not in result.output


def test_preflight_untrusted_ca_and_unlabelled_nodes(api: K8sApiDouble, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    result = _preflight(_config(tmp_path, api, K8S_API_TLS_CA=str(other)))
    assert result.exit_code == 1
    assert "FAIL API server" in result.output
    assert "does not verify against the CA in K8S_API_TLS_CA" in result.output
    assert "fix: oc get configmap kube-root-ca.crt" in result.output

    result = _preflight(_config(tmp_path, api, NODE_SELECTOR_LABEL_VALUE="m5.metal"))
    assert result.exit_code == 1
    assert "FAIL nodes labelled beta.kubernetes.io/instance-type=m5.metal: no node" in result.output
    assert "fix: oc label node <bare-metal-node> beta.kubernetes.io/instance-type=m5.metal" in (
        result.output
    )


def test_preflight_missing_namespace(api: K8sApiDouble, tmp_path: Path) -> None:
    result = _preflight(_config(tmp_path, api, BUILDER_NAMESPACE="builds-missing"))
    assert result.exit_code == 1
    assert (
        'FAIL namespace builds-missing exists: HTTP 404 NotFound: namespaces "builds-missing"'
        in (result.output)
    )
    assert "fix: oc new-project builds-missing" in result.output


def test_preflight_without_a_kubernetes_executor(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("BUILD_MANAGER: [ephemeral, {EXECUTORS: [{EXECUTOR: local}]}]\n")
    result = _preflight(path)
    assert result.exit_code == 2
    assert "no kubernetes executor" in result.output
