"""Milestones in a build's output, for work beside the build to start at the right time
(worker/build.py):

- the build is under way: podman has set up its store and resolved the base, and the
  work that competes with that start or with a commit (the signing's calls to the
  registry, its queries of the store) can start. With a commit per step (--layers), that
  is the first step's `--> <id>` (after its push to the registry cache, which is then
  idle until the next step's); without, the second step's STEP line;
- its image is in the store: podman/buildah print `COMMIT <name>` before the last step's
  commit and, once it is done, `--> <id>` or, with the registry cache, `--> Pushing cache
  <repo>:<key>` (the step's cache push, which the build still waits for). What reads the
  image (the SBOM) starts then, not at the build's end."""

from __future__ import annotations

import re

from slipway.worker.registry_cache import COMMITTED_LINE, STEP_LINE

# a multi-stage build's lines start with their stage: "[2/2] COMMIT ..."
_COMMIT = re.compile(r"^(?:\[[a-z0-9/]+\] ){0,2}COMMIT (\S+)$")
# printed after a commit, never during one (the copy progress of other versions is)
_AFTER_COMMIT = re.compile(r"^--> (?:Pushing cache \S+|[0-9a-f]{11,64})$")


class UnderWay:
    """Watches the build's lines for the moment it is under way."""

    def __init__(self, commit_per_step: bool) -> None:
        self.commit_per_step = commit_per_step
        self.steps = 0
        self.done = False

    def line(self, text: str) -> bool:
        """True once: at that moment."""
        if self.done:
            return False
        stripped = text.strip()
        if self.commit_per_step:
            self.done = bool(COMMITTED_LINE.match(stripped))  # after its cache push
        elif STEP_LINE.match(stripped):
            self.steps += 1
            self.done = self.steps == 2
        return self.done


class FinalCommit:
    """Watches the build's lines for the commit of the image named `name` (the build's
    first tag, the name buildah commits the last stage's image as)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._committing = False
        self.done = False

    def line(self, text: str) -> bool:
        """True once: at the first line that says the image named `name` is committed."""
        if self.done:
            return False
        stripped = text.strip()
        if match := _COMMIT.match(stripped):
            self._committing = match[1] == self.name
        elif self._committing and _AFTER_COMMIT.match(stripped):
            self.done = True
            return True
        return False


def same_image(one: str, other: str) -> bool:
    """Whether two image IDs (full, short, with or without "sha256:") are one image."""
    a, b = one.removeprefix("sha256:"), other.removeprefix("sha256:")
    return bool(a and b) and (a.startswith(b) or b.startswith(a)) and min(len(a), len(b)) >= 12


__all__ = ["FinalCommit", "UnderWay", "same_image"]
