"""A failed `podman build` / `buildah bud` / `docker build` as the one message a user reads.

The runtimes' own words are kept, without what only their developers read: the `Error:`
prefix, Go value dumps (`&imagebuilder.Step{Env:[]string{...}, ...}`) and the worker's
temporary paths. A failing step is named by its Dockerfile line:

  Error: building at STEP "RUNN ": Build error: Unknown instruction: "RUNN" &imagebuilder…
  -> Dockerfile line 3: unknown instruction: RUNN
  Error: building at STEP "RUN make": while running runtime: exit status 2
  -> Dockerfile line 5: RUN make: exit status 2
"""

from __future__ import annotations

import json
import re

from slipway.worker.dockerfile import Instruction, instructions

_PREFIX = re.compile(r"^\s*(?:error|fatal)\s*:?\s*", re.I)
_STEP = re.compile(r'^building at STEP "(?P<step>(?:[^"\\]|\\.)*)":\s*(?P<rest>.*)$', re.S)
# the start of a Go value printed with %#v: &pkg.Type{ or pkg.Type{
_GO_VALUE = re.compile(r"\s*&?[A-Za-z_]\w*\.[A-Z]\w*\{")
_ORIGINAL = re.compile(r'Original:"((?:[^"\\]|\\.)*)"')
_UNKNOWN = re.compile(r'^(?:build error:\s*)?unknown instruction:\s*"?(?P<word>[^"\s]+)"?', re.I)
_RUNTIME_NOISE = re.compile(r"^(?:error )?while running runtime:\s*", re.I)
SHOWN_INSTRUCTION = 80  # characters of a long instruction shown in the message


def describe(error_text: str, dockerfile: str, context_dir: str = "") -> str:
    """The message for a build that failed with the runtime's `error_text`."""
    text = " ".join(line.strip() for line in error_text.splitlines() if line.strip())
    text = _PREFIX.sub("", text, count=1)
    text, originals = _strip_go_values(text)
    if context_dir:
        text = text.replace(f'"{context_dir}"', "the build context").replace(
            context_dir, "the build context")
    step = _STEP.match(text)
    if step is None:
        return f"the build failed: {text}" if text else "the build failed"
    step_text = _unquote(step.group("step")).strip()
    rest = _RUNTIME_NOISE.sub("", step.group("rest").strip())
    unknown = _UNKNOWN.match(rest)
    if unknown is not None:
        word = unknown.group("word")
        found = _find(dockerfile, originals, step_text, keyword=word)
        return f"{_where(found)}: unknown instruction: {word}"
    found = _find(dockerfile, originals, step_text)
    keyword = step_text.split(" ", 1)[0].upper()
    if rest.upper().startswith(keyword + " "):
        return f"{_where(found)}: {rest}"  # "ENV requires at least one argument"
    return f"{_where(found)}: {_shorten(found.text if found else step_text)}: {rest}"


def _where(found: Instruction | None) -> str:
    return f"Dockerfile line {found.line}" if found is not None else "Dockerfile"


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_INSTRUCTION else text[: SHOWN_INSTRUCTION - 1] + "…"


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _find(dockerfile: str, originals: list[str], step_text: str,
          keyword: str = "") -> Instruction | None:
    """The instruction the runtime names: by the text it quotes, else by its keyword."""
    candidates = instructions(dockerfile)
    for wanted in [*originals, step_text]:
        normal = _normal(wanted)
        for instruction in candidates:
            if normal and _normal(instruction.text) == normal:
                return instruction
    if keyword:
        for instruction in candidates:
            if instruction.text.split(" ", 1)[0].lower() == keyword.lower():
                return instruction
    return None


def _strip_go_values(text: str) -> tuple[str, list[str]]:
    """`text` without Go value dumps, and the `Original:` strings they held."""
    originals: list[str] = []
    parts: list[str] = []
    position = 0
    while (match := _GO_VALUE.search(text, position)) is not None:
        end = _closing_brace(text, match.end() - 1)
        parts.append(text[position : match.start()])
        originals += [_unquote(o) for o in _ORIGINAL.findall(text[match.start() : end])]
        position = end
    parts.append(text[position:])
    return "".join(parts).strip(), originals


def _closing_brace(text: str, opening: int) -> int:
    """The index after the brace that closes the one at `opening` (quotes respected)."""
    depth = 0
    quoted = False
    i = opening
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _unquote(go_string: str) -> str:
    try:
        return str(json.loads(f'"{go_string}"'))
    except ValueError:
        return go_string
