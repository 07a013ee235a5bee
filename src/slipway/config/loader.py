"""Read config.yaml, validate it, and report every problem at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from slipway.config.errors import ConfigError, translate_all, yaml_path
from slipway.config.models import DEFAULT_MANAGER, AppConfig
from slipway.config.unknown import unknown_key_warnings
from slipway.executors import registry


@dataclass
class LoadedConfig:
    config: AppConfig
    warnings: list[str] = field(default_factory=list)
    source: Path | None = None


class _Loader(yaml.SafeLoader):
    """SafeLoader that notes duplicate keys (PyYAML silently keeps the last one)."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue
            if key in seen:
                self.duplicates.append(
                    f"line {key_node.start_mark.line + 1}: key {key} is "
                    "given twice; the last one is used"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> tuple[Any, list[str]]:
    loader = _Loader(text)
    loader.duplicates = []
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        what = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(
            [
                f"{source}: not valid YAML at {where}: {what}; check the indentation there and "
                "that each key is followed by a colon and a space (KEY: value)"
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _unimplemented(config: AppConfig, raw: dict[str, Any]) -> list[str]:
    if config.manager is None or not config.FEATURE_BUILD_SUPPORT:
        return []
    available = registry.implemented_kinds()
    messages = []
    for index, executor in enumerate(config.manager.EXECUTORS):
        if executor.EXECUTOR not in available:
            where = yaml_path(["manager", "EXECUTORS", index, "EXECUTOR"], raw)
            messages.append(
                f"{where}: executor kind {executor.EXECUTOR!r} is not implemented in this "
                f"version of slipway; available: {', '.join(available)}"
            )
    return messages


def parse_config(
    raw: dict[str, Any], *, config_dir: Path | None = None, source: Path | None = None
) -> LoadedConfig:
    """Validate an already parsed config mapping (the YAML document)."""
    warnings = unknown_key_warnings(raw)
    context = {"config_dir": config_dir} if config_dir else None
    try:
        config = AppConfig.model_validate(raw, context=context)
    except ValidationError as exc:
        raise ConfigError(translate_all(exc, raw), warnings) from None
    errors = _unimplemented(config, raw)
    if errors:
        raise ConfigError(errors, warnings)
    return LoadedConfig(config, warnings, source)


def load_config(path: str | Path | None) -> LoadedConfig:
    """Load and validate `path`; None: the embedded default. Raises ConfigError."""
    if path is None:
        return LoadedConfig(default_config(), [], None)
    source = Path(path).expanduser()
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{source}: no such file; give the path of your config.yaml"]) from None
    except IsADirectoryError:
        raise ConfigError(
            [f"{source}: is a directory; give the path of the config.yaml inside it"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{source}: cannot be read: {exc}"]) from None
    raw, duplicates = _parse_yaml(text, str(source))
    warnings = [f"{source} {line}" for line in duplicates]
    if raw is None:
        raw = {}
        warnings.append(f"{source} is empty: using the defaults")
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else f"the single value {raw!r}"
        raise ConfigError(
            [
                f"{source}: the top level must be a mapping of keys "
                f"(KEY: value, one per line), but it is {kind}"
            ]
        )
    try:
        loaded = parse_config(raw, config_dir=source.resolve().parent, source=source)
    except ConfigError as exc:
        exc.warnings[:0] = warnings
        raise
    loaded.warnings[:0] = warnings
    return loaded


# The embedded default is one person's machine: the registry they name on it (127.0.0.1,
# ::1, localhost) is allowed and reached over plain HTTP, as docker does. A config file
# keeps its administrator's explicit lists unless it says LOOPBACK_REGISTRIES: true.
EMBEDDED_DEFAULT: dict[str, Any] = {
    "BUILD_MANAGER": ["ephemeral", DEFAULT_MANAGER],
    "LOOPBACK_REGISTRIES": True,
}


def default_config() -> AppConfig:
    """The embedded default: an ephemeral manager with one `local` executor, registries
    on loopback allowed."""
    return AppConfig.model_validate(EMBEDDED_DEFAULT)
