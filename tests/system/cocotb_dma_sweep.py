"""DMA transfers over every dimension at once: a seeded pairwise sample in the default suite,
the full cross product with ``./sdxi test --sweep`` (tests named ``sweep_*``)."""

import cocotb

from .dma_helpers import ROW, check_read, check_write, setup
from .sampling import cross_product, pairwise

DIMENSIONS = {
    "length": (1, 7, 64, 300, 4097),
    "src_off": (0, 1, 3, 63),
    "dst_off": (0, 2, 31),
    "mps": (128, 256, 512),
    "mrrs": (128, 256, 512, 1024, 2048, 4096),
}


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
    await run_cases(dut, cross_product(DIMENSIONS))
