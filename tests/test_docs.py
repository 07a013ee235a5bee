"""docs/ says what the code does: the package map lists the packages that exist, the
configuration page every key the models accept, the audit log's table every action
recorded, and what the code cites is there."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from slipway.api import audit, sse
from slipway.config.access import AccessConfig
from slipway.config.data_lifecycle import LogArchiveConfig, RetentionConfig
from slipway.config.models import AppConfig, ManagerConfig, RedisConfig, RegistryCredential
from slipway.executors.registry import MODELS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "slipway"


def section(page: str, heading: str) -> str:
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_package_map_lists_every_package_and_top_level_module() -> None:
    rows = re.findall(r"^\| `([^`]+)` \|", section("architecture.md", "Package map"), re.M)
    packages = {
        f"{init.parent.relative_to(SRC).as_posix()}/"
        for init in SRC.rglob("__init__.py")
        if init.parent != SRC
    }
    modules = {path.name for path in SRC.glob("*.py") if path.name != "__init__.py"}
    assert len(rows) == len(set(rows)), "a package is listed twice"
    assert set(rows) == packages | modules


def _keys(model: type[BaseModel]) -> set[str]:
    """The YAML keys of a model (not its internal fields, build_manager_mode, manager)."""
    return {name for name in model.model_fields if name.isupper() or model is RegistryCredential}


def test_every_config_key_is_on_the_configuration_page() -> None:
    text = (DOCS / "configuration.md").read_text()
    documented = set(re.findall(r"\b[A-Za-z0-9_]+\b", text))
    models: list[type[BaseModel]] = [AppConfig, ManagerConfig, RedisConfig, RegistryCredential,
                                     LogArchiveConfig, RetentionConfig, AccessConfig]
    keys = set().union(*(_keys(m) for m in [*models, *MODELS]))
    assert keys - documented == set()
    for model in MODELS:
        for kind in model.kinds():
            assert f"`{kind}`" in text, kind


def test_what_the_code_cites_is_in_the_repository() -> None:
    cited: set[str] = set()
    outside = ("DESIGN" + ".md", "spec" + "/")  # the project's own notes, not in the repository
    sources = [*SRC.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *ROOT.glob("benchmarks/*.py"),
               ROOT / "benchmarks" / "README.md", ROOT / "README.md"]
    for path in sources:
        text = path.read_text()
        assert not any(page in text for page in outside), f"{path} cites a page outside"
        cited.update(re.findall(r"docs/([a-z]+\.md)", text))
    assert cited, "the code cites no docs/ page"
    missing = {page for page in cited if not (DOCS / page).is_file()}
    assert missing == set()


def test_every_audit_action_is_documented_and_offered() -> None:
    """docs/access.md's table, `slipway audit --action`'s help and the web UI's Audit
    filter name each action the audit log records, and no other."""
    documented = re.findall(r"`([a-z_]+\.[a-z_]+)`",
                            "".join(re.findall(r"^\| (`[^|]+)\|", section(
                                "access.md", "The audit log"), re.M)))
    assert sorted(documented) == sorted(audit.ACTIONS)
    help_text = (SRC / "cli" / "audit_cmd.py").read_text()
    ui = (SRC / "api" / "static" / "page-audit.js").read_text()
    ui_actions = re.findall(r'"([a-z_]+\.[a-z_]+)"',
                            ui[ui.index("const ACTIONS"):ui.index("];", ui.index("const ACTIONS"))])
    assert sorted(ui_actions) == sorted(audit.ACTIONS)
    assert [a for a in audit.ACTIONS if a not in help_text] == []


def test_the_log_streams_poll_is_the_one_documented() -> None:
    """architecture.md tells how late a log stream sees a writer in another process."""
    said = re.search(r"at its next poll, every\s+(\d+) ms", (DOCS / "architecture.md").read_text())
    assert said is not None and int(said.group(1)) == round(sse.POLL_SECONDS * 1000)
