"""DetermineCachedTag: the first of the build's tags that already exists in its repository.

The worker may use that image as a layer cache. Anything that goes wrong (registry down,
auth the manager cannot do) answers "", which the protocol says is always valid.
"""

from __future__ import annotations

import logging

import httpx

from slipway.config.models import AppConfig
from slipway.store.records import BuildRecord

log = logging.getLogger("slipway.manager")

_MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


async def first_existing_tag(
    app_config: AppConfig, record: BuildRecord, timeout: float = 5
) -> str:
    registry = record.registry
    scheme = "http" if app_config.registry_is_plain_http(registry) else "https"
    auth = None
    credentials = (app_config.REGISTRY_CREDENTIALS or {}).get(registry)
    if credentials is not None:
        auth = httpx.BasicAuth(credentials.username, credentials.password.get_secret_value())
    try:
        async with httpx.AsyncClient(timeout=timeout, auth=auth) as client:
            for tag in record.tags:
                url = f"{scheme}://{registry}/v2/{record.full_repository}/manifests/{tag}"
                response = await client.head(url, headers={"Accept": _MANIFEST_TYPES})
                if response.status_code == 200:
                    return tag
    except httpx.HTTPError as exc:
        log.info("cached tag lookup on %s failed: %s", registry, type(exc).__name__)
    return ""
