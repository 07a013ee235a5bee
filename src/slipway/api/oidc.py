"""Single sign-on with an OpenID provider (ACCESS.OIDC, docs/access.md): the
authorization code flow with PKCE, by authlib's PKCE helpers and joserfc's ID token
checks (authlib's own JOSE successor).

A sign-in ends in a slipway token of its own: scoped by the user's groups
(`roles_for`), expiring after SESSION_LIFETIME, revoked by signing out. Every manager
checks it as any token, so a sign-out or an expiry holds on all of them at once.

The login's state, nonce and PKCE verifier travel in a short-lived cookie encrypted with
a key derived from the client secret: any manager behind a load balancer can finish a
sign-in another one began."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.fernet import Fernet, InvalidToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from slipway.config.access import OidcConfig

LOGIN_COOKIE = "slipway_oidc_login"
LOGIN_LIFETIME_S = 600  # from the click to the provider's answer
CALLBACK_PATH = "/auth/oidc/callback"
_ROLE_ORDER = {"read": 1, "write": 2, "admin": 3}


class SignInFailed(Exception):
    """The sign-in cannot finish; the text says why, for the person signing in (never a
    secret)."""


@dataclass(frozen=True)
class PendingLogin:
    state: str
    nonce: str
    verifier: str
    cli_port: int | None
    expires: float


@dataclass(frozen=True)
class Identity:
    subject: str
    username: str
    groups: list[str]


def roles_for(groups: list[str], mapping: Mapping[str, Mapping[str, str]]
              ) -> dict[str, str]:
    """The highest role on each namespace that any of the groups grants."""
    scopes: dict[str, str] = {}
    for group in groups:
        for namespace, role in mapping.get(group, {}).items():
            if _ROLE_ORDER[role] > _ROLE_ORDER.get(scopes.get(namespace, ""), 0):
                scopes[namespace] = role
    return scopes


class OidcClient:
    def __init__(self, config: OidcConfig, public_url: str) -> None:
        self.config = config
        self.redirect_uri = public_url.rstrip("/") + CALLBACK_PATH
        secret = config.CLIENT_SECRET.get_secret_value().encode()
        key = hashlib.sha256(b"slipway oidc login\0" + secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._discovery: dict[str, Any] | None = None

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            url = f"{self.config.ISSUER}/.well-known/openid-configuration"
            try:
                async with httpx.AsyncClient(timeout=10) as http:
                    response = await http.get(url)
                    response.raise_for_status()
                    self._discovery = dict(response.json())
            except (httpx.HTTPError, ValueError) as exc:
                raise SignInFailed(f"the OpenID provider at {self.config.ISSUER} does not "
                                   f"answer ({exc.__class__.__name__}); try again later"
                                   ) from None
        return self._discovery

    async def begin(self, cli_port: int | None) -> tuple[str, str]:
        """The provider's authorization URL, and the cookie that keeps this login."""
        found = await self.discovery()
        pending = PendingLogin(state=generate_token(32), nonce=generate_token(32),
                               verifier=generate_token(64), cli_port=cli_port,
                               expires=time.time() + LOGIN_LIFETIME_S)
        scopes = list(dict.fromkeys(["openid", *self.config.SCOPES]))
        query = urlencode({
            "response_type": "code", "client_id": self.config.CLIENT_ID,
            "redirect_uri": self.redirect_uri, "scope": " ".join(scopes),
            "state": pending.state, "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
        })
        cookie = self._fernet.encrypt(json.dumps(pending.__dict__).encode()).decode()
        return f"{found['authorization_endpoint']}?{query}", cookie

    def pending(self, cookie: str | None, state: str) -> PendingLogin:
        if not cookie:
            raise SignInFailed("this sign-in was not started here (no login cookie); start "
                               "again")
        try:
            data = json.loads(self._fernet.decrypt(cookie.encode(), ttl=LOGIN_LIFETIME_S))
        except (InvalidToken, ValueError):
            raise SignInFailed("this sign-in took too long or was not started here; start "
                               "again") from None
        pending = PendingLogin(**data)
        if pending.state != state:
            raise SignInFailed("the provider's answer is not for this sign-in (state); "
                               "start again")
        return pending

    async def finish(self, code: str, pending: PendingLogin) -> Identity:
        """Trade the code (with the PKCE verifier) for tokens, check the ID token, read
        the user's claims."""
        found = await self.discovery()
        secret = self.config.CLIENT_SECRET.get_secret_value()
        async with httpx.AsyncClient(timeout=10) as http:
            try:
                response = await http.post(
                    found["token_endpoint"],
                    data={"grant_type": "authorization_code", "code": code,
                          "redirect_uri": self.redirect_uri,
                          "code_verifier": pending.verifier},
                    auth=(self.config.CLIENT_ID, secret))
                if response.status_code != 200:
                    raise SignInFailed(
                        f"the OpenID provider refused the sign-in ({response.status_code}: "
                        f"{_provider_error(response)}); start again")
                tokens = response.json()
                keys = KeySet.import_key_set((await http.get(found["jwks_uri"])).json())
                claims = self._checked_id_token(tokens.get("id_token", ""), keys, pending)
                userinfo = await http.get(
                    found["userinfo_endpoint"],
                    headers={"Authorization": f"Bearer {tokens['access_token']}"})
                if userinfo.status_code == 200:
                    claims = {**claims, **userinfo.json()}
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise SignInFailed(f"the OpenID provider's answer could not be read "
                                   f"({exc.__class__.__name__}); try again") from None
        if claims.get("sub") is None:
            raise SignInFailed("the OpenID provider named no subject (sub)")
        groups = claims.get(self.config.GROUPS_CLAIM) or []
        if isinstance(groups, str):
            groups = [groups]
        username = str(claims.get(self.config.USERNAME_CLAIM)
                       or claims.get("preferred_username") or claims["sub"])
        return Identity(subject=str(claims["sub"]), username=username,
                        groups=[str(g) for g in groups])

    def _checked_id_token(self, id_token: str, keys: KeySet,
                          pending: PendingLogin) -> dict[str, Any]:
        try:
            token = jwt.decode(id_token, keys)
            JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.config.ISSUER},
                aud={"essential": True, "value": self.config.CLIENT_ID},
                nonce={"essential": True, "value": pending.nonce},
                exp={"essential": True}, sub={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise SignInFailed(f"the ID token is not valid ({exc.__class__.__name__}); "
                               "start again") from None
        return dict(token.claims)


def _provider_error(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error_description") or body.get("error") or "error")
    except ValueError:
        return "error"
