"""Warnings for keys slipway does not know. At the top level, a key that is neither
slipway's nor one of Quay's own (config/quay_keys.py) is reported, with the nearest known
key; inside BUILD_MANAGER every unknown key is."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from slipway.config.data_lifecycle import LogArchiveConfig, RetentionConfig
from slipway.config.executors import MODEL_FOR_KIND
from slipway.config.models import AppConfig, ManagerConfig, RedisConfig, RegistryCredential
from slipway.config.quay import QUAY_OWN_KEYS
from slipway.config.quay_keys import QUAY_KEYS, is_quay_key
from slipway.config.tracing import TracingConfig

TOP_LEVEL_KEYS = sorted(
    {*AppConfig.model_fields, "BUILD_MANAGER"} - {"build_manager_mode", "manager"}
)
MANAGER_KEYS = sorted({*ManagerConfig.model_fields, "EXECUTOR", "EXECUTOR_CONFIG"})
EXECUTOR_KEYS = frozenset(k for model in MODEL_FOR_KIND.values() for k in model.model_fields)


def _keys(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


def _close(key: str, known: Iterable[str], cutoff: float) -> tuple[str, float] | None:
    """The known key most like `key`, ignoring case (keys are case-sensitive: a lowercase
    spelling of ours is a typo too), with its similarity ratio."""
    by_upper = {k.upper(): k for k in known}
    match = difflib.get_close_matches(key.upper(), list(by_upper), n=1, cutoff=cutoff)
    if not match:
        return None
    return by_upper[match[0]], difflib.SequenceMatcher(None, key.upper(), match[0]).ratio()


def _warn_all(
    where: str, data: dict[Any, Any], known: list[str], skip: Iterable[str] = ()
) -> list[str]:
    warnings = []
    for key in data:
        if key in known or key in skip:
            continue
        text = str(key)
        nearest, ratio = _close(text, known, 0.0) or ("", 0.0)
        if ratio >= 0.6:
            hint = f"did you mean {nearest}?"
        else:
            hint = f"it is ignored (nearest known key: {nearest})"
        warnings.append(f"unknown key {where}{text}: {hint}")
    return warnings


def _executor(where: str, entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return []
    model = MODEL_FOR_KIND.get(entry.get("EXECUTOR"))  # type: ignore[arg-type]
    return _warn_all(where, entry, _keys(model)) if model is not None else []


def _top_level(key: Any) -> str | None:
    """The warning for one top-level key, or None when it is slipway's or Quay's."""
    text = str(key)
    if key in TOP_LEVEL_KEYS or text in QUAY_KEYS or text in QUAY_OWN_KEYS:
        return None
    match = _close(text, TOP_LEVEL_KEYS, 0.8)  # a typo of ours, even inside a Quay family
    if match:
        return f"unknown key {text}: did you mean {match[0]}?"
    if is_quay_key(text):
        return None
    if text in MANAGER_KEYS:
        return f"unknown key {text}: it is a build manager key; move it into BUILD_MANAGER[1]"
    if text in EXECUTOR_KEYS:
        return (f"unknown key {text}: it is an executor key; move it into an entry of "
                "BUILD_MANAGER[1].EXECUTORS")
    nearest, ratio = _close(text, [*TOP_LEVEL_KEYS, *QUAY_KEYS], 0.0) or ("", 0.0)
    owner = "slipway's" if nearest in TOP_LEVEL_KEYS else "Quay's"
    if ratio >= 0.6:
        return f"unknown key {text}: neither slipway's nor Quay's; did you mean {nearest} " \
               f"({owner})?"
    return f"unknown key {text}: neither slipway's nor Quay's, so it is ignored " \
           f"(nearest known key: {nearest})"


def unknown_key_warnings(raw: dict[Any, Any]) -> list[str]:
    warnings = [w for w in map(_top_level, raw) if w is not None]
    credentials = raw.get("REGISTRY_CREDENTIALS")
    if isinstance(credentials, dict):
        for host, entry in credentials.items():
            if isinstance(entry, dict):
                warnings += _warn_all(
                    f"REGISTRY_CREDENTIALS[{host!r}].", entry, _keys(RegistryCredential)
                )
    for name, model in (("LOG_ARCHIVE", LogArchiveConfig), ("RETENTION", RetentionConfig),
                        ("TRACING", TracingConfig)):
        section = raw.get(name)
        if isinstance(section, dict):
            warnings += _warn_all(f"{name}.", section, _keys(model))
    build_manager = raw.get("BUILD_MANAGER")
    if not (
        isinstance(build_manager, list)
        and len(build_manager) == 2
        and isinstance(build_manager[1], dict)
    ):
        return warnings
    manager = build_manager[1]
    prefix = "BUILD_MANAGER[1]."
    warnings += _warn_all(prefix, manager, MANAGER_KEYS)
    orchestrator = manager.get("ORCHESTRATOR")
    if isinstance(orchestrator, dict):
        prefix_keys = [k for k in orchestrator if str(k).endswith("_PREFIX")]  # an error
        warnings += _warn_all(
            f"{prefix}ORCHESTRATOR.", orchestrator, _keys(RedisConfig), skip=prefix_keys
        )
    executors = manager.get("EXECUTORS")
    if isinstance(executors, list):
        for index, entry in enumerate(executors):
            warnings += _executor(f"{prefix}EXECUTORS[{index}].", entry)
    elif isinstance(manager.get("EXECUTOR_CONFIG"), dict):
        legacy = dict(manager["EXECUTOR_CONFIG"])
        legacy.setdefault("EXECUTOR", manager.get("EXECUTOR"))
        warnings += _executor(f"{prefix}EXECUTOR_CONFIG.", legacy)
    return warnings
