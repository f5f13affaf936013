"""Lint the exported Verilog with Verilator (``--lint-only -Wall`` and the waivers beside this).

    python -m fpga.lint [--variant NAME | --all]
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from hdl.config import DEFAULT_VARIANT, VARIANTS

from .export import export


__all__ = ["lint", "WAIVERS"]

WAIVERS = Path(__file__).with_name("lint_waivers.vlt")


def lint(variant=DEFAULT_VARIANT):
    """Return (exit code, Verilator output) for the variant's export."""
    verilator = shutil.which("verilator")
    if verilator is None:
        raise SystemExit("verilator not found: install it (Debian/Ubuntu: apt-get install "
                         "verilator) or run ./sdxi setup")
    verilog = export(variant)
    cmd = [verilator, "--lint-only", "-Wall", "--top-module", "sdxi_engine",
           str(WAIVERS), str(verilog)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    return result.returncode, (result.stdout + result.stderr).strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verilator lint of the exported Verilog")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    worst = 0
    for variant in (sorted(VARIANTS) if args.all else [args.variant]):
        code, output = lint(variant)
        print(f"{variant}: {'clean' if code == 0 else 'FAILED'}")
        if output:
            print(output)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
