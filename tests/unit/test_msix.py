"""MsixController: MSI-X table and PBA in BAR0 (PCIe Base Spec 6.8.2) and the message sender
that drives the hard block's ``cfg_interrupt_msix_*`` handshake.

Table entry n at table_offset + 16 n: dword 0/1 message address, dword 2 message data,
dword 3 vector control (bit 0 = mask, set at reset). PBA: one pending bit per vector.
"""

import random

from hdl.pcie.msix import MsixController

from .pcie_helpers import bus_read, bus_write, new_sim, run, wait_for


VECTORS = 16
TABLE = 0x38000
PBA = 0x3C000
ADDR_WIDTH = 15


def entry_qword(v, which):
    """Qword address of vector v's message address (which=0) or data/control (which=1)."""
    return (TABLE + 16 * v + 8 * which) >> 3


def msg_address(v):
    return 0x0000_0001_FEE0_0000 + 0x40 * v


def msg_data(v):
    return 0x4000 + 0x11 * v


class HardBlock:
    """Model of the hard block's side: records each message (address, data) when msix_int is
    seen, answers sent (or a scripted fail) after 0-3 clocks unless held, and checks msix_int
    is a one-clock pulse and never comes while a message is outstanding."""

    def __init__(self, dut, rng):
        self.dut = dut
        self.rng = rng
        self.messages = []
        self.fail_next = 0      # answer fail to this many messages
        self.hold = False       # do not answer yet

    async def process(self, ctx):
        dut = self.dut
        outstanding = None      # clocks left before answering
        failing = False
        prev_int = 0
        async for _, _, intr, addr, data in ctx.tick().sample(
                dut.msix_int, dut.msix_address, dut.msix_data):
            ctx.set(dut.msix_sent, 0)
            ctx.set(dut.msix_fail, 0)
            assert not (intr and prev_int), "msix_int held for more than one clock"
            prev_int = intr
            if intr:
                assert outstanding is None, "msix_int while a message is outstanding"
                self.messages.append((addr, data))
                outstanding = self.rng.randrange(4)
                failing = self.fail_next > 0
                self.fail_next -= failing
            elif outstanding is not None and not self.hold:
                if outstanding == 0:
                    ctx.set(dut.msix_fail if failing else dut.msix_sent, 1)
                    outstanding = None
                else:
                    outstanding -= 1

    def vectors(self):
        out = []
        for addr, data in self.messages:
            v = (data - 0x4000) // 0x11
            assert (addr, data) == (msg_address(v), msg_data(v)), \
                f"message ({addr:#x}, {data:#x}) is not vector {v}'s entry"
            out.append(v)
        return out


