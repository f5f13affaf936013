"""SDXI operation benchmark: descriptors through the context engine, doorbell to completion.

    python -m sim.bench_copy [--variant default|nostraddle|w256]

Brings the function up with the host driver (Max_Payload_Size 256, Max_Read_Request_Size 512,
extended tags) and times, in 250 MHz user clocks, from the doorbell write leaving the host to
the last completion write (CST signal) arriving at the root complex:

* one 1 MiB COPY descriptor, in bytes per clock against the AXI-side copy bound of
  shared/perf-ceilings.md: per 512 bytes copied, two 256-byte write TLPs and one read request
  on RQ, 11 beats without straddle (46.5 B/clk) and 9.5 with it (53.9 B/clk); the physical
  link's copy ceiling (49.8 B/clk), which the model does not charge, is printed beside it;
* 64-byte copies and 64-byte fills, 256 of each, a CST on the last of every 8, in descriptors
  per clock against the small-operation bounds;
* 256 NOPs: the decoder's own clocks per descriptor, from the engine's IMPL_PERF_DECODE
  counters, and the end-to-end time per NOP (which adds ring fetch and retire).
"""

import argparse
import sys

import cocotb

COPY_BOUND = {False: 512 / 11, True: 512 / 9.5}   # B/clk, AXI side: RQ beats per 512 B copied
LINK_COPY_CEILING = 49.8
SMALL_BOUND = {"copy 64 B": 0.37, "fill 64 B": 0.60}
TARGETS = {"copy 1 MiB": None, "copy 64 B": 0.25, "fill 64 B": 0.40, "decode": 2.0}


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def bench(dut):
    from sdxi_defs import descriptors as dsc
    from sdxi_defs.descriptors import DmaBaseOp, OpGroup, VendorOp
    from sdxi_defs.regmap import REGISTERS_BY_NAME as REG
    from sim.benchmark import doorbell_to_completion, started_card
    from sw.context import Completion
    from sw.descriptors import encode

    tb, card, cxt = await started_card(dut)
    t = card.transport
    straddle = tb.metadata["pcie"]["straddle"]["rq"]

    async def timed(descriptors, last_cst):
        return await doorbell_to_completion(tb, cxt, descriptors, last_cst)

    results = []
    size = 1 << 20
    src, dst = t.alloc_dma(size), t.alloc_dma(size)
    src.write(0, bytes(range(256)) * (size // 256))
    cst = Completion(card)
    clocks = await timed([encode(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY, cst=cst,
                                 size=size - 1, addr0=src.addr, addr1=dst.addr)], cst)
    assert dst.read(0, size) == src.read(0, size)
    bound = COPY_BOUND[straddle]
    target = 45.0 if straddle else 0.90 * bound
    results.append(("copy 1 MiB", size / clocks, "B/clk", bound, target))
    link_note = (f"copy 1 MiB: {size / clocks / LINK_COPY_CEILING:.2f} of the physical Gen3 x16 "
                 f"copy ceiling ({LINK_COPY_CEILING} B/clk)")

    for name, make in (
            ("copy 64 B", lambda i, c: encode(
                dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY, cst=c, size=63,
                addr0=src.addr + 64 * i, addr1=dst.addr + 64 * i)),
            ("fill 64 B", lambda i, c: encode(
                dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, cst=c, size=63, psz=0,
                addr0=dst.addr + 64 * i, pattern=0x0123456789ABCDEF))):
        n = 256
        csts = [Completion(card) for _ in range(n // 8)]
        descs = [make(i, csts[i // 8] if i % 8 == 7 else None) for i in range(n)]
        clocks = await timed(descs, csts[-1])
        results.append((name, n / clocks, "desc/clk", SMALL_BOUND[name], TARGETS[name]))

    n = 256
    last = Completion(card)
    descs = [encode(dsc.DSC_DMAB_NOP, OpGroup.DMABASE, DmaBaseOp.NOP,
                    cst=last if i == n - 1 else None) for i in range(n)]
    perf = REG["IMPL_PERF_DECODE"]
    before = await card.read_reg("IMPL_PERF_DECODE")
    clocks = await timed(descs, last)
    after = await card.read_reg("IMPL_PERF_DECODE")
    decoded = perf["descriptors"].get(after) - perf["descriptors"].get(before)
    cycles = perf["cycles"].get(after) - perf["cycles"].get(before)
    assert decoded == n, f"{decoded} descriptors decoded, {n} submitted"
    results.append(("decode (NOPs)", cycles / decoded, "clk/desc", None, TARGETS["decode"]))
    results.append(("NOP end to end", clocks / n, "clk/desc", None, None))

    meta = tb.metadata
    lines = [f"SDXI operation benchmark, {meta['data_width']}-bit, RQ straddle {straddle}, "
             f"MPS 256, MRRS 512; doorbell to last completion at the root complex",
             f"{'':16}{'figure':>10} {'unit':<9}{'bound':>8}{'target':>8}  met"]
    for name, value, unit, bound, target in results:
        if target is None:
            verdict, target_text = "", "-"
        else:
            met = value <= target if unit == "clk/desc" else value >= target
            verdict, target_text = ("yes" if met else "NO"), f"{target:.2f}"
        lines.append(f"{name:16}{value:10.3f} {unit:<9}"
                     f"{(f'{bound:.2f}' if bound else '-'):>8}{target_text:>8}  {verdict}")
    lines.append(link_note)
    print("\n".join(lines), flush=True)


def main(argv=None):
    from hdl.config import VARIANTS
    from sim.benchmark import run_quietly

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="default", choices=sorted(VARIANTS))
    args = parser.parse_args(argv)
    run_quietly("sim.bench_copy", args.variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
