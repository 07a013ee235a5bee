"""What a DB_URI must be, checked when the configuration is read (config/models.py)."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

HOW = ("use sqlite:////absolute/path.db or postgresql://USER:PASSWORD@HOST/DB, or "
       "leave DB_URI out for an SQLite file in DATA_DIR")


def db_uri_problem(value: str, shown: str) -> str | None:
    """What is wrong with `value` as a DB_URI (`shown`: it with its password masked), and
    how to fix it; None when it will do."""
    try:
        url = make_url(value)
    except ArgumentError:
        return f"this is not a database URL; {HOW}"
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        return f"{shown!r}: {backend!r} is not a supported database; {HOW}"
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        return (f"{shown!r} is an in-memory SQLite database, which each connection sees "
                f"empty and which is gone at exit; {HOW}")
    return None
