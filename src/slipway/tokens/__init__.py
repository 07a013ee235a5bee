"""Signed registration and job tokens (JWT with `kid`: ES256, or RS256 for older keys), as
Quay's build manager mints them."""
