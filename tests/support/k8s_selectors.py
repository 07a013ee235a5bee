"""Kubernetes label selectors as the API server parses them (=, ==, !=, in, notin,
exists, !exists), for the API test double."""

from __future__ import annotations

import re

_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)"
    r"|\s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*$"
)


def _split_terms(selector: str) -> list[str]:
    terms, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t for t in terms if t.strip()]


def parse_selector(selector: str) -> list[tuple[str, str, set[str]]]:
    """[(key, op, values)] with op in =, !=, in, notin, exists, !exists. ValueError if bad."""
    parsed = []
    for term in _split_terms(selector):
        m = _TERM.match(term)
        if not m:
            raise ValueError(f"unable to parse requirement: {term.strip()!r}")
        key = m["key"]
        if m["neg"]:
            if m["op"] or m["setop"]:
                raise ValueError(f"unable to parse requirement: {term.strip()!r}")
            parsed.append((key, "!exists", set()))
        elif m["op"]:
            parsed.append((key, "!=" if m["op"] == "!=" else "=", {m["value"]}))
        elif m["setop"]:
            values = {v.strip() for v in m["values"].split(",") if v.strip()}
            parsed.append((key, m["setop"], values))
        else:
            parsed.append((key, "exists", set()))
    return parsed


def selector_matches(requirements: list[tuple[str, str, set[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        ok = {
            "=": present and value in values,
            "!=": not present or value not in values,
            "in": present and value in values,
            "notin": not present or value not in values,
            "exists": present,
            "!exists": not present,
        }[op]
        if not ok:
            return False
    return True
