"""What a stopped podman/buildah build leaves in the host's container storage, found in
a few calls whatever the build's tag count.

A build killed mid-COMMIT leaves its image half-tagged (podman adds the tags one at a time
after the commit: 1,328 of 3,000 in the issue) and its buildah working containers (one
per stage). Removing names one `rmi` at a time took minutes for a few hundred tags; here
an image is removed once, by its ID.

Working containers carry no label of the build and are named after the base image
(`busybox-working-container-2`), shared by every build FROM it. They do keep the build's
arguments in their state file (`<graph root>/<driver>-containers/<id>/userdata/
buildah.json`, "Args"), so the worker passes each build a marker argument
(MARKER_ARG=<the build's private directory name>) and finds its containers by it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

# the build argument naming the build on its working containers; no Dockerfile declares
# it, so it changes nothing in the image (buildah records only the arguments it uses)
MARKER_ARG = "SLIPWAY_BUILD_MARKER"
# a build's private directory (in WORK_DIR), whose name is the marker
BUILD_DIRECTORY_PREFIX = "slipway-build-"


@dataclass(frozen=True)
class LocalImage:
    id: str  # full hex, without "sha256:"
    names: tuple[str, ...]


def parse_images(listing: str) -> list[LocalImage]:
    """`podman images --all --format json` or `buildah images --all --json --no-trunc`."""
    found = []
    for entry in json.loads(listing or "[]") or []:
        fields = {key.lower(): value for key, value in entry.items()}
        image_id = str(fields.get("id", "")).removeprefix("sha256:")
        if image_id:
            found.append(LocalImage(image_id, tuple(fields.get("names") or ())))
    return found


@dataclass
class Removal:
    delete: list[str] = field(default_factory=list)  # image IDs, removed whole
    # image ID -> this build's names on an image that has others too (another build's
    # tags, or a base that happens to share a name): only those names go
    untag: dict[str, list[str]] = field(default_factory=dict)


def is_image_id(reference: str) -> bool:
    """An image ID or its prefix (buildah prints a step's as `--> 9ea2655da8b`, 11
    characters); a name always has a `/` or a `:` past the prefix."""
    hex_part = reference.removeprefix("sha256:")
    return 8 <= len(hex_part) <= 64 and all(c in "0123456789abcdef" for c in hex_part)


def plan_removal(images: Iterable[LocalImage], references: Iterable[str],
                 keep: Collection[str] = ()) -> Removal:
    """How to remove the images this build made, named by `references` (its tags, and
    the IDs of its step images): an image that only this build named goes by ID; one
    that holds other names too only loses this build's. A step ID can be an image the
    build did not make (a Dockerfile of only `FROM base` prints the base's ID as what it
    committed): an image named by others, or one of `keep` (the IDs of the build's local
    bases, unnamed images of a local manifest list among them), only loses this build's
    names."""
    ids = [r.removeprefix("sha256:") for r in references if is_image_id(r)]
    names = {r for r in references if not is_image_id(r)}
    kept = {k.removeprefix("sha256:") for k in keep}
    removal = Removal()
    for image in images:
        ours = [n for n in image.names if n in names]
        named_by_others = len(ours) < len(image.names)
        by_id = any(image.id.startswith(i) for i in ids)
        if not named_by_others and image.id not in kept and (by_id or ours):
            removal.delete.append(image.id)
        elif ours:
            removal.untag[image.id] = ours
    return removal


def not_kept(references: Iterable[str], keep: Collection[str]) -> list[str]:
    """`references` but the IDs (or their prefixes) of images in `keep`."""
    kept = [k.removeprefix("sha256:") for k in keep]
    return [r for r in references
            if not (is_image_id(r) and any(k.startswith(r.removeprefix("sha256:")) for k in kept))]


def marked_containers(state_dir: Path, container_ids: Iterable[str], marker: str) -> list[str]:
    """The working containers whose state says they were made with MARKER_ARG=marker.
    `state_dir` is `<graph root>/<driver>-containers`."""
    found = []
    for container_id in container_ids:
        try:
            state = json.loads((state_dir / container_id / "userdata" / "buildah.json")
                               .read_text())
        except (OSError, ValueError):
            continue  # not a buildah container, or gone meanwhile
        if isinstance(state, dict) and (state.get("Args") or {}).get(MARKER_ARG) == marker:
            found.append(container_id)
    return found
