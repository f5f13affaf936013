"""The host driver and the definitions stand alone: no HDL or simulation toolchain, no
third-party dependency."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_driver_brings_a_function_up_without_the_toolchain():
    # A fresh interpreter (-I: no environment, no user site) in which amaranth, cocotb and
    # cocotbext cannot be imported runs the driver against an in-memory card.
    script = ROOT / "tests" / "driver_without_toolchain.py"
    run = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True,
                         timeout=120, cwd="/")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: nothing of the toolchain or the gateware was imported" in run.stdout, run.stdout


def test_driver_and_definitions_install_without_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == []
    extras = project["optional-dependencies"]
    assert set(extras) == {"hdl", "sim", "fpga"}
    pinned = [req for reqs in extras.values() for req in reqs
              if not req.startswith(project["name"])]
    assert all("==" in req for req in pinned), pinned
