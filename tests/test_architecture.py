"""The house rules, checked on the source: imports point one way, the core does no I/O and keeps its state
private, adapters never see the config."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mpqr_kiosk.core.kiosk import Kiosk
from mpqr_kiosk.core.sites import site

PACKAGE = Path(__file__).resolve().parent.parent / "mpqr_kiosk"
ADAPTERS = ("mpqr_kiosk.devices", "mpqr_kiosk.mercadopago", "mpqr_kiosk.emulator")
# datetime for its values (a report's day): the core's clock stays injected, never read (see below)
CORE_MAY_IMPORT = {"__future__", "collections", "dataclasses", "datetime", "decimal", "enum", "logging", "re",
                   "typing"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports at module level or inside functions (``TYPE_CHECKING`` ones excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guards = [node for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)]
    hidden = {id(inner) for guard in guards for inner in ast.walk(guard)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: {i for i in imports_of(path) if i in MODULES and i != name} for name, path in MODULES.items()}


def test_there_is_no_import_circle() -> None:
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            pytest.fail("import circle: " + " -> ".join((*trail[trail.index(name):], name)))
        if name in done:
            return
        for imported in GRAPH[name]:
            if not MODULES[imported].name == "__init__.py":  # a package's __init__ is not an edge back
                visit(imported, (*trail, name))
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, ())


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("mpqr_kiosk.core")))
def test_the_core_imports_only_itself_and_pure_stdlib(name: str) -> None:
    outside = {i for i in imports_of(MODULES[name]) if not i.startswith("mpqr_kiosk.core")}
    assert {i.split(".")[0] for i in outside} <= CORE_MAY_IMPORT, outside
    source = MODULES[name].read_text()
    assert not any(clock in source for clock in (".now(", ".today(", "time.time(", ".utcnow(")), name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(ADAPTERS)))
def test_adapters_never_see_the_config(name: str) -> None:
    assert not {i for i in imports_of(MODULES[name]) if i.startswith(("mpqr_kiosk.config", "mpqr_kiosk.token"))}


def test_only_assemble_builds_adapters_from_the_config() -> None:
    factories = ("open_display", "open_printer", "open_inputs", "InstoreBackend", "OrdersBackend")
    users = {name for name, path in MODULES.items()
             if any(f in imports_of(path) or any(i.endswith("." + f) for i in imports_of(path)) for f in factories)
             and not name.startswith(ADAPTERS)}
    assert users == {"mpqr_kiosk.assemble"}


def test_the_kiosk_has_no_public_attributes() -> None:
    kiosk = Kiosk(site("MLA"), {}, clock=type("C", (), {"monotonic": lambda s: 0.0, "time": lambda s: 0.0})(),
                  new_ids=lambda: ("r", "k"))
    assert [name for name in vars(kiosk) if not name.startswith("_")] == []
