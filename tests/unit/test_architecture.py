"""The architecture's statement (.importlinter) holds, covers every package, and apps use public names only."""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / ".importlinter"


def _tiers() -> List[Set[str]]:
    config = configparser.ConfigParser()
    config.read(CONTRACTS, encoding="utf-8")
    lines = config["importlinter:contract:tiers"]["layers"].strip().splitlines()
    return [{name.strip() for name in line.split(":")} for line in lines]


def test_the_import_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--config", str(CONTRACTS)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_every_package_of_bot_and_apps_sits_in_a_tier() -> None:
    """A new package must be placed in the architecture, or it would escape every contract."""
    placed = set().union(*_tiers())
    modules = {
        f"bot.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "bot").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    modules |= {f"apps.{path.name}" for path in (ROOT / "apps").iterdir() if (path / "__init__.py").is_file()}
    modules.add("actions")
    assert modules - placed == set()
    assert placed - modules == set()


def test_every_domain_package_sits_in_a_layer_of_the_domain() -> None:
    """Inside the domain, layers point one way too: no domain package escapes that contract."""
    config = configparser.ConfigParser()
    config.read(CONTRACTS, encoding="utf-8")
    lines = config["importlinter:contract:domain-layers"]["layers"].strip().splitlines()
    layered = {name.strip() for line in lines for name in line.split(":")}
    assert layered == _tiers()[2]


def _private_uses(source: str) -> Iterator[Tuple[int, str]]:
    """Private names of our packages that ``source`` reaches: imported by name, or read off an imported module."""
    tree = ast.parse(source)
    modules: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {"bot", "actions"}:
            for alias in node.names:
                if alias.name.startswith("_"):
                    yield node.lineno, f"{node.module}.{alias.name}"
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in {"bot", "actions"}:
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            yield node.lineno, f"{node.value.id}.{node.attr}"


def test_apps_use_public_names_only() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / "apps").rglob("*.py"))
        for line, name in _private_uses(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_private_name_check_sees_both_ways_in() -> None:
    source = "from bot.services import audit\nfrom bot.db.audit import _record\naudit._write(1)\n"
    assert sorted(name for _, name in _private_uses(source)) == ["audit._write", "bot.db.audit._record"]