class Bench:
    def __init__(self, seed=0):
        self.dut = MsixController(vectors=VECTORS, table_offset=TABLE, pba_offset=PBA,
                                  addr_width=ADDR_WIDTH)
        self.hb = HardBlock(self.dut, random.Random(seed))

    def run(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_process(self.hb.process)
        sim.add_testbench(tb)
        run(sim, name)

    async def write(self, ctx, qword, data, be=0xFF):
        await bus_write(ctx, self.dut.bus, qword, data, be)

    async def read(self, ctx, qword):
        return await bus_read(ctx, self.dut.bus, qword)

    async def program(self, ctx, v, masked):
        # As Linux does: one dword at a time, vector control last.
        await self.write(ctx, entry_qword(v, 0), msg_address(v) & 0xFFFF_FFFF, be=0x0F)
        await self.write(ctx, entry_qword(v, 0), msg_address(v) & ~0xFFFF_FFFF, be=0xF0)
        await self.write(ctx, entry_qword(v, 1), msg_data(v), be=0x0F)
        await self.write(ctx, entry_qword(v, 1), int(masked) << 32, be=0xF0)

    async def set_mask(self, ctx, v, masked):
        await self.write(ctx, entry_qword(v, 1), int(masked) << 32, be=0xF0)

    async def pba(self, ctx):
        return await self.read(ctx, PBA >> 3)

    async def raise_(self, ctx, mask):
        ctx.set(self.dut.raise_vectors, mask)
        await ctx.tick()
        ctx.set(self.dut.raise_vectors, 0)

    async def wait_messages(self, ctx, n):
        await wait_for(ctx, lambda: len(self.hb.messages) >= n, max_cycles=50 * n + 50,
                       what=f"{n} MSI-X messages")

    async def quiet(self, ctx, cycles=30):
        before = len(self.hb.messages)
        await ctx.tick().repeat(cycles)
        assert len(self.hb.messages) == before, "unexpected MSI-X message"


def test_table_reset_and_read_back():
    b = Bench()
    rng = random.Random(1)

    async def tb(ctx):
        # Every vector is masked at reset: vector control bit 0 (qword bit 32) reads 1.
        for v in range(VECTORS):
            assert (await b.read(ctx, entry_qword(v, 1))) >> 32 == 1, f"vector {v} mask at reset"
        # A message-data dword write (bits 63:32 of w_data zero but not enabled) keeps the mask;
        # a vector-control dword write keeps the data.
        await b.write(ctx, entry_qword(0, 1), 0x1234, be=0x0F)
        assert await b.read(ctx, entry_qword(0, 1)) == 1 << 32 | 0x1234
        await b.write(ctx, entry_qword(0, 1), 0xFFFF_FFFF, be=0xF0)
        assert await b.read(ctx, entry_qword(0, 1)) == 0x1234
        # Whole-qword writes of every entry, then dword writes, read back as written;
        # reserved vector-control bits read 0.
        entries = {}
        for v in range(VECTORS):
            addr, data = rng.getrandbits(64), rng.getrandbits(32)
            ctl = rng.getrandbits(32)
            await b.write(ctx, entry_qword(v, 0), addr)
            await b.write(ctx, entry_qword(v, 1), ctl << 32 | data)
            entries[v] = (addr, data, ctl & 1)
        for v, (addr, data, mask) in entries.items():
            assert await b.read(ctx, entry_qword(v, 0)) == addr, f"vector {v} address"
            assert await b.read(ctx, entry_qword(v, 1)) == mask << 32 | data, f"vector {v} data"
        for v in range(VECTORS):
            await b.program(ctx, v, masked=v % 2)
        for v in range(VECTORS):
            assert await b.read(ctx, entry_qword(v, 0)) == msg_address(v)
            assert await b.read(ctx, entry_qword(v, 1)) == (v % 2) << 32 | msg_data(v)
        # Single bytes: only the enabled byte changes.
        await b.write(ctx, entry_qword(3, 0), 0xAA << 16, be=0x04)
        assert await b.read(ctx, entry_qword(3, 0)) == (msg_address(3) & ~(0xFF << 16)) | 0xAA << 16
        # w_hit on the table only; the PBA (read-only) and the rest of BAR0 miss.
        for q, hit in ((entry_qword(0, 0), 1), (entry_qword(VECTORS - 1, 1), 1),
                       (entry_qword(VECTORS, 0), 0), ((TABLE >> 3) - 1, 0), (PBA >> 3, 0),
                       (0, 0), ((1 << ADDR_WIDTH) - 1, 0)):
            ctx.set(b.dut.bus.addr, q)
            assert ctx.get(b.dut.bus.w_hit) == hit, f"w_hit at {8 * q:#x}"
        # Reads outside the table and PBA return 0.
        assert await b.read(ctx, entry_qword(VECTORS, 0)) == 0
        assert await b.read(ctx, (PBA >> 3) + 1) == 0

    b.run(tb, "msix_table")


def test_pba_reflects_pending_and_is_read_only():
    b = Bench()

    async def tb(ctx):
        ctx.set(b.dut.msix_enable, 1)
        for v in range(VECTORS):
            await b.program(ctx, v, masked=True)
        assert await b.pba(ctx) == 0
        await b.raise_(ctx, 0b1010_0000_0000_0101)
        assert await b.pba(ctx) == 0b1010_0000_0000_0101
        # Writes to the PBA change nothing.
        await b.write(ctx, PBA >> 3, 0)
        await b.write(ctx, PBA >> 3, 2**64 - 1)
        assert await b.pba(ctx) == 0b1010_0000_0000_0101
        await b.quiet(ctx)

    b.run(tb, "msix_pba")


def test_raise_while_disabled_is_dropped():
    b = Bench()

    async def tb(ctx):
        for v in range(VECTORS):
            await b.program(ctx, v, masked=False)
        await b.raise_(ctx, 0b111)
        assert await b.pba(ctx) == 0
        # Enabling later sends nothing: the raises were dropped, not held.
        ctx.set(b.dut.msix_enable, 1)
        await b.quiet(ctx)
        assert await b.pba(ctx) == 0

    b.run(tb, "msix_disabled")


def test_masked_vector_sent_once_unmasked():
    b = Bench(seed=3)

    async def tb(ctx):
        ctx.set(b.dut.msix_enable, 1)
        for v in range(VECTORS):
            await b.program(ctx, v, masked=True)
        await b.raise_(ctx, 1 << 5)
        assert await b.pba(ctx) == 1 << 5
        await b.quiet(ctx)
        # Unmask: vector 5's address and data go out, one message, and its PBA bit clears.
        await b.set_mask(ctx, 5, False)
        await b.wait_messages(ctx, 1)
        assert b.hb.vectors() == [5]
        await b.quiet(ctx)
        assert await b.pba(ctx) == 0
        # An unmasked vector raised again is sent at once.
        await b.raise_(ctx, 1 << 5)
        await b.wait_messages(ctx, 2)
        assert b.hb.vectors() == [5, 5]

    b.run(tb, "msix_masked")


def test_function_mask_holds_all_then_lowest_first():
    b = Bench(seed=4)

    async def tb(ctx):
        ctx.set(b.dut.msix_enable, 1)
        ctx.set(b.dut.msix_function_mask, 1)
        for v in range(VECTORS):
            await b.program(ctx, v, masked=False)
        # Several raises, in two clocks, out of order: held by the function mask.
        await b.raise_(ctx, (1 << 9) | (1 << 2))
        await b.raise_(ctx, (1 << 15) | (1 << 0) | (1 << 7))
        await b.quiet(ctx)
        assert await b.pba(ctx) == (1 << 9) | (1 << 2) | (1 << 15) | (1 << 0) | (1 << 7)
        # Function mask cleared: all sent, lowest vector first, each exactly once.
        ctx.set(b.dut.msix_function_mask, 0)
        await b.wait_messages(ctx, 5)
        await b.quiet(ctx)
        assert b.hb.vectors() == [0, 2, 7, 9, 15]
        assert await b.pba(ctx) == 0

    b.run(tb, "msix_function_mask")


def test_fail_keeps_vector_pending_and_retries():
    b = Bench(seed=5)

    async def tb(ctx):
        ctx.set(b.dut.msix_enable, 1)
        for v in range(VECTORS):
            await b.program(ctx, v, masked=False)
        # Two failures of vector 4, then success.
        b.hb.fail_next = 2
        await b.raise_(ctx, 1 << 4)
        await b.wait_messages(ctx, 3)
        await b.quiet(ctx)
        assert b.hb.vectors() == [4, 4, 4]
        assert await b.pba(ctx) == 0
        # A failed vector masked before its retry waits in the PBA.
        b.hb.fail_next = 1
        b.hb.hold = True
        await b.raise_(ctx, 1 << 6)
        await b.wait_messages(ctx, 4)
        await b.set_mask(ctx, 6, True)
        b.hb.hold = False
        await b.quiet(ctx)
        assert await b.pba(ctx) == 1 << 6, "a failed message must stay pending"
        await b.set_mask(ctx, 6, False)
        await b.wait_messages(ctx, 5)
        assert b.hb.vectors() == [4, 4, 4, 6, 6]

    b.run(tb, "msix_fail")


def test_sender_waits_for_sent():
    b = Bench(seed=6)

    async def tb(ctx):
        ctx.set(b.dut.msix_enable, 1)
        for v in range(VECTORS):
            await b.program(ctx, v, masked=False)
        # No answer from the hard block: no second message, however long.
        b.hb.hold = True
        await b.raise_(ctx, 0b11)
        await b.wait_messages(ctx, 1)
        await b.quiet(ctx, 100)
        assert await b.pba(ctx) == 0b10
        # ``sent`` returns the sender to idle and the next vector goes out.
        b.hb.hold = False
        await b.wait_messages(ctx, 2)
        await b.quiet(ctx)
        assert b.hb.vectors() == [0, 1]

    b.run(tb, "msix_wait_sent")


def test_raise_of_vector_being_sent_is_not_lost():
    b = Bench(seed=7)

    async def tb(ctx):
        ctx.set(b.dut.msix_enable, 1)
        for v in range(VECTORS):
            await b.program(ctx, v, masked=False)
        b.hb.hold = True
        await b.raise_(ctx, 1 << 3)
        await b.wait_messages(ctx, 1)
        # Raised again while its first message is in flight: sent again afterwards.
        await b.raise_(ctx, 1 << 3)
        assert await b.pba(ctx) == 1 << 3
        b.hb.hold = False
        await b.wait_messages(ctx, 2)
        await b.quiet(ctx)
        assert b.hb.vectors() == [3, 3]

    b.run(tb, "msix_reraise")
