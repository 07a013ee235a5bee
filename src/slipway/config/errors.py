"""Turn pydantic's validation errors into messages a config author can act on:
the YAML path, the value (masked when secret), what is allowed and how to fix it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from slipway.config.executors import EXECUTOR_TAGS, KINDS_TEXT, MODEL_FOR_KIND
from slipway.config.models import AppConfig, ManagerConfig, RedisConfig, RegistryCredential
from slipway.config.quay import BuildLogsRedisConfig
from slipway.config_fields import MASK, SECRET_KEYS, mask_url, show


class ConfigError(Exception):
    """The configuration cannot be used. `messages` holds one line per problem."""

    def __init__(self, messages: list[str], warnings: list[str] | None = None) -> None:
        self.messages = messages
        # unknown-key warnings found on the way: often the cause of an error
        self.warnings = warnings or []
        super().__init__("\n".join(messages))


def _collect_fields(models: Iterable[type[BaseModel]]) -> dict[str, FieldInfo]:
    found: dict[str, FieldInfo] = {}
    for model in models:
        for name, info in model.model_fields.items():
            found.setdefault(name, info)
    return found


_FIELDS = _collect_fields(
    [AppConfig, ManagerConfig, RedisConfig, RegistryCredential, *MODEL_FOR_KIND.values(),
     BuildLogsRedisConfig]
)
_TAGS = set(EXECUTOR_TAGS.values())
_PLAIN_KEY = re.compile(r"^[A-Za-z_][\w-]*$")


def yaml_path(loc: Sequence[int | str], raw: dict[str, Any] | None = None) -> str:
    """('manager', 'EXECUTORS', 0, 'executor:kubernetes', 'SETUP_TIME') ->
    'BUILD_MANAGER[1].EXECUTORS[0].SETUP_TIME'."""
    parts: list[str] = []
    for item in loc:
        if item in _TAGS:
            continue
        if item == "manager" and not parts:
            parts.append("BUILD_MANAGER[1]")
        elif item == "build_manager_mode" and not parts:
            parts.append("BUILD_MANAGER")
        elif isinstance(item, int):
            parts.append(f"[{item}]")
        elif _PLAIN_KEY.match(item):
            parts.append(f".{item}" if parts else item)
        else:
            parts.append(f"[{item!r}]")
    path = "".join(parts)
    manager = raw.get("BUILD_MANAGER") if raw else None
    if isinstance(manager, list) and len(manager) > 1 and isinstance(manager[1], dict):
        legacy = manager[1]
        if "EXECUTORS" not in legacy and {"EXECUTOR", "EXECUTOR_CONFIG"} & legacy.keys():
            # the legacy form was validated as EXECUTORS[0]: point at what the user wrote
            path = path.replace(
                "BUILD_MANAGER[1].EXECUTORS[0].EXECUTOR", "BUILD_MANAGER[1].EXECUTOR", 1
            )
            path = path.replace(
                "BUILD_MANAGER[1].EXECUTORS[0]", "BUILD_MANAGER[1].EXECUTOR_CONFIG", 1
            )
    return path


def _key_of(loc: Sequence[int | str]) -> str:
    """The innermost config key of a location (NAMESPACE_LIMITS for NAMESPACE_LIMITS.ns)."""
    for item in reversed(loc):
        if isinstance(item, str) and item in _FIELDS:
            return item
    return ""


def _shown(key: str, loc: Sequence[int | str], value: Any) -> str:
    secret = key in SECRET_KEYS or ("REGISTRY_CREDENTIALS" in loc and key != "username")
    if secret and value is not None and not isinstance(value, dict | list):
        return repr(MASK)
    return show(value)


def _example(key: str) -> str:
    info = _FIELDS.get(key)
    if info is None or not info.examples:
        return ""
    example = info.examples[0]
    if isinstance(example, bool):
        return f"{key}: {str(example).lower()}"
    if isinstance(example, str | int | float):
        return f"{key}: {example}"
    text = yaml.safe_dump({key: example}, default_flow_style=True, width=10_000)
    return text.strip().removeprefix("{").removesuffix("}")


def _unit(key: str) -> str:
    info = _FIELDS.get(key)
    extra = info.json_schema_extra if info is not None else None
    unit = extra.get("unit") if isinstance(extra, dict) else None
    return f" of {unit}" if unit else ""


def _fix(key: str) -> str:
    example = _example(key)
    return f"; write e.g. {example}" if example else ""


def translate(error: dict[str, Any], raw: dict[str, Any] | None = None) -> str:
    """One pydantic error (an item of ValidationError.errors()) as one message."""
    loc: Sequence[int | str] = error["loc"]
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    path = yaml_path(loc, raw)
    key = _key_of(loc)
    shown = _shown(key, loc, value)

    if kind == "slipway":
        extra_key = str(ctx.get("key") or "")
        if extra_key:
            parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", extra_key)]
            path = yaml_path([*loc, *parts], raw)
        message = mask_url(str(ctx["message"]))
        return f"{path} {message}" if message.startswith("is required") else f"{path}: {message}"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        if not isinstance(value, dict):
            return (
                f"{path}: {shown} is not an executor; each executor is a mapping, "
                "e.g. - EXECUTOR: local"
            )
        kind_value = value.get("EXECUTOR")
        where = yaml_path([*loc, "EXECUTOR"], raw)
        if kind_value is None:
            return (
                f"{where} is required: say which kind of executor this is, one of "
                f"{KINDS_TEXT}; write e.g. EXECUTOR: kubernetes"
            )
        return (
            f"{where}: {show(kind_value)} is not an executor kind; valid kinds: "
            f"{KINDS_TEXT}; write e.g. EXECUTOR: kubernetes"
        )
    if kind == "missing":
        return f"{path} is required{_fix(key).replace('; write', '; add')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{path}: {shown} is not a whole number{_unit(key)}{_fix(key)}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"{path}: {shown} is not a number{_fix(key)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"{path}: {shown} is not true or false; write e.g. {key or path}: true"
    if kind in ("string_type", "string_unicode"):
        return (
            f"{path}: {shown} is not text (quote values that look like something else){_fix(key)}"
        )
    if kind in ("list_type", "tuple_type", "iterable_type"):
        return f"{path}: {shown} is not a list{_fix(key)}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        target = "the manager config" if path == "BUILD_MANAGER[1]" else "a mapping of keys"
        return f"{path}: {shown} is not {target}{_fix(key) if path != 'BUILD_MANAGER[1]' else ''}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {
            "greater_than_equal": "at least {ge}",
            "greater_than": "more than {gt}",
            "less_than_equal": "at most {le}",
            "less_than": "less than {lt}",
        }[kind]
        return f"{path}: {shown} is out of range; it must be {bound.format(**ctx)}{_fix(key)}"
    if kind == "too_short":
        return f"{path}: {shown} is empty; give at least one entry{_fix(key)}"
    if kind == "literal_error":
        return f"{path}: {shown} is not allowed; allowed: {ctx.get('expected')}{_fix(key)}"
    if kind in ("path_type", "path_parsing"):
        return f"{path}: {shown} is not a file path{_fix(key)}"
    if kind in ("value_error", "assertion_error"):
        return f"{path}: {ctx.get('error')}"
    return f"{path}: {shown} is not valid here{_fix(key)}"


def translate_all(exc: ValidationError, raw: dict[str, Any] | None = None) -> list[str]:
    messages: list[str] = []
    for error in exc.errors():
        message = translate(dict(error), raw)
        if message not in messages:
            messages.append(message)
    return messages
