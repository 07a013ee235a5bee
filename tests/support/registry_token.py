"""A registry token service (the Docker registry token protocol) for a test's registry:
`run_registry(token=...)` sends clients a `Bearer realm=...` challenge, they ask here for
a token (Basic credentials, a scope), and the registry accepts the ES256 JWT it gets
when its certificate (in the token's x5c header) is in the registry's rootcertbundle.

with token_service({"alice": "s3cret"}) as tokens, run_registry(token=tokens) as reg:
    ...
tokens.requests  # what was asked: (user or None, scope, service)
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.local_http import serving


@dataclass
class TokenService:
    realm: str
    service: str
    issuer: str
    bundle: Path  # the certificate the registry trusts the tokens by
    requests: list[tuple[str | None, str, str]] = field(default_factory=list)


def _certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "slipway test token issuer")])
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


@contextlib.contextmanager
def token_service(users: dict[str, str]) -> Iterator[TokenService]:
    """Tokens for `users` (name -> password): pull and push on any repository a scope
    asks for; anonymous askers get a token that grants nothing; wrong credentials a 401."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(key)
    x5c = [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()]
    with tempfile.TemporaryDirectory(prefix="slipway-tokens-") as tmp:
        bundle = Path(tmp) / "bundle.pem"
        bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        service = TokenService("", "slipway-test-registry", "slipway-test-issuer", bundle)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                scope = query.get("scope", [""])[0]
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if users.get(name) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = name
                service.requests.append((user, scope, query.get("service", [""])[0]))
                access = []
                kind, _, rest = scope.partition(":")
                repository, _, actions = rest.rpartition(":")
                if user is not None and kind == "repository":
                    access = [{"type": "repository", "name": repository,
                               "actions": actions.split(",")}]
                now = int(time.time())
                token = jwt.encode(
                    {"iss": service.issuer, "sub": user or "", "aud": service.service,
                     "exp": now + 300, "nbf": now - 10, "iat": now,
                     "jti": uuid.uuid4().hex, "access": access},
                    key, algorithm="ES256", headers={"x5c": x5c})
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        with serving(Handler) as port:
            service.realm = f"http://127.0.0.1:{port}/token"
            yield service
