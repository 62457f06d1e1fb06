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


LIBRARY_TESTS = Path(__file__).parent / "wmbus"


def absolute_imports(path: Path) -> set[str]:
    """The absolute modules a test module imports (also under TYPE_CHECKING), with each name
    imported from a package (`from a import b` gives `a.b`, which may be a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_library_tests_know_nothing_of_home_assistant() -> None:
    """tests/wmbus/ tests the wmbus package alone: no Home Assistant, none of its test
    plugin, and of the integration only the wmbus package."""
    modules = sorted(LIBRARY_TESTS.rglob("*.py"))
    assert len(modules) >= 5

    def wrong(name: str) -> bool:
        parts = name.split(".")
        if parts[0] in ("homeassistant", "pytest_homeassistant_custom_component"):
            return True
        # (The integration's package itself is imported with wmbus: Python loads parents.)
        return parts[:2] == ["custom_components", "wmbusmeters"] and parts[2:3] not in (
            [],
            ["wmbus"],
        )

    found = {
        str(path.relative_to(LIBRARY_TESTS)): sorted(n for n in absolute_imports(path) if wrong(n))
        for path in modules
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_wmbus_package_imports_nothing_of_the_integration() -> None:
    """wmbus/ could be published as a library of its own: its imports stay inside it."""
    outside = {
        m: sorted(d for d in deps if d in GRAPH and not d.startswith("wmbus"))
        for m, deps in GRAPH.items()
        if m.startswith("wmbus")
    }
    assert {m: deps for m, deps in outside.items() if deps} == {}


def test_one_telegram_walks_forward() -> None:
    """wmbus/ -> supervisor -> coordinator -> meters -> platforms, never back up: the
    coordinator routes (meters, drivers, discovery, issues, availability) and knows neither
    the process nor the platforms; the repair policy and the fix flows know neither."""
    upstream_of_platforms = {"supervisor", "coordinator", "availability", "meters", "issues"}
    platforms = {"sensor", "binary_sensor", "button", "update", "entity", "runtime"}
    for module in upstream_of_platforms:
        assert GRAPH[module].isdisjoint(platforms | {"repairs", "config_flow", "diagnostics"})
    assert "supervisor" not in GRAPH["coordinator"]
    assert {"meters", "drivers", "discovery", "issues", "availability"} <= GRAPH["coordinator"]
    assert "coordinator" not in GRAPH["issues"] | GRAPH["repairs"] | GRAPH["meters"]
    assert {"coordinator", "supervisor"}.isdisjoint(GRAPH["availability"] | GRAPH["issues"])


def test_each_module_stays_small() -> None:
    """The coordinator routes and nothing else; no module grows past 500 lines (the last
    split was by size and grew back: a module over this has taken a second job)."""
    lines = {
        module_name(path): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")
    }
    assert lines["coordinator"] <= 250
    assert {m: n for m, n in lines.items() if n > 500} == {}


def test_forms_and_their_checks_serve_the_flows() -> None:
    """The flows and repairs use the forms and their checks, never the other way round; the
    forms and checks know no running receiver's modules."""
    users = {"config_flow", "meter_flow", "repairs", "coordinator"}
    platforms = {"sensor", "binary_sensor", "button", "update", "diagnostics"}
    for module in ("forms", "validation"):
        assert GRAPH[module].isdisjoint(users | platforms), module
    assert {"forms", "validation"} <= GRAPH["config_flow"] & GRAPH["meter_flow"]


def test_wmbus_exceptions_are_one_family() -> None:
    """Every exception the wmbus package raises can be caught as WmbusError."""
    exceptions = [
        obj
        for name in wmbus.__all__
        if isinstance(obj := getattr(wmbus, name), type) and issubclass(obj, Exception)
    ]
    assert len(exceptions) >= 8
    assert [e.__name__ for e in exceptions if not issubclass(e, WmbusError)] == []
