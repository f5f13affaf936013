"""RegisterSlice: every payload once and in order, one per clock, nothing combinational."""

import random

from amaranth.lib import data

from hdl.common.register_slice import RegisterSlice

from .pcie_helpers import new_sim, run, transfer


PAYLOAD = data.StructLayout({"value": 16})


def _run(name, *, stall_in, stall_out, count, seed=1):
    """Send ``count`` payloads; return those seen and the clock of each transfer out."""
    dut = RegisterSlice(PAYLOAD)
    rng = random.Random(seed)
    seen, clocks = [], []

    async def source(ctx):
        for k in range(count):
            if rng.random() < stall_in:
                ctx.set(dut.i.valid, 0)
                await ctx.tick().repeat(rng.randrange(1, 4))
            ctx.set(dut.i.payload.value, k)
            await transfer(ctx, dut.i, max_cycles=100, what="the slice to take a payload")
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        clock = 0
        ctx.set(dut.o.ready, rng.random() >= stall_out)
        async for _, _, valid, ready, p, busy in ctx.tick().sample(
                dut.o.valid, dut.o.ready, dut.o.payload, dut.busy):
            clock += 1
            assert busy == valid
            if valid and ready:
                seen.append(p.value)
                clocks.append(clock)
            if len(seen) == count or clock > count * 12:
                return
            ctx.set(dut.o.ready, rng.random() >= stall_out)

    sim = new_sim(dut)
    sim.add_testbench(source, background=True)
    sim.add_testbench(sink)
    run(sim, name)
    return seen, clocks


def test_every_payload_once_and_in_order_under_random_stalls():
    for seed, (stall_in, stall_out) in enumerate([(0.3, 0.3), (0.0, 0.5), (0.5, 0.0)]):
        seen, _ = _run(f"register_slice_{seed}", stall_in=stall_in, stall_out=stall_out,
                       count=300, seed=seed)
        assert seen == list(range(300)), (stall_in, stall_out)


def test_one_payload_per_clock_when_nothing_stalls():
    seen, clocks = _run("register_slice_rate", stall_in=0, stall_out=0, count=100)
    assert seen == list(range(100))
    assert clocks == list(range(clocks[0], clocks[0] + 100))
    assert clocks[0] <= 3


def test_ready_and_valid_come_from_registers():
    dut = RegisterSlice(PAYLOAD)

    async def bench(ctx):
        # Fill the output and the skid register, then change each input without a clock.
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        for value in (1, 2):
            ctx.set(dut.i.payload.value, value)
            await ctx.tick()
        assert (ctx.get(dut.o.valid), ctx.get(dut.o.payload.value), ctx.get(dut.i.ready)) == \
            (1, 1, 0)
        ctx.set(dut.o.ready, 1)
        assert ctx.get(dut.i.ready) == 0          # ready does not pass through
        await ctx.tick()
        assert ctx.get(dut.o.payload.value) == 2 and ctx.get(dut.i.ready) == 1
        ctx.set(dut.i.valid, 0)
        await ctx.tick()
        assert ctx.get(dut.o.valid) == 0
        ctx.set(dut.i.valid, 1)
        assert ctx.get(dut.o.valid) == 0          # nor does valid

    sim = new_sim(dut)
    sim.add_testbench(bench)
    run(sim, "register_slice_registers")
