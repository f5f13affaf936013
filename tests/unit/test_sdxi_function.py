"""SdxiFunction: one function's registers, state machine, doorbells and MSI-X, driven through
its BARs as a host would, with the engine's side answered by the bench (random delays)."""

import random

from hdl.config import EngineConfig
from hdl.sdxi.sdxi_function import SdxiFunction
from sdxi_defs.regmap import GSR, GSV, MSIX_TABLE_OFFSET, REGISTERS_BY_NAME, doorbell_offset
from sdxi_defs.structures import sfunc_of

from .pcie_helpers import bus_read, bus_write, new_sim, run, wait_for

REG = REGISTERS_BY_NAME
CFG = EngineConfig(functions=2)


def qword(name):
    return REG[name].offset >> 3


def test_a_function_as_its_host_sees_it():
    dut = SdxiFunction(config=CFG, function=1)
    rng = random.Random(5)

    async def tb(ctx):
        bar0, bar2 = dut.bar0, dut.bar2
        # Identity: CAP0 names this function's sfunc.
        cap0 = await bus_read(ctx, bar0, qword("CAP0"))
        assert REG["CAP0"]["sfunc"].get(cap0) == sfunc_of(1)
        assert await bus_read(ctx, bar0, qword("CAP1")) == CFG.cap1

        # Activation: the request is the engine's to answer, after a while.
        await bus_write(ctx, bar0, qword("CTL0"), REG["CTL0"].encode(fn_gsr=GSR.ACTIVE))
        await wait_for(ctx, lambda: ctx.get(dut.activate), max_cycles=10, what="activate")
        assert REG["STS0"]["fn_gsv"].get(await bus_read(ctx, bar0, qword("STS0"))) == GSV.INIT
        for _ in range(rng.randrange(1, 20)):
            await ctx.tick()
        ctx.set(dut.activate_done, 1)
        ctx.set(dut.activate_ok, 1)
        await ctx.tick()
        ctx.set(dut.activate_done, 0)
        assert REG["STS0"]["fn_gsv"].get(await bus_read(ctx, bar0, qword("STS0"))) == GSV.ACTIVE

        # A doorbell: context 5's pending bit until the engine takes it.
        await bus_write(ctx, bar2, doorbell_offset(5, CFG.db_stride) >> 3, 7)
        await wait_for(ctx, lambda: ctx.get(dut.pending) == 1 << 5, max_cycles=10,
                       what="pending")
        ctx.set(dut.take_cxt, 5)
        ctx.set(dut.take_valid, 1)
        await ctx.tick()
        ctx.set(dut.take_valid, 0)
        await ctx.tick()
        assert ctx.get(dut.pending) == 0

        # The error log's updates reach ERR_STS and ERR_WRT.
        ctx.set(dut.err_sts_set, REG["ERR_STS"].encode(sts=1))
        ctx.set(dut.err_wrt_load, 1)
        ctx.set(dut.err_wrt_value, 9)
        await ctx.tick()
        ctx.set(dut.err_sts_set, 0)
        ctx.set(dut.err_wrt_load, 0)
        assert await bus_read(ctx, bar0, qword("ERR_STS")) == REG["ERR_STS"].encode(sts=1)
        assert await bus_read(ctx, bar0, qword("ERR_WRT")) == 9

        # MSI-X: vector 3 unmasked; raised, it waits for this function's turn on the port.
        entry = (MSIX_TABLE_OFFSET >> 3) + 2 * 3
        await bus_write(ctx, bar0, entry, 0xFEE0_0000)
        await bus_write(ctx, bar0, entry + 1, 0x33)                  # data, unmasked
        ctx.set(dut.msix_enable, 1)
        ctx.set(dut.bus_master, 1)
        ctx.set(dut.may_send, 0)
        ctx.set(dut.raise_vectors, 1 << 3)
        await ctx.tick()
        ctx.set(dut.raise_vectors, 0)
        for _ in range(rng.randrange(5, 30)):
            assert not ctx.get(dut.msix_int), "sent out of turn"
            await ctx.tick()
        ctx.set(dut.may_send, 1)
        await wait_for(ctx, lambda: ctx.get(dut.msix_int), max_cycles=10, what="MSI-X")
        assert (ctx.get(dut.msix_address), ctx.get(dut.msix_data)) == (0xFEE0_0000, 0x33)
        assert ctx.get(dut.msix_busy)
        await ctx.tick()
        ctx.set(dut.msix_sent, 1)
        await ctx.tick()
        ctx.set(dut.msix_sent, 0)
        await ctx.tick()
        assert not ctx.get(dut.msix_busy)

        # A write to nothing is counted as dropped.
        await bus_write(ctx, bar0, (REG["IMPL_BUILD_ID"].offset >> 3) - 1, 1)
        assert await bus_read(ctx, bar0, qword("IMPL_DROPPED_WRITES")) == 1

    sim = new_sim(dut)
    sim.add_testbench(tb)
    run(sim, "sdxi_function")
