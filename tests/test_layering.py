"""Dependencies go one way: run_vos.py -> vos -> seem_core, eval (and eval never needs torch)."""
import ast

import pytest

from conftest import ROOT

FORBIDDEN = {
    "seem_core": {"vos", "eval", "run_vos"},
    "eval": {"torch", "seem_core", "vos", "run_vos"},
    "vos": {"run_vos"},
}


def imported_packages(path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package):
    offenders = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
                 for path in sorted((ROOT / package).rglob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}
