"""Minting and verifying build tokens (docs/protocol.md, "Tokens").

Claims: `aud` = BUILDMAN_HOSTNAME, `exp`, `iat`, `nbf`, `jti`, and
`context: {token_type, build_id, job_id, expiration}`. Verification looks the `kid` up
among the published keys, so a token minted by any manager verifies on every manager.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from slipway.tokens.keys import SigningKey, algorithm_for


class TokenType(StrEnum):
    REGISTRATION = "build_job_registration"
    JOB = "build_job_token"
    # slipway: lets a worker download an uploaded build context (job_id holds the file id)
    CONTEXT = "build_context"


class InvalidToken(Exception):
    """Bad signature, expired, wrong audience or type, unknown key: the message says which
    (it never contains the token)."""


@dataclass(frozen=True)
class TokenClaims:
    token_type: TokenType
    build_id: str
    job_id: str
    expiration: float
    jti: str


PublicKeyLookup = Callable[[str], Awaitable[str | None]]


class TokenService:
    def __init__(self, key: SigningKey, audience: str, lookup: PublicKeyLookup) -> None:
        self.key = key
        self.audience = audience
        self._lookup = lookup
        # parsed once: loading a PEM (RSA key checks) costs far more than signing
        self._private: Any = serialization.load_pem_private_key(key.private_pem, None)
        self._algorithm = algorithm_for(self._private)
        # kid -> (public key, its algorithm)
        self._public: dict[str, tuple[Any, str]] = {key.kid: _load_public(key.public_pem)}
        # verified job tokens, by token string: heartbeats repeat the same token every few
        # seconds, and a signature check per heartbeat would be the manager's largest CPU cost.
        # Tokens this process minted are in it from the start: the registration that follows
        # each start of a build then costs no signature check
        self._verified: dict[str, TokenClaims] = {}

    def mint(self, token_type: TokenType, build_id: str, job_id: str, lifetime: float) -> str:
        now = time.time()
        expiration = now + lifetime
        claims = {
            "iss": "slipway",
            "aud": self.audience,
            "iat": int(now),
            "nbf": int(now) - 5,
            "exp": int(expiration) + 1,
            "jti": uuid.uuid4().hex,
            "context": {
                "token_type": token_type.value,
                "build_id": build_id,
                "job_id": job_id,
                "expiration": int(expiration),
            },
        }
        token = jwt.encode(claims, self._private, algorithm=self._algorithm,
                           headers={"kid": self.key.kid})
        self._remember(token, TokenClaims(token_type, build_id, job_id, int(expiration),
                                          str(claims["jti"])))
        return token

    def _remember(self, token: str, claims: TokenClaims) -> None:
        if len(self._verified) > 100_000:
            self._verified.clear()
        self._verified[token] = claims

    async def verify(self, token: str, expected: TokenType) -> TokenClaims:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.token_type is not expected:
                raise InvalidToken(f"wrong token type: expected {expected.value}")
            if cached.expiration < time.time():
                self._verified.pop(token, None)
                raise InvalidToken("token has expired")
            return cached
        claims = await self._decode(token)
        context = claims.get("context")
        if not isinstance(context, dict):
            raise InvalidToken("token carries no build context")
        try:
            parsed = TokenClaims(
                token_type=TokenType(context["token_type"]),
                build_id=str(context["build_id"]),
                job_id=str(context["job_id"]),
                expiration=float(context["expiration"]),
                jti=str(claims.get("jti", "")),
            )
        except (KeyError, ValueError) as exc:
            raise InvalidToken("token context is malformed") from exc
        if parsed.token_type is not expected:
            raise InvalidToken(f"wrong token type: expected {expected.value}")
        if parsed.token_type is TokenType.JOB:
            self._remember(token, parsed)
        return parsed

    def forget(self, token: str) -> None:
        self._verified.pop(token, None)

    async def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("token is not a JWT") from exc
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("token has no key id")
        known = self._public.get(kid)
        if known is None:
            pem = await self._lookup(kid)
            if pem is None:
                raise InvalidToken("token was signed by an unknown key")
            try:
                known = _load_public(pem)
            except ValueError as exc:
                raise InvalidToken("token was signed by a key that cannot be read") from exc
            self._public[kid] = known
        public, algorithm = known
        if header.get("alg") != algorithm:
            raise InvalidToken(f"token's algorithm is not {algorithm}, its key's")
        try:
            return jwt.decode(
                token,
                public,
                algorithms=[algorithm],
                audience=self.audience,
                options={"require": ["exp", "aud", "iat"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token has expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token is for another build manager (audience)") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {type(exc).__name__}") from exc


def _load_public(pem: str) -> tuple[Any, str]:
    public = serialization.load_pem_public_key(pem.encode())
    return public, algorithm_for(public)
