"""Who may make, see and revoke which token (docs/access.md).

- Nobody grants more than they hold: each scope of a new token is at most the maker's
  role on that namespace (`*` only from a maker holding `*`), so only an admin of a
  namespace grants admin on it; a maker whose own token expires makes tokens that expire
  no later.
- A token is listed to, and revoked by, whoever made it and any admin of all of its
  namespaces (an admin of `*` sees every token)."""

from __future__ import annotations

from collections.abc import Mapping

from slipway.api.auth import Principal, Role, parse_scopes
from slipway.api.errors import ApiError
from slipway.store.records import StoredToken


def _held(holder: Principal, namespace: str) -> Role | None:
    if namespace == "*":
        return holder.scopes.get("*")
    return holder.role_for(namespace)


def check_grant(holder: Principal, scopes: Mapping[str, str], expires: float | None) -> None:
    """A 403 saying what is over the maker's own rights; nothing when all is within."""
    for namespace, role in parse_scopes(scopes).items():
        have = _held(holder, namespace)
        if have is not None and have >= role:
            continue
        where = "every namespace (*)" if namespace == "*" else f"namespace {namespace!r}"
        if role is Role.ADMIN:
            message = f"only an admin of {where} may grant admin on it"
        else:
            held = f"you hold {have.name.lower()}" if have is not None else "you hold nothing"
            message = (f"cannot grant {role.name.lower()} on {where}: {held} there, and a "
                       "token you make may have at most what you hold")
        raise ApiError(403, message, "insufficient_scope")
    if holder.expires is not None and (expires is None or expires > holder.expires):
        raise ApiError(
            403, "your own token expires: give the new token an expires_in that ends no "
            "later than yours", "insufficient_scope")


def may_manage(holder: Principal, token: StoredToken) -> bool:
    if holder.id and token.creator_id == holder.id:
        return True
    try:
        scopes = parse_scopes(token.scopes)
    except ValueError:
        scopes = {}
    namespaces = scopes or {"*": Role.ADMIN}
    return all((_held(holder, ns) or 0) >= Role.ADMIN for ns in namespaces)
