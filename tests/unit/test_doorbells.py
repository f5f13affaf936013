"""DoorbellArray: BAR2 doorbells, one monotonic 64-bit write-index hint per context.

Doorbell of context c at BAR2 + c * (4 KiB << db_stride) (sdxi-spec.md 1.9). A Python model
of the docstring's rules (64-bit proposal, low/high 32-bit proposals, larger-only latch)
checks random sequences.
"""

import random

import pytest

from hdl.sdxi.doorbells import DoorbellArray

from .pcie_helpers import bus_read, bus_write, new_sim, run


MASK64 = 2**64 - 1
CONFIGS = [
    pytest.param(dict(contexts=128, db_stride=0, bar_log2_size=19), id="128cxt-4KiB"),
    # 4 contexts of 8 KiB in a 64 KiB BAR: the upper half is beyond the last context.
    pytest.param(dict(contexts=4, db_stride=1, bar_log2_size=16), id="4cxt-8KiB"),
]


class Bench:
    def __init__(self, contexts, db_stride, bar_log2_size):
        self.contexts = contexts
        self.page = 4096 << db_stride
        self.bar_qwords = 1 << (bar_log2_size - 3)
        self.dut = DoorbellArray(contexts=contexts, db_stride=db_stride,
                                 bar_log2_size=bar_log2_size)
        self.dropped = 0
        # the model
        self.value = [0] * contexts
        self.low = [0] * contexts
        self.pending = [0] * contexts

    def qword(self, cxt, byte_in_page=0):
        return (cxt * self.page + byte_in_page) >> 3

    async def count_dropped(self, ctx):
        async for _, _, pulse in ctx.tick().sample(self.dut.dropped):
            self.dropped += pulse

    def run(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_process(self.count_dropped)
        sim.add_testbench(tb)
        run(sim, name)

    async def write(self, ctx, cxt, data, be=0xFF, *, byte_in_page=0, take=None):
        """One bus write (and optionally a take in the same clock); updates the model."""
        during = ((self.dut.take_valid, 1), (self.dut.take_cxt, take)) if take is not None else ()
        await bus_write(ctx, self.dut.bus, self.qword(cxt, byte_in_page), data, be, during=during)
        # model
        if take is not None:
            self.pending[take] = 0
        if byte_in_page != 0 or be == 0:
            return
        lo, hi = be & 0xF, be >> 4
        if lo not in (0, 0xF) or hi not in (0, 0xF):
            return                                    # partial dword: dropped
        cur = self.value[cxt]
        proposal_lo = data & 0xFFFF_FFFF if lo else self.low[cxt]
        proposal_hi = data >> 32 if hi else cur >> 32
        if lo:
            self.low[cxt] = data & 0xFFFF_FFFF
        proposal = proposal_hi << 32 | proposal_lo
        if proposal > cur:
            self.value[cxt] = proposal
        self.pending[cxt] = 1                         # every accepted write rings

    async def take(self, ctx, cxt):
        ctx.set(self.dut.take_valid, 1)
        ctx.set(self.dut.take_cxt, cxt)
        await ctx.tick()
        ctx.set(self.dut.take_valid, 0)
        self.pending[cxt] = 0

    async def read(self, ctx, qword):
        return await bus_read(ctx, self.dut.bus, qword)

    def peek(self, ctx, cxt):
        ctx.set(self.dut.peek_cxt, cxt)
        return ctx.get(self.dut.peek_value)

    def check(self, ctx, what=""):
        want = sum(p << i for i, p in enumerate(self.pending))
        assert ctx.get(self.dut.pending) == want, f"pending {what}"
        for c in range(self.contexts):
            assert self.peek(ctx, c) == self.value[c], f"context {c} value {what}"


@pytest.mark.parametrize("cfg", CONFIGS)
def test_decode(cfg):
    b = Bench(**cfg)
    rng = random.Random(1)

    async def tb(ctx):
        doorbells = {b.qword(c) for c in range(b.contexts)}
        if b.bar_qwords <= 1 << 13:
            addresses = range(b.bar_qwords)
        else:
            addresses = sorted({q + d for q in doorbells for d in (-1, 0, 1, 2)}
                               | {rng.randrange(b.bar_qwords) for _ in range(3000)}
                               | {b.bar_qwords - 1})
        # Only qword 0 of each context's page is a doorbell.
        for q in addresses:
            if 0 <= q < b.bar_qwords:
                ctx.set(b.dut.bus.addr, q)
                assert ctx.get(b.dut.bus.w_hit) == (q in doorbells), f"w_hit at {8 * q:#x}"
        # A write lands in the context its address names, and nowhere else.
        for c in rng.sample(range(b.contexts), min(b.contexts, 8)):
            await b.write(ctx, c, 0x1000 + c)
            b.check(ctx, f"after ringing {c}")
        # Writes elsewhere in a page (even with full byte enables) change nothing.
        for off in (8, 0x10, b.page - 8, b.page // 2):
            await b.write(ctx, 1, MASK64, byte_in_page=off)
        b.check(ctx, "after writes inside the page")
        assert b.dropped == 0

    b.run(tb, "doorbells_decode")


@pytest.mark.parametrize("cfg", CONFIGS)
def test_64bit_writes_only_increase(cfg):
    b = Bench(**cfg)

    async def tb(ctx):
        # In order, out of order, duplicate and smaller writes: the latch is the maximum.
        for v in (5, 9, 7, 9, 0, 0x1_0000_0000, 0xFFFF_FFFF, 0x1_0000_0001, 3):
            await b.write(ctx, 2, v)
            b.check(ctx, f"after {v:#x}")
        assert b.value[2] == 0x1_0000_0001
        assert await b.read(ctx, b.qword(2)) == 0x1_0000_0001
        # The largest value is accepted.
        await b.write(ctx, 3, MASK64)
        await b.write(ctx, 3, MASK64 - 1)
        b.check(ctx)
        assert b.peek(ctx, 3) == MASK64

    b.run(tb, "doorbells_64")


@pytest.mark.parametrize("cfg", CONFIGS)
def test_32bit_pairs(cfg):
    b = Bench(**cfg)

    async def tb(ctx):
        # Current 0x0_FFFFFFF0; Linux's lo_hi pair for 0x1_00000010: low 0x10, then high 0x1.
        await b.write(ctx, 1, 0xFFFF_FFF0)
        await b.take(ctx, 1)
        await b.write(ctx, 1, 0x10, be=0x0F)
        assert b.peek(ctx, 1) == 0xFFFF_FFF0, "the low half alone would go backwards"
        assert ctx.get(b.dut.pending) >> 1 & 1 == 1, "any accepted write rings"
        await b.take(ctx, 1)
        await b.write(ctx, 1, 0x1 << 32, be=0xF0)
        assert b.peek(ctx, 1) == 0x1_0000_0010
        assert ctx.get(b.dut.pending) >> 1 & 1 == 1
        # A low-only write without carry moves the low half up at once; the high half that
        # follows (unchanged) is a no-op.
        await b.take(ctx, 1)
        await b.write(ctx, 1, 0x20, be=0x0F)
        assert b.peek(ctx, 1) == 0x1_0000_0020
        await b.write(ctx, 1, 0x1 << 32, be=0xF0)
        assert b.peek(ctx, 1) == 0x1_0000_0020
        # The high half goes with the last low half written to this context, not another's.
        await b.write(ctx, 0, 0x7777, be=0x0F)
        await b.write(ctx, 1, 0x2 << 32, be=0xF0)
        assert b.peek(ctx, 1) == 0x2_0000_0020
        b.check(ctx)
        # Read back both halves' effect through the bus.
        assert await b.read(ctx, b.qword(1)) == 0x2_0000_0020

    b.run(tb, "doorbells_32")


@pytest.mark.parametrize("cfg", CONFIGS)
def test_partial_dwords_dropped(cfg):
    b = Bench(**cfg)

    async def tb(ctx):
        await b.write(ctx, 0, 100)
        n = 0
        for be in (0x01, 0x03, 0x07, 0x0E, 0x10, 0x30, 0x70, 0x80, 0x1F, 0xF8, 0x7F, 0xFE):
            # Even with a value that would raise, a partial dword is dropped.
            await b.write(ctx, 0, MASK64, be=be)
            n += 1
            assert b.dropped == n, f"be {be:#04x} not reported dropped"
            assert b.peek(ctx, 0) == 100, f"be {be:#04x} changed the doorbell"
        # No byte enabled: nothing happens, not even a drop report.
        await b.write(ctx, 0, MASK64, be=0)
        await b.write(ctx, 0, MASK64, be=0x03, byte_in_page=8)   # not a doorbell address
        await ctx.tick()
        assert b.dropped == n
        b.check(ctx)

    b.run(tb, "doorbells_partial")


@pytest.mark.parametrize("cfg", CONFIGS)
def test_pending_and_take(cfg):
    b = Bench(**cfg)
    last = b.contexts - 1

    async def tb(ctx):
        await b.write(ctx, 0, 1)
        await b.write(ctx, last, 1)
        b.check(ctx, "after two raises")
        # A take clears only its context.
        await b.take(ctx, last)
        b.check(ctx, "after take")
        # A duplicate (not larger) still rings, and leaves the value alone.
        await b.write(ctx, last, 1)
        b.check(ctx, "after a duplicate")
        assert ctx.get(b.dut.pending) >> last & 1 == 1
        await b.take(ctx, last)
        # A raise in the same clock as a take of the same context keeps it pending.
        await b.take(ctx, 0)
        await b.write(ctx, 0, 2, take=0)
        assert ctx.get(b.dut.pending) & 1 == 1, "raise lost against a take"
        b.pending[0] = 1
        b.check(ctx, "after raise + take")
        # A raise of one context and a take of another in the same clock.
        await b.write(ctx, last, 5, take=0)
        b.check(ctx, "after raise of one, take of another")

    b.run(tb, "doorbells_pending")


@pytest.mark.parametrize("cfg", CONFIGS)
def test_reads(cfg):
    b = Bench(**cfg)

    async def tb(ctx):
        await b.write(ctx, 1, 0x1234_5678_9ABC_DEF0)
        # The doorbell reads its latched value one clock after r_stb; the page reads 0.
        assert await b.read(ctx, b.qword(1)) == 0x1234_5678_9ABC_DEF0
        for off in (8, 16, b.page - 8):
            assert await b.read(ctx, b.qword(1, off)) == 0
        assert await b.read(ctx, b.qword(0)) == 0
        if b.contexts * b.page < b.bar_qwords * 8:
            assert await b.read(ctx, b.qword(b.contexts)) == 0, "beyond the last context"

    b.run(tb, "doorbells_reads")


@pytest.mark.parametrize("cfg", CONFIGS)
def test_random_sequences_against_model(cfg):
    b = Bench(**cfg)
    rng = random.Random(42)
    cxts = sorted(rng.sample(range(b.contexts), 4))

    async def tb(ctx):
        for i in range(400):
            c = rng.choice(cxts)
            base = b.value[c]
            kind = rng.random()
            # Values near the current one, so raises, duplicates and carries all happen.
            v = max(0, base + rng.randrange(-3, 4) * rng.choice((1, 0x1000, 1 << 32)))
            v &= MASK64
            take = rng.choice(cxts) if rng.random() < 0.2 else None
            if kind < 0.4:
                await b.write(ctx, c, v, take=take)
            elif kind < 0.65:
                await b.write(ctx, c, v, be=0x0F, take=take)
            elif kind < 0.9:
                await b.write(ctx, c, v, be=0xF0, take=take)
            else:
                await b.write(ctx, c, v, be=rng.choice((0x01, 0x3C, 0xC0)), take=take)
            b.check(ctx, f"step {i}")

    b.run(tb, "doorbells_random")
