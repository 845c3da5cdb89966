"""The suite's own rules: test modules never import each other, and every service's main() takes a clock."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SERVICES = TESTS.parent / "services"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_test_module_imports_another() -> None:
    """What tests share lives in tests/support.py, a conftest or a folder's own non-test module."""
    offenders = {}
    for file in sorted(TESTS.rglob("*.py")):
        name = file.relative_to(TESTS.parent).as_posix()
        found = {m for m in imported_modules(file) if m.rsplit(".", 1)[-1].startswith("test_")}
        if found:
            offenders[name] = sorted(found)
    assert offenders == {}


def test_every_service_main_takes_an_injected_clock() -> None:
    services = sorted(p.parent.name for p in SERVICES.glob("*/app.py"))
    assert services, "no service found"
    for service in services:
        main = importlib.import_module(f"services.{service}.app").main
        parameters = inspect.signature(main).parameters
        assert "clock" in parameters, f"services.{service}.app.main takes no clock"
        assert parameters["clock"].kind is inspect.Parameter.KEYWORD_ONLY, service


def test_common_tests_mirror_its_modules() -> None:
    modules = {p.stem for p in (SERVICES / "common").glob("*.py") if p.stem != "__init__"}
    for test in (TESTS / "common").glob("test_*.py"):
        assert test.stem.removeprefix("test_") in modules, f"{test.name} names no module of common"
    assert not [p.name for p in TESTS.glob("test_*.py") if p.stem.removeprefix("test_") in modules]
