"""Just enough Dockerfile parsing to know which base images a build pulls, and on which
line an instruction the runtime names starts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based number of the Dockerfile line it starts on
    text: str  # continuation lines joined, comments inside it dropped


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, each with the line it starts on."""
    found: list[Instruction] = []
    current = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # comments inside a continued instruction
        if not current:
            start = number
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        found.append(Instruction(start, current + stripped))
        current = ""
    if current.strip():
        found.append(Instruction(start, current))
    return found


def _expand(value: str, variables: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        if name in variables and variables[name] != "":
            return variables[name]
        return m.group("default") or ""

    return _VAR.sub(repl, value)


@dataclass(frozen=True)
class BaseImages:
    images: list[str]  # external images in Dockerfile order, without duplicates
    final: str | None  # the external image the final (or target) stage grows from
    # image -> the platform its FROM lines pin (`FROM --platform=$BUILDPLATFORM img`),
    # after substitution; "" when one of them pins none (it is built for each platform)
    pinned: dict[str, str] = field(default_factory=dict)


def base_images(
    text: str,
    build_args: Mapping[str, str],
    target: str = "",
    predefined: Mapping[str, str] | None = None,
) -> BaseImages:
    """The images a build starts FROM, following stage names; `scratch` is none.
    `predefined` are the values FROM lines see without an ARG (docker's platform args)."""
    variables: dict[str, str] = dict(predefined or {})
    stage_roots: dict[str, str | None] = {}  # stage name or index -> external root
    images: list[str] = []
    pinned: dict[str, str] = {}
    final: str | None = None
    index = 0
    seen_from = False
    for instruction in instructions(text):
        keyword, _, rest = instruction.text.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not seen_from:
            for decl in rest.split():
                name, eq, default = decl.partition("=")
                given = build_args.get(name, variables.get(name, ""))
                variables[name] = build_args.get(name, default.strip("\"'") if eq else given)
        elif keyword == "FROM":
            seen_from = True
            flags = [w for w in rest.split() if w.startswith("--")]
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                continue
            image = _expand(words[0], variables)
            platform = next((_expand(f.partition("=")[2], variables) for f in flags
                             if f.lower().startswith("--platform=")), "")
            alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else ""
            root: str | None
            if image.lower() in stage_roots:
                root = stage_roots[image.lower()]
            elif image.lower() == "scratch":
                root = None
            else:
                root = image
                if image not in images:
                    images.append(image)
                    pinned[image] = platform
                elif not platform:
                    pinned[image] = ""
            stage_roots[str(index)] = root
            if alias:
                stage_roots[alias] = root
            if not target or alias == target.lower() or str(index) == target:
                final = root
            if target and (alias == target.lower()):
                break
            index += 1
    return BaseImages(images, final, pinned)


def has_stage_of_only_from(text: str) -> bool:
    """Whether a stage has nothing after its FROM but ARGs: what the runtime then names
    as the stage's image is its base image itself."""
    stage_has_steps: bool | None = None  # None: before the first FROM
    for instruction in instructions(text):
        keyword = instruction.text.partition(" ")[0].upper()
        if keyword == "FROM":
            if stage_has_steps is False:
                return True
            stage_has_steps = False
        elif keyword != "ARG" and stage_has_steps is not None:
            stage_has_steps = True
    return stage_has_steps is False
