"""ContextTable: entries kept per context, flags updated from masks, round-robin turns."""

import random

from hdl.sdxi.context_table import ContextTable

from .pcie_helpers import new_sim, run

N = 16


def test_flags_turns_and_entries():
    dut = ContextTable(contexts=N)

    async def pulse(ctx, *signals):
        for s in signals:
            ctx.set(s, 1)
        await ctx.tick()
        for s in signals:
            ctx.set(s, 0)

    async def tb(ctx):
        up = dut.update
        # Start contexts 2, 5 and 9, each with an entry of its own.
        for c in (2, 5, 9):
            ctx.set(dut.cur, c)
            ctx.set(dut.save_entry.ring, 0x1000 * c)
            ctx.set(dut.save_entry.read_index, c + 100)
            await pulse(ctx, up.started, up.known, dut.save)
        for c in (2, 5, 9):
            ctx.set(dut.cur, c)
            await ctx.tick()
            assert ctx.get(dut.entry.ring) == 0x1000 * c and ctx.get(dut.entry.read_index) == c + 100
            assert ctx.get(dut.cur_running)
        assert ctx.get(dut.fn_running[0])

        # All three have work: turns go round, each after the last served.
        turns = []
        for _ in range(7):
            assert ctx.get(dut.next_valid)
            turns.append(ctx.get(dut.next))
            await pulse(ctx, dut.served)
        assert turns == [2, 5, 9, 2, 5, 9, 2]

        # 5 runs out of work, 9 fails in the datapath in the same clock as 2 gets more: the
        # next turns are 2's only, until a doorbell for 5.
        ctx.set(dut.cur, 5)
        await pulse(ctx, up.idle)
        ctx.set(dut.cur, 2)
        ctx.set(dut.failed_cxt, 9)
        await pulse(ctx, dut.failed, up.more)
        ctx.set(dut.query, 9)
        assert not ctx.get(dut.query_running) and ctx.get(dut.query_known)
        assert ctx.get(dut.next) == 2 and not ctx.get(dut.others_waiting)
        ctx.set(dut.pending, 1 << 5)
        assert ctx.get(dut.others_waiting), "5 has a doorbell"
        ctx.set(dut.pending, 0)

        # Stale marks one context at a time; a refresh clears one; activation forgets everything.
        for c in (3, 5, 9):
            ctx.set(dut.cur, c)
            await pulse(ctx, up.stale)
        for c, expected in ((2, 0), (3, 1), (4, 0), (5, 1), (9, 1), (10, 0)):
            ctx.set(dut.cur, c)
            assert ctx.get(dut.cur_stale) == expected, c
        ctx.set(dut.cur, 5)
        await pulse(ctx, up.fresh)
        assert not ctx.get(dut.cur_stale)
        await pulse(ctx, up.forget_all)
        assert not ctx.get(dut.fn_running[0]) and not ctx.get(dut.next_valid)
        ctx.set(dut.query, 2)
        assert not ctx.get(dut.query_known)

    sim = new_sim(dut)
    sim.add_testbench(tb)
    run(sim, "context_table")


def test_round_robin_is_fair_under_random_doorbells():
    dut = ContextTable(contexts=N)
    rng = random.Random(4)
    served = []

    async def tb(ctx):
        for c in range(N):
            ctx.set(dut.cur, c)
            ctx.set(dut.update.started, 1)
            await ctx.tick()
        ctx.set(dut.update.started, 0)
        for c in range(N):                     # no work left: only doorbells count
            ctx.set(dut.cur, c)
            ctx.set(dut.update.idle, 1)
            await ctx.tick()
        ctx.set(dut.update.idle, 0)
        for _ in range(300):
            pending = rng.getrandbits(N) | 1 << rng.randrange(N)
            ctx.set(dut.pending, pending)
            nxt = ctx.get(dut.next)
            assert pending >> nxt & 1
            # The first pending after the last one served.
            last = served[-1] if served else 0          # none served yet: as if 0 was
            expected = next((last + k) % N for k in range(1, N + 1) if pending >> ((last + k) % N) & 1)
            assert nxt == expected
            served.append(nxt)
            ctx.set(dut.served, 1)
            await ctx.tick()
            ctx.set(dut.served, 0)

    sim = new_sim(dut)
    sim.add_testbench(tb)
    run(sim, "context_table_rr")
