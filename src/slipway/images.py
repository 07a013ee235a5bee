"""Where slipway's own images are published: `make images` tags them so, and the
kubernetes executors and `slipway deploy manifests` use them when a config names none."""

from __future__ import annotations

from slipway import __version__

IMAGE_REPOSITORY = "quay.io/slipway"
MANAGER_IMAGE = f"{IMAGE_REPOSITORY}/slipway"
WORKER_IMAGE = f"{IMAGE_REPOSITORY}/slipway-worker"
VERSION_TAG = __version__
# the image `slipway deploy manifests` runs unless told otherwise
MANAGER_IMAGE_REFERENCE = f"{MANAGER_IMAGE}:{VERSION_TAG}"
