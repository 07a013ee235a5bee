"""Build ids as people type them: the full id, or a unique start of it (the 8 characters
the web UI and `slipway builds` show). The server finds the builds an id starts
(`GET .../build/?id_prefix=`, docs/api.md), so a prefix is resolved within the
repository, from the server's records, in one request."""

from __future__ import annotations

import re
from typing import Any

from slipway.cli.client import ApiClient
from slipway.cli.errors import CliError

SHORT_ID = 8  # what the tables and the web UI show
MIN_PREFIX = 4
# a build id as slipway and Quay make them (str(uuid4())): used as is, no lookup
_FULL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PREFIX = re.compile(r"^[0-9a-f-]+$")
CANDIDATES_SHOWN = 10


def short_id(build_id: str) -> str:
    return build_id[:SHORT_ID]


def resolve_build_id(client: ApiClient, repository: str, given: str) -> str:
    """The full id of the build of `repository` whose id is or starts with `given`; a
    CliError saying what to do when there is none or more than one."""
    text = given.strip().lower()
    if _FULL_ID.match(text):
        return text
    if not _PREFIX.match(text):
        raise CliError(f"{given!r} is not a build id: ids are made of 0-9, a-f and -; "
                       f"`slipway builds {repository}` lists them")
    if len(text) < MIN_PREFIX:
        raise CliError(f"build id {given!r} is too short: give at least {MIN_PREFIX} of its "
                       f"characters (the {SHORT_ID} `slipway builds {repository}` shows)")
    found = client.find_builds(repository, text, CANDIDATES_SHOWN + 1)
    if not found:
        raise CliError(f"no build in {repository} has an id starting with {text}; "
                       f"`slipway builds {repository}` lists its builds")
    if len(found) > 1:
        raise CliError(_ambiguous(repository, text, found))
    return str(found[0]["id"])


def _ambiguous(repository: str, prefix: str, found: list[dict[str, Any]]) -> str:
    shown = found[:CANDIDATES_SHOWN]
    more = " and more" if len(found) > CANDIDATES_SHOWN else ""
    listed = "; ".join(f"{b['id']} ({b.get('phase')}, started {b.get('started')})"
                       for b in shown)
    return (f"build id {prefix} is ambiguous in {repository}: it starts {len(shown)}{more} "
            f"build ids: {listed}; give more of its characters")
