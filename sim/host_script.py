"""Run a host script against the simulated card.

A host script is a Python file with ``async def main(card)``; ``card`` is an ``sw.SdxiCard``
for the simulated card's function 0, enumerated with bus mastering and MSI-X on, not yet
started. A script whose ``main`` takes more arguments (``main(card, *others)``) also gets a
card for each of the other functions, each with its own host memory, as guests would.

    python -m sim.host_script SCRIPT.py [--variant NAME] [--timeout-us N]

Inside the simulator this module is the cocotb test module; ``SDXI_SCRIPT`` names the script.
"""

import argparse
import importlib.util
import inspect
import os
import sys
from pathlib import Path

import cocotb


def _load(path):
    spec = importlib.util.spec_from_file_location("sdxi_host_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "main"):
        raise AttributeError(f"{path} has no 'async def main(card)'")
    return module


def _timeout_us():
    return float(os.environ.get("SDXI_SCRIPT_TIMEOUT_US", "1000"))


@cocotb.test(timeout_time=_timeout_us(), timeout_unit="us")
async def host_script(dut):
    from sim.tb import SdxiTb
    script = _load(os.environ["SDXI_SCRIPT"])
    tb = SdxiTb(dut)
    card = await tb.card()
    params = inspect.signature(script.main).parameters.values()
    if len(params) > 1:
        others = [await tb.card(function=f)
                  for f in range(1, tb.metadata["sdxi"]["functions"])]
        await script.main(card, *others)
    else:
        await script.main(card)


def main(argv=None):
    from hdl.config import DEFAULT_VARIANT, VARIANTS
    from sim.runner import run

    parser = argparse.ArgumentParser(description="Run a host script against the simulated card.")
    parser.add_argument("script", type=Path)
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    parser.add_argument("--timeout-us", type=float, default=1000,
                        help="simulated-time limit of the script (default 1000 us)")
    args = parser.parse_args(argv)
    if not args.script.is_file():
        parser.error(f"no such script: {args.script}")
    env = {
        "SDXI_SCRIPT": str(args.script.resolve()),
        "SDXI_SCRIPT_TIMEOUT_US": str(args.timeout_us),
        "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"),
        "GPI_LOG_LEVEL": os.environ.get("GPI_LOG_LEVEL", "WARNING"),
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    results = run("sim.host_script", variant=args.variant, extra_env=env,
                  test_dir=Path("build") / "scripts" / args.script.stem)
    from cocotb_tools.check_results import get_results
    tests, failed = get_results(results)
    if failed or not tests:
        print(f"[sdxi] {args.script} failed; full log above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
