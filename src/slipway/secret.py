"""Reading a secret config value (a password, a token, a key) for the one call that needs it.

One rule for empty values: an empty secret is no secret. `REDIS_PASSWORD: ""` sends no AUTH,
an empty SERVICE_ACCOUNT_TOKEN no bearer token, empty AWS keys leave boto3 its default
credential chain, exactly as if the key were not given, and an empty value never reaches a
"hide this text" list (where it would match everywhere).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (the CLI imports this, and starts faster without pydantic)
    from pydantic import SecretStr


def reveal(value: SecretStr | str | None) -> str | None:
    """The text of `value` (a pydantic SecretStr or plain text); None when it is absent
    or empty."""
    if value is None:
        return None
    reveal_secret = getattr(value, "get_secret_value", None)
    text = reveal_secret() if reveal_secret is not None else str(value)
    return text or None
