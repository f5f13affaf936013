"""Generate the U50 sources from the export and, where Vivado is installed, build the bitstream.

    python -m fpga.u50.build                  # everything, into build/u50/
    python -m fpga.u50.build --generate-only  # wrapper and IP script only
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from sdxi_defs.metadata import validate
from sim.verilog_ports import module_ports

from ..export import REPO_ROOT, export
from .pcie4c_ip import render_ip_tcl
from .wrapper import render_wrapper


__all__ = ["generate", "OUT"]

OUT = REPO_ROOT / "build" / "u50"
VARIANT = "default"       # Gen3 x16, 512-bit: what the U50 runs


def generate(out=OUT):
    """Export the engine and write fpga_u50.v and the IP script beside a copy of it."""
    verilog = export(VARIANT)
    meta = validate(json.loads(verilog.with_suffix(".json").read_text()))
    ports = module_ports(verilog.read_text(), meta["top"])
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(verilog, out / "sdxi_engine.v")
    (out / "fpga_u50.v").write_text(
        render_wrapper(ports, meta["data_width"], meta["pcie"]["lanes"]))
    (out / "pcie4c_uscale_plus_0.tcl").write_text(render_ip_tcl(meta))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="Alveo U50 bitstream build")
    parser.add_argument("--generate-only", action="store_true",
                        help="write the generated sources to build/u50/ and stop")
    args = parser.parse_args(argv)
    out = generate()
    print(f"[u50] generated {out}/fpga_u50.v and {out}/pcie4c_uscale_plus_0.tcl")
    if args.generate_only:
        return 0
    vivado = shutil.which("vivado")
    if vivado is None:
        print("[u50] Vivado not found on PATH: the bitstream needs AMD Vivado (2022.2 or newer,\n"
              "      with a licence for xcu50-fsvh2104-2-e). Source its settings64.sh and run\n"
              "      ./sdxi bitstream again. The generated sources above are ready.",
              file=sys.stderr)
        return 2
    cmd = [vivado, "-mode", "batch", "-nojournal", "-log", str(out / "vivado.log"),
           "-source", str(Path(__file__).with_name("build.tcl")), "-tclargs", str(out),
           str(REPO_ROOT)]
    print(f"[u50] running Vivado (synthesis, place, route, bitstream: about an hour)")
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
