import cocotb
from sim.tb import SdxiTb


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def smoke(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    await card.start()
    print(await card.describe())
