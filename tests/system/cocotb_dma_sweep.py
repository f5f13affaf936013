"""DMA transfers over every dimension at once: a seeded pairwise sample in the default suite,
the full cross product with ``./sdxi test --sweep`` (tests named ``sweep_*``)."""

import itertools
import random

import cocotb

from .dma_helpers import ROW, check_read, check_write, setup

DIMENSIONS = {
    "length": (1, 7, 64, 300, 4097),
    "src_off": (0, 1, 3, 63),
    "dst_off": (0, 2, 31),
    "mps": (128, 256, 512),
    "mrrs": (128, 256, 512, 1024, 2048, 4096),
}


def pairwise(dimensions, seed):
    """A seeded set of cases covering every pair of values of every two dimensions."""
    names = list(dimensions)
    uncovered = {(a, va, b, vb) for a, b in itertools.combinations(names, 2)
                 for va in dimensions[a] for vb in dimensions[b]}
    rng = random.Random(seed)
    cases = []
    while uncovered:
        best, gain = None, -1
        for _ in range(60):
            case = {n: rng.choice(dimensions[n]) for n in names}
            g = sum((a, case[a], b, case[b]) in uncovered
                    for a, b in itertools.combinations(names, 2))
            if g > gain:
                best, gain = case, g
        cases.append(best)
        uncovered -= {(a, best[a], b, best[b]) for a, b in itertools.combinations(names, 2)}
    return cases


async def run_cases(dut, cases):
    tb, t, x = await setup(dut)
    row = ROW[tb.metadata["data_width"]]
    # Grouped by link setting, so Device Control changes as few times as possible.
    cases = sorted(cases, key=lambda c: (c["mps"], c["mrrs"]))
    setting = None
    for i, c in enumerate(cases):
        if (c["mps"], c["mrrs"]) != setting:
            setting = (c["mps"], c["mrrs"])
            await tb.set_device_control(mps=c["mps"], mrrs=c["mrrs"])
        await check_write(x, t, c["length"], c["dst_off"], c["src_off"], seed=i)
        await check_read(x, t, row, c["length"], c["src_off"], seed=1000 + i)


@cocotb.test(timeout_time=20000, timeout_unit="us")
async def pairwise_sample(dut):
    await run_cases(dut, pairwise(DIMENSIONS, seed=2026))


@cocotb.test(timeout_time=2_000_000, timeout_unit="us")
async def sweep_cross_product(dut):
    names = list(DIMENSIONS)
    await run_cases(dut, [dict(zip(names, values))
                          for values in itertools.product(*DIMENSIONS.values())])
