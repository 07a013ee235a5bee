"""DSSE envelopes (github.com/secure-systems-lab/dsse, v1.0): in-toto statements signed
with the build's key, ECDSA P-256 over SHA-256 of the pre-authentication encoding."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from slipway.signing.keys import SigningKey

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
ENVELOPE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSEv1 PAE: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(key: SigningKey, statement: dict[str, Any],
         payload_type: str = IN_TOTO_PAYLOAD_TYPE) -> dict[str, Any]:
    payload = json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()
    signature = key.private.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
    }


def verify(public: ec.EllipticCurvePublicKey, envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope's statement when one of its signatures is the key's; ValueError
    otherwise."""
    try:
        payload = base64.b64decode(envelope["payload"])
        message = pae(envelope["payloadType"], payload)
        signatures = envelope["signatures"]
    except (KeyError, TypeError, ValueError):
        raise ValueError("not a DSSE envelope (payloadType, payload, signatures)") from None
    for entry in signatures:
        try:
            public.verify(base64.b64decode(entry["sig"]), message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, KeyError, TypeError, ValueError):
            continue
        statement: dict[str, Any] = json.loads(payload)
        return statement
    raise ValueError("no signature of the envelope verifies with this public key")
