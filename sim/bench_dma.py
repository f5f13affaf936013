"""DMA engine benchmark: read-into-engine and write-from-engine throughput at line rate.

    python -m sim.bench_dma [--variant default|nostraddle|w256] [--mib N]

Moves N MiB (default 1) each way at Max_Payload_Size 256 / Max_Read_Request_Size 512 with
extended tags, through the exerciser, and prints bytes per user clock beside the bound that
applies in simulation (the smaller of the AXI-side bound and the model's link bound, from
shared/perf-ceilings.md) and the physical Gen3 x16 link ceiling. Also measures how many clocks
a lone 64-byte read takes from its acceptance by the read engine to its beat on RQ.
Clocks are counted by the engine (GO to status), 250 MHz user clock.
"""

import argparse
import os
import sys

import cocotb
from cocotb.triggers import RisingEdge

# (interface, straddle) -> bytes per clock; from shared/perf-ceilings.md, MPS 256 / MRRS 512.
AXI_BOUND = {("write", False): 51.2, ("write", True): 56.9,
             ("read", False): 51.2, ("read", True): 60.2}
MODEL_LINK_BOUND = {"write": 57.6, "read": 58.4}
LINK_CEILING = {"write": 52.0, "read": 52.7}


def bound(direction, straddled):
    return min(AXI_BOUND[(direction, straddled)], MODEL_LINK_BOUND[direction])


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def bench(dut):
    from sim.tb import SdxiTb
    from sw.exerciser import DmaExerciser

    tb = SdxiTb(dut)
    await tb.enumerate()
    t = tb.transport()
    x = DmaExerciser(t, poll_ns=500, timeout_ns=50_000_000)
    meta = tb.metadata
    await tb.set_device_control(mps=256, mrrs=512, ext_tag=True)
    size = int(os.environ.get("SDXI_BENCH_BYTES", 1 << 20))
    buf = t.alloc_dma(size)

    straddle = meta["pcie"]["straddle"]
    results = []
    write = await x.write(0, size, buf.addr)
    assert write.error == 0
    results.append(("write from engine", "write", straddle["rq"], size / write.cycles))
    read = await x.read(buf.addr, size, 0)
    assert read.error == 0
    results.append(("read into engine", "read", straddle["rc"] > 0, size / read.cycles))

    # Latency of a lone read: accepted by the read engine -> its beat on RQ.
    accepted = issued = None
    cycle = 0

    async def watch():
        nonlocal accepted, issued, cycle
        while issued is None:
            await RisingEdge(dut.clk)
            cycle += 1
            rd = dut.dma_read
            if accepted is None and rd.req__valid.value and rd.req__ready.value:
                accepted = cycle
            if accepted is not None and dut.m_axis_rq_tvalid.value and dut.m_axis_rq_tready.value:
                issued = cycle
    watcher = cocotb.start_soon(watch())
    assert (await x.read(buf.addr, 64, 0)).error == 0
    await watcher

    lines = [f"DMA benchmark, {meta['data_width']}-bit, straddle RQ {straddle['rq']} / "
             f"RC {straddle['rc']}, MPS 256, MRRS 512, {size} bytes each way",
             f"{'':20}{'B/clk':>8}{'bound':>8}{'ratio':>8}{'link ceiling':>14}"]
    for name, direction, straddled, bpc in results:
        b = bound(direction, straddled)
        lines.append(f"{name:20}{bpc:8.1f}{b:8.1f}{bpc / b:8.2f}{LINK_CEILING[direction]:14.1f}")
    lines.append(f"lone 64-byte read: on RQ {issued - accepted} clocks after the engine "
                 f"accepted it")
    print("\n".join(lines), flush=True)


def main(argv=None):
    from hdl.config import VARIANTS
    from sim.benchmark import run_quietly

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="default", choices=sorted(VARIANTS))
    parser.add_argument("--mib", type=float, default=1.0)
    args = parser.parse_args(argv)
    run_quietly("sim.bench_dma", args.variant, SDXI_BENCH_BYTES=str(int(args.mib * (1 << 20))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
