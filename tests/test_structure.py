"""The integration's modules each do one job: no import circle, the wmbus package knows nothing
of Home Assistant, and its exceptions are one family."""

from __future__ import annotations

import ast
from pathlib import Path

from custom_components.wmbusmeters import wmbus
from custom_components.wmbusmeters.wmbus import WmbusError

PACKAGE = Path(__file__).parent.parent / "custom_components" / "wmbusmeters"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__") or "__init__"


def imports(path: Path) -> set[str]:
    """The package's own modules a module imports (also under TYPE_CHECKING), and any
    homeassistant import as `homeassistant`."""
    tree = ast.parse(path.read_text())
    package = (
        module_name(path).rpartition(".")[0] if path.name != "__init__.py" else module_name(path)
    )
    if package == "__init__":
        package = ""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if (node.module or "").startswith("homeassistant"):
                    found.add("homeassistant")
                continue
            base = package.split(".") if package else []
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            candidates = (
                [target] if node.module else [f"{target}.{a.name}".lstrip(".") for a in node.names]
            )
            for name in candidates:
                found.add(name or "__init__")
        elif isinstance(node, ast.Import) and any(
            alias.name.startswith("homeassistant") for alias in node.names
        ):
            found.add("homeassistant")
    return found


GRAPH = {module_name(path): imports(path) for path in PACKAGE.rglob("*.py")}


def test_no_import_circle() -> None:
    """Following the imports from any module never leads back to it."""
    modules = set(GRAPH)

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [m for m in GRAPH[start] if m in modules]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(m for m in GRAPH.get(module, ()) if m in modules)
        return seen

    circles = [module for module in modules if module != "__init__" and module in reaches(module)]
    assert circles == []


def test_wmbus_package_knows_nothing_of_home_assistant() -> None:
    assert [
        m for m, deps in GRAPH.items() if m.startswith("wmbus") and "homeassistant" in deps
    ] == []


def test_coordinator_runs_the_receiver_only() -> None:
    """It uses the meters, drivers, discovery and issue modules; the platforms and the fix flows
    use it, not the other way round."""
    assert GRAPH["coordinator"].isdisjoint(
        {"repairs", "sensor", "binary_sensor", "button", "config_flow", "entity", "diagnostics"}
    )
    assert {"meters", "drivers", "discovery", "issues"} <= GRAPH["coordinator"]
    assert "coordinator" not in GRAPH["issues"] | GRAPH["repairs"] | GRAPH["meters"]


def test_wmbus_exceptions_are_one_family() -> None:
    """Every exception the wmbus package raises can be caught as WmbusError."""
    exceptions = [
        obj
        for name in wmbus.__all__
        if isinstance(obj := getattr(wmbus, name), type) and issubclass(obj, Exception)
    ]
    assert len(exceptions) >= 8
    assert [e.__name__ for e in exceptions if not issubclass(e, WmbusError)] == []
