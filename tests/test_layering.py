"""Architecture rules: contracts depend on nothing of ours; services never import each other."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[1] / "services"
LIBRARIES = {"contracts", "common", "policy", "wording", "state"}
ALLOWED_FOR_CONTRACTS = {"msgspec", "services"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def packages() -> list[Path]:
    return sorted(p for p in SERVICES.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_contracts_import_only_stdlib_and_msgspec() -> None:
    offenders = []
    for file in (SERVICES / "contracts").rglob("*.py"):
        for name in imports(file):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "msgspec":
                continue
            if name.startswith("services.contracts"):
                continue
            offenders.append(f"{file.name}: {name}")
    assert offenders == []


def test_libraries_do_not_import_services() -> None:
    offenders = []
    for lib in LIBRARIES:
        for file in (SERVICES / lib).rglob("*.py"):
            for name in imports(file):
                parts = name.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] not in LIBRARIES:
                    offenders.append(f"{lib}/{file.name}: {name}")
    assert offenders == []
    # common is plumbing: it must not reach into the policy (business rules), nor up into state.
    for file in (SERVICES / "common").rglob("*.py"):
        assert not any(n.startswith(("services.policy", "services.state")) for n in imports(file)), file


def test_state_sits_between_common_and_the_services() -> None:
    """The state library keeps KV state over common's bus: no business rules, no words."""
    offenders = []
    for file in (SERVICES / "state").rglob("*.py"):
        for name in imports(file):
            if name.startswith("services.") and not name.startswith(
                ("services.state", "services.common", "services.contracts")
            ):
                offenders.append(f"state/{file.name}: {name}")
    assert offenders == []


def test_one_compare_and_set_loop() -> None:
    """Only Bus.kv_step writes at a revision or creates a key: every other CAS goes through it."""
    writes = re.compile(r"\bkv\.(create|update)\(|KeyWrongLastSequenceError|\b10071\b")
    writers = sorted(
        str(file.relative_to(SERVICES)) for file in SERVICES.rglob("*.py") if writes.search(file.read_text())
    )
    assert writers == ["common/bus.py"]


def test_services_never_import_each_other() -> None:
    services = [p.name for p in packages() if p.name not in LIBRARIES]
    assert {"intake_email", "intake_voice", "router", "notifier", "console"} <= set(services)
    offenders = []
    for service in services:
        for file in (SERVICES / service).rglob("*.py"):
            for name in imports(file):
                parts = name.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] not in LIBRARIES | {service}:
                    offenders.append(f"{service}/{file.name}: {name}")
    assert offenders == []


def test_no_grab_bag_modules() -> None:
    banned = {"utils.py", "helpers.py", "manager.py"}
    assert [p for p in SERVICES.rglob("*.py") if p.name in banned] == []
