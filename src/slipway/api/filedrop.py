"""Signed file-drop links: upload URLs for clients, download URLs for build workers.

Both carry a CONTEXT token whose job_id is the file id; build_id tells their purpose
apart (the upload mark, or the build that downloads).
"""

from __future__ import annotations

import urllib.parse

from slipway.api.errors import ApiError
from slipway.config.models import AppConfig
from slipway.store.records import BuildRecord
from slipway.tokens.jwt import InvalidToken, TokenService, TokenType

UPLOAD_LIFETIME = 3600.0
DOWNLOAD_LIFETIME = 2 * 3600.0
# CONTEXT tokens serve two purposes; build_id tells them apart
UPLOAD_MARK = "filedrop-upload"


def context_url(config: AppConfig, tokens: TokenService, record: BuildRecord) -> str:
    """Where a worker fetches the build's context: the archive URL given at submit, or a
    signed 2-hour link to the uploaded file."""
    if record.archive_url:
        return record.archive_url
    if not record.resource_key:
        raise ValueError(f"build {record.id} has neither an archive_url nor an uploaded file")
    token = tokens.mint(TokenType.CONTEXT, record.id, record.resource_key, DOWNLOAD_LIFETIME)
    base = str(config.PUBLIC_URL).rstrip("/")
    query = urllib.parse.urlencode({"token": token})
    return f"{base}/api/v1/filedrop/{record.resource_key}/content?{query}"


def file_url(config: AppConfig, tokens: TokenService, file_id: str, purpose: str) -> str:
    """A signed 2-hour download link of a file the store knows by `file_id` (Quay mode:
    a user file of Quay's mounted LocalStorage; `purpose` goes into the token)."""
    token = tokens.mint(TokenType.CONTEXT, purpose, file_id, DOWNLOAD_LIFETIME)
    base = str(config.PUBLIC_URL).rstrip("/")
    query = urllib.parse.urlencode({"token": token})
    return f"{base}/api/v1/filedrop/{file_id}/content?{query}"


async def verify_link(tokens: TokenService, token: str, file_id: str, upload: bool) -> None:
    try:
        claims = await tokens.verify(token, TokenType.CONTEXT)
    except InvalidToken as exc:
        raise ApiError(403, f"the link is not valid: {exc}", "invalid_token") from None
    if claims.job_id != file_id or (claims.build_id == UPLOAD_MARK) != upload:
        raise ApiError(403, "the link is not valid for this file", "invalid_token")
