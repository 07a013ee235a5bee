"""Signed registration and job tokens (JWT, RS256, `kid`), as Quay's build manager mints them."""
