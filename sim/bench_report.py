"""Benchmark report: throughput against transfer size, small-operation rates against queue
depth, the pv = 1 / pv = 0 ratio against size and a lone copy's latency, as CSV files and
plots.

    python -m sim.bench_report [--variant default|nostraddle|w256] [--out DIR]

One simulation (MPS 256, MRRS 512, extended tags, 250 MHz user clocks) measures:

* ``throughput.csv``: bytes per clock of COPY and FILL descriptors (a stream of them, at least
  64 KiB in all, doorbell to last completion, as ``sim.bench_copy``) and of single transfers
  of the one-way DMA engines (the exerciser's GO to status, as ``sim.bench_dma``), 64 B to
  1 MiB, each beside the bound that applies in simulation and the physical Gen3 x16 ceiling
  for that TLP size (shared/perf-ceilings.md);
* ``queue_depth.csv``: 64-byte COPYs and FILLs per clock when 1 to 256 are submitted at once;
* ``spaces.csv``: a copy between two pv = 1 address spaces (4 KiB pages, TLB invalidated
  first) against the same copy with bus addresses, 4 KiB to 1 MiB;
* ``latency.csv``: clocks from the doorbell write to the CST write of a lone 64-byte COPY.

Then ``main`` draws ``throughput.png``, ``queue_depth.png`` and ``spaces.png`` with
matplotlib and prints the folder.
"""

import argparse
import csv
import os
import sys
from pathlib import Path

import cocotb

from sim.bench_copy import COPY_BOUND, SMALL_BOUND
from sim.bench_dma import bound as dma_bound

SIZES = [64 << (2 * i) for i in range(8)]            # 64 B, 256 B, ... 1 MiB
DEPTHS = [1 << i for i in range(9)]                  # 1 to 256 descriptors at once
SPACE_SIZES = [4 << (2 * i + 10) for i in range(5)]  # 4 KiB to 1 MiB
STREAM_BYTES = 64 << 10
#: Physical Gen3 x16 payload ceilings, MPS 256, MRRS 512, by TLP payload (perf-ceilings.md,
#: "Size dependence": Gb/s / 2 = B/clk at 250 MHz); 512 B and up as 512 B.
LINK_CEILING = {"write": {64: 41.35, 128: 47.9, 256: 52.0, 512: 52.0},
                "read": {64: 43.3, 128: 49.15, 256: 52.75, 512: 52.75},
                "copy": {64: 32.5, 128: 41.35, 256: 47.9, 512: 49.85}}


def link_ceiling(direction, size):
    """The physical ceiling for transfers of ``size`` bytes: their TLPs are at most that
    large (and at most Max_Payload_Size / MRRS, where the table levels off)."""
    table = LINK_CEILING[direction]
    return table[max(s for s in table if s <= max(size, 64))]


