"""Copies and fills through a client context over size x alignment, every destination between
guard bytes. Offsets are page offsets: 64-byte aligned, odd, mid-row, and 4090 so that even
short operations cross a 4 KiB page. The default suite runs a seeded pairwise sample of each
operation; ``./sdxi test --sweep`` runs the cross product (tests named ``sweep_*``).

All cases go into the ring as one stream without fences, so operations of every shape overlap
in the datapath, then every destination and its guards are checked.
"""

import cocotb

from sdxi_defs import descriptors as dsc
from sw.descriptors import fill_descriptor

from .cocotb_contexts import check_guarded, copy, data, guarded, started
from .sampling import cross_product, pairwise

VARIANTS = ("default", "w256")

SHORT = (1, 2, 63, 64, 65, 255, 257, 4097)           # the pairwise sample's lengths
LENGTHS = SHORT + (256, 4095, 4096, 9000)
PAGE_OFFSETS = (64, 67, 97, 4090)          # guarded() keeps 64 guard bytes before offset 0


def copies(lengths):
    return {"length": lengths, "src": PAGE_OFFSETS, "dst": PAGE_OFFSETS}


def fills(lengths):
    return {"pattern": dsc.FILL_PATTERN_SIZES, "length": lengths, "dst": PAGE_OFFSETS}


async def run_cases(dut, copies, fills):
    tb, card, t = await started(dut)
    cxt = await card.create_context(ring_entries=1024)
    src = t.alloc_dma(4096 + max(LENGTHS))
    src.write(0, data(src.size, 77))

    descriptors, checks = [], []
    for c in copies:
        buf, addr = guarded(t, c["length"], c["dst"] - 64)
        descriptors.append(copy(src.addr + c["src"], addr, c["length"]))
        checks.append((c, buf, src.read(c["src"], c["length"])))
    for i, c in enumerate(fills):
        pattern = data(c["pattern"], i)
        buf, addr = guarded(t, c["length"], c["dst"] - 64)
        descriptors.append(fill_descriptor(addr, pattern, c["length"]))
        checks.append((c, buf, (pattern * (c["length"] // len(pattern) + 1))[:c["length"]]))
    dut._log.info("%d copies and %d fills in one stream", len(copies), len(fills))

    first = await cxt.submit(descriptors)
    total = sum(c["length"] for c in copies + fills)
    await cxt.wait_read_index(first + len(descriptors), card.timing.completion_timeout(total))
    for c, buf, want in checks:
        try:
            check_guarded(buf, c["dst"] - 64, want)
        except AssertionError as e:
            raise AssertionError(f"{'copy' if 'src' in c else 'fill'} {c}: {e}") from None
    await card.stop()


@cocotb.test(timeout_time=2000, timeout_unit="us")
async def copies_and_fills_pairwise(dut):
    await run_cases(dut, pairwise(copies(SHORT), seed=4), pairwise(fills(SHORT), seed=5))


@cocotb.test(timeout_time=20000, timeout_unit="us")
async def sweep_copies_and_fills(dut):
    await run_cases(dut, cross_product(copies(LENGTHS)), cross_product(fills(LENGTHS)))
