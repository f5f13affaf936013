"""Run every cocotb test in tests/system/cocotb_*.py as its own pytest item.

A module lists the variants it runs on in ``VARIANTS`` (default: the default variant only);
each (variant, module, test) is one simulator run against the exported Verilog, compiled as
SystemVerilog (cocotb's default). Tests named ``sweep_*`` carry the ``sweep`` marker and run
only with ``--sweep``, tests named ``long_*`` the ``long`` marker (``--long``). A few run again
with the export compiled as Verilog-2005.
"""

import ast
from pathlib import Path

import pytest

from sim.runner import DEFAULT_LANGUAGE, run, sim_root


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
                marks = ([pytest.mark.sweep] if test.startswith("sweep_") else
                         [pytest.mark.long] if test.startswith("long_") else [])
                yield pytest.param(variant, path.stem, test, marks=marks,
                                   id=f"{variant}-{path.stem[len('cocotb_'):]}-{test}")


@pytest.mark.system
@pytest.mark.parametrize("variant,module,test", list(_cases()))
def test_system(variant, module, test):
    run(f"tests.system.{module}", variant=variant, testcase=test,
        test_dir=sim_root(variant) / "runs" / module / test)


# Bring-up, a copy and the state of every output after reset, with the export read as
# Verilog-2005 as well: it starts and runs the same in both languages.
VERILOG_2005_TESTS = [("cocotb_bringup", "outputs_known_after_reset"),
                      ("cocotb_bringup", "linux_bring_up"),
                      ("cocotb_contexts", "copy_fill_write_imm_repcopy")]


@pytest.mark.system
@pytest.mark.parametrize("module,test", VERILOG_2005_TESTS,
                         ids=[f"{m[len('cocotb_'):]}-{t}" for m, t in VERILOG_2005_TESTS])
def test_system_verilog_2005(module, test):
    assert DEFAULT_LANGUAGE != "2005"
    run(f"tests.system.{module}", testcase=test, language="2005", sim="icarus",
        test_dir=sim_root("default") / "runs-2005" / module / test)
