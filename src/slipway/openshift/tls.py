"""`slipway openshift tls check` (docs/openshift.md, 6.4.1): with an unmanaged `tls`
component, Quay's own ssl.cert must name both the Quay route and the builder route (or
carry a wildcard covering both), and ssl.key must be its key."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from slipway.openshift.checks import Check, Outcome

RENEW_WARNING = dt.timedelta(days=30)


@dataclass(frozen=True)
class RouteNames:
    quay: str
    builder: str


def route_names(registry_name: str, namespace: str, domain: str) -> RouteNames:
    """The routes the Quay operator creates for QuayRegistry `registry_name` in
    `namespace` on the cluster's apps domain (the builder route's format: docs/openshift.md,
    6.4.1)."""
    domain = domain.strip(".").lower()
    return RouteNames(
        quay=f"{registry_name}-quay-{namespace}.{domain}".lower(),
        builder=f"{registry_name}-quay-builder-{namespace}.{domain}".lower(),
    )


def dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in san.value.get_values_for_type(x509.DNSName)]


def covers(pattern: str, host: str) -> bool:
    """RFC 6125 matching as TLS clients do it: exact, or `*.` standing for exactly one
    whole left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*.") and "*" not in pattern[2:]:
        label, _, rest = host.partition(".")
        return bool(label) and rest == pattern[2:]
    return False


def _load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        # the first certificate of the file is the server's (a chain may follow)
        return x509.load_pem_x509_certificates(data)[0]
    except ValueError:
        return x509.load_der_x509_certificate(data)


def _spki(key: object) -> bytes:
    public = key.public_key()  # type: ignore[attr-defined]
    return bytes(
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _wildcard_for(host: str) -> str:
    parent = host.partition(".")[2]
    return f"*.{parent}" if parent else host


def check_certificate(
    cert_path: Path,
    key_path: Path,
    routes: RouteNames,
    now: dt.datetime | None = None,
) -> list[Check]:
    """`routes`: the Quay host (SERVER_HOSTNAME) and the host workers dial, whether the
    operator's default route names (`route_names`) or a custom SERVER_HOSTNAME's."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = _load_cert(cert_path)
    except (OSError, ValueError) as exc:
        return [
            Check(
                Outcome.FAIL,
                f"certificate {cert_path}",
                f"cannot be read: {exc}",
                "give the PEM file Quay serves (ssl.cert of the config bundle)",
            )
        ]
    checks: list[Check] = []
    names = dns_names(cert)
    for label, host in (("Quay route", routes.quay), ("builder route", routes.builder)):
        match = next((n for n in names if covers(n, host)), None)
        if match is not None:
            how = "wildcard " + match if match.startswith("*") else "listed"
            checks.append(Check(Outcome.OK, f"{label} {host}", f"covered ({how})"))
        else:
            shown = ", ".join(names) if names else "none (no subjectAltName extension)"
            checks.append(
                Check(
                    Outcome.FAIL,
                    f"{label} {host}",
                    f"missing from the certificate's DNS names ({shown})",
                    f"reissue the certificate with {host} (or {_wildcard_for(host)}) "
                    "in its subjectAltName",
                )
            )

    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        reason = "it is encrypted" if isinstance(exc, TypeError) else str(exc)
        checks.append(
            Check(
                Outcome.FAIL,
                f"private key {key_path}",
                f"cannot be read: {reason}",
                "give the unencrypted PEM private key of the certificate (ssl.key)",
            )
        )
    else:
        if _spki(key) == _spki(cert):
            checks.append(Check(Outcome.OK, "private key", "matches the certificate"))
        else:
            checks.append(
                Check(
                    Outcome.FAIL,
                    "private key",
                    f"{key_path} is not the key of {cert_path}",
                    "use the ssl.key generated with this certificate (or reissue both)",
                )
            )

    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    if not_after <= now:
        checks.append(
            Check(
                Outcome.FAIL,
                "validity",
                f"expired on {not_after:%Y-%m-%d %H:%M} UTC",
                "renew the certificate",
            )
        )
    elif not_before > now:
        checks.append(
            Check(
                Outcome.FAIL,
                "validity",
                f"not valid before {not_before:%Y-%m-%d %H:%M} UTC",
                "check the clock of the issuing machine, or wait",
            )
        )
    elif not_after - now < RENEW_WARNING:
        days = (not_after - now).days
        checks.append(
            Check(
                Outcome.WARN,
                "validity",
                f"expires in {days} days ({not_after:%Y-%m-%d} UTC)",
                "renew the certificate soon",
            )
        )
    else:
        checks.append(Check(Outcome.OK, "validity", f"until {not_after:%Y-%m-%d} UTC"))
    return checks