def _write_csv(folder, name, header, rows):
    with open(Path(folder) / name, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def report(dut):
    from sim.benchmark import doorbell_to_completion
    from sim.tb import SdxiTb
    from sw.context import Completion
    from sw.descriptors import copy_descriptor, fill_descriptor
    from sw.exerciser import DmaExerciser

    folder = os.environ["SDXI_REPORT_DIR"]
    tb = SdxiTb(dut)
    card = await tb.card()
    await tb.set_device_control(mps=256, mrrs=512, ext_tag=True)
    t = card.transport
    straddle = tb.metadata["pcie"]["straddle"]
    src, dst = t.alloc_dma(SIZES[-1]), t.alloc_dma(SIZES[-1])
    src.write(0, bytes(range(256)) * (SIZES[-1] // 256))

    # The exerciser has the DMA RAM while the function is stopped (sdxi_defs/ram_map.py).
    x = DmaExerciser(t, poll_ns=200, timeout_ns=50_000_000)
    dma_rows = []
    for kind, direction, straddled in (("DMA write", "write", straddle["rq"]),
                                       ("DMA read", "read", straddle["rc"] > 0)):
        for size in SIZES:
            result = (await x.write(0, size, dst.addr) if direction == "write"
                      else await x.read(src.addr, size, 0))
            assert result.error == 0, (kind, size, result)
            dma_rows.append((kind, size, 1, result.cycles, size / result.cycles,
                             dma_bound(direction, straddled), link_ceiling(direction, size)))
    await card.start()
    cxt = await card.create_context()

    async def stream(make, size, count):
        csts = [Completion(card) for _ in range(-(-count // 8))]
        descriptors = [make(i, csts[i // 8] if i % 8 == 7 or i == count - 1 else None)
                       for i in range(count)]
        return await doorbell_to_completion(tb, cxt, descriptors, csts[-1])

    def copy(size):
        return lambda i, cst: copy_descriptor(dst.addr + i * size, src.addr + i * size, size,
                                              cst=cst)

    def fill(size):
        return lambda i, cst: fill_descriptor(dst.addr + i * size, bytes(range(32)), size,
                                              cst=cst)

    rows = []
    for kind, make, bound, ceiling in (
            ("COPY", copy, COPY_BOUND[straddle["rq"]], "copy"),
            ("FILL", fill, dma_bound("write", straddle["rq"]), "write")):
        for size in SIZES:
            count = max(1, min(256, STREAM_BYTES // size))
            clocks = await stream(make(size), size, count)
            rows.append((kind, size, count, round(clocks, 1), size * count / clocks, bound,
                         link_ceiling(ceiling, size)))
    _write_csv(folder, "throughput.csv", ("kind", "bytes", "descriptors", "clocks",
                                          "bytes_per_clock", "bound", "link_ceiling"),
               rows + dma_rows)

    rows = []
    for kind, make in (("copy 64 B", copy(64)), ("fill 64 B", fill(64))):
        for depth in DEPTHS:
            clocks = await stream(make, 64, depth)
            rows.append((kind, depth, round(clocks, 1), depth / clocks, SMALL_BOUND[kind]))
    _write_csv(folder, "queue_depth.csv", ("kind", "depth", "clocks",
                                           "descriptors_per_clock", "bound"), rows)

    a = await card.create_address_space(1)
    b = await card.create_address_space(2)
    keys = dict(src_akey=cxt.akey_for(a), dst_akey=cxt.akey_for(b))
    rows = []
    for i, size in enumerate(SPACE_SIZES):
        cst = Completion(card)
        bus = await doorbell_to_completion(
            tb, cxt, [copy_descriptor(dst.addr, src.addr, size, cst=cst)], cst)
        va = 0x7000_0000_0000 + i * (1 << 30)
        vsrc, vdst = a.map_buffer(va, size), b.map_buffer(va, size)
        vsrc.write(0, src.read(0, size))
        await card.invalidate_tlb()
        cst = Completion(card)
        pv1 = await doorbell_to_completion(
            tb, cxt, [copy_descriptor(vdst.vaddr, vsrc.vaddr, size, cst=cst, **keys)], cst)
        assert vdst.read(0, size) == vsrc.read(0, size)
        rows.append((size, size / bus, size / pv1, bus / pv1))
    _write_csv(folder, "spaces.csv", ("bytes", "pv0_bytes_per_clock", "pv1_bytes_per_clock",
                                      "pv1_over_pv0"), rows)

    cst = Completion(card)
    clocks = await doorbell_to_completion(
        tb, cxt, [copy_descriptor(dst.addr, src.addr, 64, cst=cst)], cst)
    _write_csv(folder, "latency.csv", ("what", "clocks"),
               [("lone 64-byte COPY, doorbell write to CST write", round(clocks, 1))])


def _read_csv(folder, name):
    with open(Path(folder) / name, newline="") as f:
        return list(csv.DictReader(f))


def plot(folder):
    """Draw the report's PNGs from its CSV files; return their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    out = []
    rows = _read_csv(folder, "throughput.csv")
    fig, ax = plt.subplots(figsize=(8, 5))
    for kind, what in (("COPY", "descriptors"), ("FILL", "descriptors"),
                       ("DMA write", "one transfer"), ("DMA read", "one transfer")):
        mine = [r for r in rows if r["kind"] == kind]
        sizes = [int(r["bytes"]) for r in mine]
        line, = ax.plot(sizes, [float(r["bytes_per_clock"]) for r in mine], "o-",
                        label=f"{kind} ({what})")
        ax.plot(sizes, [float(r["bound"]) for r in mine], "--", color=line.get_color(),
                linewidth=0.8, label=f"{kind} bound (simulation)")
        ax.plot(sizes, [float(r["link_ceiling"]) for r in mine], ":", color=line.get_color(),
                linewidth=0.8, label=f"{kind} Gen3 x16 ceiling")
    ax.set(xscale="log", xlabel="transfer size (bytes)", ylabel="bytes per clock (250 MHz)",
           title="Throughput against transfer size (MPS 256, MRRS 512; descriptors: "
                 "at least 64 KiB in all)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    out.append(folder / "throughput.png")
    fig.savefig(out[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    rows = _read_csv(folder, "queue_depth.csv")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind in ("copy 64 B", "fill 64 B"):
        mine = [r for r in rows if r["kind"] == kind]
        depths = [int(r["depth"]) for r in mine]
        line, = ax.plot(depths, [float(r["descriptors_per_clock"]) for r in mine], "o-",
                        label=kind)
        ax.axhline(float(mine[0]["bound"]), linestyle="--", color=line.get_color(),
                   linewidth=0.8, label=f"{kind} bound")
    ax.set(xscale="log", xlabel="descriptors submitted at once",
           ylabel="descriptors per clock", title="Small operations against queue depth")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out.append(folder / "queue_depth.png")
    fig.savefig(out[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)

    rows = _read_csv(folder, "spaces.csv")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot([int(r["bytes"]) for r in rows], [float(r["pv1_over_pv0"]) for r in rows], "o-")
    ax.axhline(1.0, linestyle="--", color="grey", linewidth=0.8)
    ax.set(xscale="log", xlabel="copy size (bytes)", ylabel="pv = 1 / pv = 0 throughput",
           ylim=(0, 1.1), title="Copies between address spaces (4 KiB pages, cold TLB)")
    ax.grid(True, which="both", alpha=0.3)
    out.append(folder / "spaces.png")
    fig.savefig(out[-1], dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def main(argv=None):
    from hdl.config import VARIANTS
    from sim.benchmark import run_quietly

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="default", choices=sorted(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("build") / "bench-report")
    args = parser.parse_args(argv)
    folder = args.out.resolve() / args.variant
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.csv"):
        stale.unlink()
    run_quietly("sim.bench_report", args.variant, SDXI_REPORT_DIR=str(folder))
    if not (folder / "latency.csv").exists():
        print("[bench report] the simulation did not finish; see above", file=sys.stderr)
        return 1
    for path in plot(folder):
        print(f"[bench report] {path}")
    for name in ("throughput.csv", "queue_depth.csv", "spaces.csv", "latency.csv"):
        print(f"[bench report] {folder / name}")
    latency = _read_csv(folder, "latency.csv")[0]
    print(f"[bench report] {latency['what']}: {latency['clocks']} clocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
