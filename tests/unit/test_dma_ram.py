"""DmaRam's second ports: the units' writes by registered priority, each written once when
taken and never while the main port writes; the host window's writes as they come; qword
writers' first qword repeated into the lanes they enable; and the second read port, which
serves whoever owns it."""

import random

from hdl.pcie.dma_ram import DmaRam

from .pcie_helpers import new_sim, run


WIDTH = 128
ROWS = 16
WRITERS = 3
ROW_MASK = (1 << (WIDTH // 8)) - 1
QWORD_WRITER = 1


def masked(old, new, en):
    """``old`` with the bytes ``en`` enables taken from ``new``."""
    mask = sum(0xFF << 8 * j for j in range(WIDTH // 8) if en >> j & 1)
    return (old & ~mask) | (new & mask)


def repeated(qword):
    return sum(qword << 64 * k for k in range(WIDTH // 64))


async def _read(ctx, port, row):
    """Row ``row`` through ``port`` (``side_rd`` or ``host_rd``), one clock later."""
    ctx.set(port.en, 1)
    ctx.set(port.row, row)
    await ctx.tick()
    ctx.set(port.en, 0)
    return ctx.get(port.lo)


def test_unit_writes_are_taken_once_in_priority_and_land():
    """Writers ask at random, hold their row until taken, and the main port writes at random:
    every write lands exactly once, none while the main port writes, and when several ask,
    the lowest-numbered asking writer is taken. The qword writer's lanes get its first qword
    (whatever the rest of its data), only where its byte enables say."""
    dut = DmaRam(data_width=WIDTH, rows=ROWS, side_writers=WRITERS,
                 qword_writers=(QWORD_WRITER,))
    rng = random.Random(7)
    model = [0] * ROWS
    taken_log = []

    async def bench(ctx):
        pending = [None] * WRITERS      # (row, data, en) a writer holds
        total = 0
        for clock in range(3000):
            for i in range(WRITERS):
                if pending[i] is None and rng.random() < 0.3:
                    # Writers use their own rows, so the model does not depend on the order.
                    row = i * (ROWS // WRITERS) + rng.randrange(ROWS // WRITERS)
                    en = ROW_MASK if i != QWORD_WRITER else rng.randrange(1, ROW_MASK + 1)
                    pending[i] = (row, rng.getrandbits(WIDTH), en)
                port = dut.side_wr[i]
                if pending[i] is None:
                    ctx.set(port.en, 0)
                else:
                    ctx.set(port.row, pending[i][0])
                    ctx.set(port.data, pending[i][1])
                    ctx.set(port.en, pending[i][2])
            main = rng.random() < 0.3
            ctx.set(dut.wr.en, ROW_MASK if main else 0)
            ctx.set(dut.wr.row, ROWS - 1)
            ctx.set(dut.wr.data, 0)
            taken = ctx.get(dut.side_wr_taken)
            assert bin(taken).count("1") <= 1, f"clock {clock}: two writers taken"
            if main:
                assert taken == 0, f"clock {clock}: a side write while the main port writes"
            for i in range(WRITERS):
                if taken >> i & 1:
                    assert pending[i] is not None
                    row, value, en = pending[i]
                    if i == QWORD_WRITER:
                        value = repeated(value & (1 << 64) - 1)
                    model[row] = masked(model[row], value, en)
                    taken_log.append((i, [j for j in range(WRITERS) if pending[j]]))
                    pending[i] = None
                    total += 1
            if main:
                model[ROWS - 1] = 0
            await ctx.tick()
        for i in range(WRITERS):
            ctx.set(dut.side_wr[i].en, 0)
        ctx.set(dut.wr.en, 0)
        assert total > 500
        for row in range(ROWS):
            assert await _read(ctx, dut.side_rd, row) == model[row], f"row {row}"

    sim = new_sim(dut)
    sim.add_testbench(bench)
    run(sim, "dma_ram_side_writes")
    # A writer taken while a higher-priority one also held a row had asked first: the grant
    # is one clock old. Over the run, the first writer is never passed over twice in a row.
    assert any(len(asking) > 1 for _, asking in taken_log)
    for (i, asking), (j, _) in zip(taken_log, taken_log[1:]):
        if 0 in asking and i != 0:
            assert j == 0, "the first writer waited behind two others"


def test_host_owns_the_ports_and_units_wait():
    """While ``host_owns`` is set, host writes land as they come, units are not taken, and
    the second read port reads for the host; then the units' waiting writes land."""
    dut = DmaRam(data_width=WIDTH, rows=ROWS, side_writers=WRITERS,
                 qword_writers=(QWORD_WRITER,))
    rng = random.Random(3)

    async def bench(ctx):
        ctx.set(dut.host_owns, 1)
        await ctx.tick()
        ctx.set(dut.side_wr[1].row, 2)
        ctx.set(dut.side_wr[1].data, 0xAAAA)
        ctx.set(dut.side_wr[1].en, ROW_MASK)
        values = {}
        for row in range(ROWS):
            # The window writes a qword at a time: each row's qwords one after another.
            values[row] = 0
            for k in range(WIDTH // 64):
                qword = rng.getrandbits(64)
                values[row] |= qword << 64 * k
                ctx.set(dut.host_wr.row, row)
                ctx.set(dut.host_wr.data, repeated(qword))
                ctx.set(dut.host_wr.en, 0xFF << 8 * k)
                assert ctx.get(dut.side_wr_taken) == 0
                await ctx.tick()
        ctx.set(dut.host_wr.en, 0)
        for row in range(ROWS):
            assert await _read(ctx, dut.host_rd, row) == values[row], f"host row {row}"
        ctx.set(dut.host_owns, 0)
        for clock in range(4):
            if ctx.get(dut.side_wr_taken) == 0b010:
                break
            await ctx.tick()
        else:
            raise AssertionError("the unit's write was not taken once the host let go")
        await ctx.tick()
        ctx.set(dut.side_wr[1].en, 0)
        assert await _read(ctx, dut.side_rd, 2) == repeated(0xAAAA)

    sim = new_sim(dut)
    sim.add_testbench(bench)
    run(sim, "dma_ram_host_window")


def test_taken_does_not_depend_on_other_writers_in_the_same_clock():
    """The choice is a register: a higher-priority writer that starts asking does not take the
    port from the one granted in the same clock."""
    dut = DmaRam(data_width=WIDTH, rows=ROWS, side_writers=WRITERS)

    async def bench(ctx):
        ctx.set(dut.side_wr[2].en, ROW_MASK)
        ctx.set(dut.side_wr[2].row, 5)
        await ctx.tick()
        assert ctx.get(dut.side_wr_taken) == 0b100
        ctx.set(dut.side_wr[0].en, ROW_MASK)          # asks now: served from the next clock
        assert ctx.get(dut.side_wr_taken) == 0b100
        await ctx.tick()
        ctx.set(dut.side_wr[2].en, 0)
        assert ctx.get(dut.side_wr_taken) == 0b001

    sim = new_sim(dut)
    sim.add_testbench(bench)
    run(sim, "dma_ram_registered_grant")
