"""Address-space benchmark: copies between two pv = 1 address spaces against the same copies
with bus addresses (pv = 0).

    python -m sim.bench_spaces [--variant default|nostraddle|w256] [--cold-kib N]

Both spaces are mapped with 4 KiB pages, virtually sequential and physically scattered (the
driver's ``map_buffer``). Times run, in 250 MHz user clocks, from the doorbell write to the
completion write at the root complex (MPS 256, MRRS 512, extended tags), as ``bench_copy``:

* a 256 KiB copy repeated with a warm TLB (its 64 + 64 pages fit the default 64 x 4 TLB),
  against the same copy with pv = 0; target 0.95;
* a 1 MiB copy from a cold TLB (invalidated first), against pv = 0; target 0.90
  (``--cold-kib`` changes the size, for a quicker look).

Printed beside them: TLB hits, walks (misses) and clocks per walk, from IMPL_PERF_TLB and
IMPL_PERF_WALK.
"""

import argparse
import os
import sys

import cocotb

TARGETS = {"warm 256 KiB": 0.95, "cold 1 MiB": 0.90}


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def bench(dut):
    from sim.benchmark import doorbell_to_completion, started_card
    from sw.context import Completion
    from sw.descriptors import copy_descriptor

    tb, card, cxt = await started_card(dut)
    t = card.transport
    a = await card.create_address_space(1)
    b = await card.create_address_space(2)

    async def timed(dst, src, n, **akeys):
        cst = Completion(card)
        return await doorbell_to_completion(tb, cxt, [copy_descriptor(dst, src, n, cst=cst,
                                                                      **akeys)], cst)

    spaces = dict(src_akey=cxt.akey_for(a), dst_akey=cxt.akey_for(b))
    rows = []
    cold_kib = int(os.environ.get("BENCH_COLD_KIB", "1024"))
    cold = "cold 1 MiB" if cold_kib == 1024 else f"cold {cold_kib} KiB"
    TARGETS[cold] = TARGETS["cold 1 MiB"]
    for name, size, warm in (("warm 256 KiB", 256 << 10, True), (cold, cold_kib << 10, False)):
        bus_src, bus_dst = t.alloc_dma(size), t.alloc_dma(size)
        bus_src.write(0, bytes(range(256)) * (size // 256))
        base = await timed(bus_dst.addr, bus_src.addr, size)
        va = 0x7000_0000_0000 + len(rows) * (1 << 30)
        src = a.map_buffer(va, size)
        dst = b.map_buffer(va, size)
        src.write(0, bytes(range(255, -1, -1)) * (size // 256))
        if warm:
            await timed(dst.vaddr, src.vaddr, size, **spaces)
        else:
            await card.invalidate_tlb()
        hits0, misses0, cycles0 = await card.tlb_counters()
        clocks = await timed(dst.vaddr, src.vaddr, size, **spaces)
        hits, misses, cycles = await card.tlb_counters()
        assert dst.read(0, size) == src.read(0, size)
        hits, misses, cycles = hits - hits0, misses - misses0, cycles - cycles0
        rows.append((name, size / clocks, size / base, hits, misses,
                     cycles / misses if misses else 0.0))

    meta = tb.metadata
    lines = [f"SDXI address-space benchmark, {meta['data_width']}-bit, 4 KiB pages, MPS 256, "
             f"MRRS 512; doorbell to completion at the root complex",
             f"{'':14}{'pv=1 B/clk':>11}{'pv=0 B/clk':>11}{'ratio':>7}{'target':>7}  met"
             f"{'hits':>7}{'walks':>7}{'clk/walk':>9}"]
    for name, pv1, pv0, hits, walks, per_walk in rows:
        ratio = pv1 / pv0
        lines.append(f"{name:14}{pv1:11.2f}{pv0:11.2f}{ratio:7.3f}{TARGETS[name]:7.2f}  "
                     f"{'yes' if ratio >= TARGETS[name] else 'NO ':3}{hits:7}{walks:7}"
                     f"{per_walk:9.1f}")
    print("\n".join(lines), flush=True)


def main(argv=None):
    from hdl.config import VARIANTS
    from sim.benchmark import run_quietly

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="default", choices=sorted(VARIANTS))
    parser.add_argument("--cold-kib", type=int, default=1024, help="size of the cold copy")
    args = parser.parse_args(argv)
    if args.cold_kib < 4 or args.cold_kib % 4:
        parser.error("--cold-kib must be a positive multiple of 4")
    run_quietly("sim.bench_spaces", args.variant, BENCH_COLD_KIB=str(args.cold_kib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
