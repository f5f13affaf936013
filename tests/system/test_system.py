"""Run every cocotb test in tests/system/cocotb_*.py as its own pytest item.

A module lists the variants it runs on in ``VARIANTS`` (default: the default variant only);
each (variant, module, test) is one simulator run against the exported Verilog. Tests named
``sweep_*`` carry the ``sweep`` marker and run only with ``--sweep``.
"""

import ast
from pathlib import Path

import pytest

from sim.runner import run


HERE = Path(__file__).parent


def _cocotb_tests(path):
    tree = ast.parse(path.read_text())
    variants = ("default",)
    tests = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "VARIANTS"
                                                for t in node.targets):
            variants = tuple(ast.literal_eval(node.value))
        if isinstance(node, ast.AsyncFunctionDef):
            for d in node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                if ast.unparse(target) == "cocotb.test":
                    tests.append(node.name)
    return variants, tests


def _cases():
    for path in sorted(HERE.glob("cocotb_*.py")):
        variants, tests = _cocotb_tests(path)
        for variant in variants:
            for test in tests:
                marks = [pytest.mark.sweep] if test.startswith("sweep_") else []
                yield pytest.param(variant, path.stem, test, marks=marks,
                                   id=f"{variant}-{path.stem[len('cocotb_'):]}-{test}")


@pytest.mark.system
@pytest.mark.parametrize("variant,module,test", list(_cases()))
def test_system(variant, module, test):
    run(f"tests.system.{module}", variant=variant, testcase=test,
        test_dir=Path("build") / "sim" / variant / "runs" / module / test)
