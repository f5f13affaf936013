"""Function benchmark: a copy into another function's memory through an RKey against the same
copy within one function, and two functions copying at once.

    python -m sim.bench_functions [--variant default] [--mib N]

Times run, in 250 MHz user clocks, from the doorbell write to the completion write at the
root complex (MPS 256, MRRS 512, extended tags), as ``bench_copy``:

* a copy of ``--mib`` MiB (default 1) from function 0's memory into function 1's, through an
  RKey that grants function 1's bus addresses, warm (the same copy ran before), against the
  same copy into function 0's own memory; target 0.97;
* functions 0 and 1 each queue 32 copies of 64 KiB in one context and ring their doorbells
  together: until the first of them has finished its last copy, each must have moved within
  10 % of half the bytes both moved (a share of 0.45 to 0.55).
"""

import argparse
import os
import sys

import cocotb
from cocotb.triggers import Combine
from cocotb.utils import get_sim_time

CROSS_TARGET = 0.97
SHARE_TARGET = (0.45, 0.55)
SHARED_COPIES, SHARED_BYTES = 32, 64 << 10


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def bench(dut):
    from sim.benchmark import CLOCK_NS, doorbell_to_completion
    from sim.tb import SdxiTb
    from sw.context import Completion
    from sw.descriptors import copy_descriptor

    tb = SdxiTb(dut)
    cards = [await tb.card(function=f) for f in range(2)]
    await tb.set_device_control(mps=256, mrrs=512, ext_tag=True)
    for card in cards:
        await card.start()
    cxts = [await card.create_context() for card in cards]
    home, away = cards
    size = int(os.environ.get("BENCH_MIB", "1")) << 20

    # ---- a copy across functions against one within a function ---------------------------
    key = await away.grant_rkey(home.caps.sfunc)
    src = home.transport.alloc_dma(size)
    src.write(0, bytes(range(256)) * (size // 256))
    local_dst = home.transport.alloc_dma(size)
    remote_dst = away.transport.alloc_dma(size)
    remote_akey = cxts[0].akey_for(key)

    async def timed(dst, n, **akeys):
        cst = Completion(home)
        return await doorbell_to_completion(
            tb, cxts[0], [copy_descriptor(dst, src.addr, n, cst=cst, **akeys)], cst)

    local = []
    remote = []
    for _ in range(2):                          # the second of each is warm
        local.append(await timed(local_dst.addr, size))
        remote.append(await timed(remote_dst.addr, size, dst_akey=remote_akey))
    assert remote_dst.read(0, size) == src.read(0, size)

    # ---- two functions at once ------------------------------------------------------------
    finished = {}                               # CST address -> time of its completion
    tb.rc.on_write = lambda tlp: finished.setdefault(tlp.address, get_sim_time("ns"))
    batches = []
    for card, cxt in zip(cards, cxts):
        t = card.transport
        s, d = t.alloc_dma(SHARED_BYTES), t.alloc_dma(SHARED_BYTES)
        csts = [Completion(card) for _ in range(SHARED_COPIES)]
        first = cxt.reserve(SHARED_COPIES)
        for i, cst in enumerate(csts):
            cxt.place(first + i, copy_descriptor(d.addr, s.addr, SHARED_BYTES, cst=cst))
        batches.append((cxt, first, csts))
    start = get_sim_time("ns")
    await Combine(*[cocotb.start_soon(cxt.ring_doorbell()) for cxt, _, _ in batches])
    await Combine(*[cocotb.start_soon(cxt.wait_read_index(first + SHARED_COPIES,
                                                          timeout_ns=100_000_000))
                    for cxt, first, _ in batches])
    tb.rc.on_write = None
    ends = [max(finished[cst.addr] for cst in csts) for _, _, csts in batches]
    cutoff = min(ends)
    moved = [SHARED_BYTES * sum(finished[cst.addr] <= cutoff for cst in csts)
             for _, _, csts in batches]
    shares = [b / sum(moved) for b in moved]
    total_rate = sum(moved) / ((cutoff - start) / CLOCK_NS)

    meta = tb.metadata
    cross = size / remote[-1]
    within = size / local[-1]
    ratio = cross / within
    fair = all(SHARE_TARGET[0] <= s <= SHARE_TARGET[1] for s in shares)
    lines = [f"SDXI function benchmark, {meta['data_width']}-bit, {meta['sdxi']['functions']} "
             f"functions, MPS 256, MRRS 512; doorbell to completion at the root complex",
             f"{size >> 20} MiB copy, warm: within function 0 {within:.2f} B/clk, into "
             f"function 1 through an RKey {cross:.2f} B/clk: ratio {ratio:.3f} (target "
             f"{CROSS_TARGET}) {'met' if ratio >= CROSS_TARGET else 'NOT MET'}",
             f"two functions at once, {SHARED_COPIES} x {SHARED_BYTES >> 10} KiB each: until "
             f"the first finished ({(cutoff - start) / CLOCK_NS:.0f} clk, "
             f"{total_rate:.2f} B/clk together) function 0 moved {shares[0]:.3f} and "
             f"function 1 {shares[1]:.3f} of the bytes (target {SHARE_TARGET[0]}-"
             f"{SHARE_TARGET[1]}) "
             f"{'met' if fair else 'NOT MET'}"]
    print("\n".join(lines), flush=True)


def main(argv=None):
    from sim.benchmark import run_quietly

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="default")
    parser.add_argument("--mib", type=int, default=1, help="size of the copy across functions")
    args = parser.parse_args(argv)
    if args.mib < 1:
        parser.error("--mib must be at least 1")
    run_quietly("sim.bench_functions", args.variant, BENCH_MIB=str(args.mib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
