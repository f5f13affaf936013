"""DmaWriteEngine with DmaRam: host writes rebuilt from the TLP stream, any alignment."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hdl.pcie.dma_ram import DmaRam
from hdl.pcie.dma_write import DmaWriteEngine
from sdxi_defs.errors import WriteError

from .pcie_helpers import new_sim, run, wait_for

RAM_ROWS = 64
MEM_WRITE = 0b0001


class Dut(wiring.Component):
    """The engine wired to a RAM whose write port the testbench drives."""

    def __init__(self, data_width):
        self.engine = DmaWriteEngine(data_width=data_width, ram_rows=RAM_ROWS)
        self.ram = DmaRam(data_width=data_width, rows=RAM_ROWS)
        super().__init__({"fill": In(self.ram.wr.signature.flip())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = self.engine
        m.submodules.ram = self.ram
        wiring.connect(m, self.engine.ram, self.ram.rd)
        wiring.connect(m, wiring.flipped(self.fill), self.ram.wr)
        return m


def ram_byte(i):
    return (i * 7 + 3) & 0xFF


class Bench:
    def __init__(self, data_width, seed=1, stall=0.0):
        self.w = data_width
        self.row_bytes = data_width // 8
        self.dut = Dut(data_width)
        self.released = []        # ids, in the order their RAM was released
        self.rng = random.Random(seed)
        self.stall = stall
        self.writes = []          # (address, bytes) of every TLP
        self.tlp_beats = []       # (cycle, first, last) of every accepted beat
        self.statuses = []
        self.cycle = 0
        self.reports = []         # sequence numbers of sent TLPs, reported in order
        self.hold_reports = False
        self.timeout = 20_000     # confirmation time-out, clocks

    async def fill_ram(self, ctx):
        wr = self.dut.fill
        for row in range(RAM_ROWS):
            value = 0
            for b in range(self.row_bytes):
                value |= ram_byte(row * self.row_bytes + b) << (8 * b)
            ctx.set(wr.row, row)
            ctx.set(wr.data, value)
            ctx.set(wr.en, (1 << (self.w // 8)) - 1)
            await ctx.tick()
        ctx.set(wr.en, 0)

    async def sink(self, ctx):
        tlp = self.dut.engine.tlp
        current = None
        eng = self.dut.engine
        ctx.set(eng.timeout, self.timeout)
        while True:
            ready = self.rng.random() >= self.stall
            ctx.set(tlp.ready, ready)
            taken = ready and ctx.get(tlp.valid)     # the transfer happens at the next edge
            beat = ctx.get(tlp.payload)
            # The hard block reports sent TLPs in order, a few clocks later, one per clock.
            report = (self.reports and not self.hold_reports and self.rng.random() < 0.5)
            ctx.set(eng.seq_num_vld0, int(bool(report)))
            if report:
                ctx.set(eng.seq_num0, self.reports.pop(0))
            await ctx.tick()
            self.cycle += 1
            if not taken:
                continue
            self.tlp_beats.append((self.cycle, beat.first, beat.last))
            if beat.first:
                d = beat.desc
                assert d.req_type == MEM_WRITE
                current = dict(addr=d.address << 2, dwords=d.dword_count, fbe=beat.first_be,
                               lbe=beat.last_be, payload=[])
            keep = beat.keep
            for lane in range(self.w // 32):
                if keep >> lane & 1:
                    current["payload"].append((beat.data >> (32 * lane)) & 0xFFFF_FFFF)
            if beat.first:
                current["seq"] = beat.seq_num
            if beat.last:
                assert len(current["payload"]) == current["dwords"], "payload length"
                assert current["seq"] < 32, "write TLPs carry sequence numbers below 32"
                self.writes.append(decode_write(current))
                self.reports.append(current["seq"])

    async def request(self, ctx, addr, length, ram_addr, ident):
        req = self.dut.engine.req
        ctx.set(req.payload.addr, addr)
        ctx.set(req.payload.length, length)
        ctx.set(req.payload.ram_addr, ram_addr)
        ctx.set(req.payload.id, ident)
        ctx.set(req.valid, 1)
        await wait_for(ctx, lambda: ctx.get(req.ready), max_cycles=10_000, what="request accepted")
        await ctx.tick()
        ctx.set(req.valid, 0)

    async def collect(self, ctx):
        """Records every status and release notice: neither stream is ever held back."""
        eng = self.dut.engine
        async for _, _, s_valid, s, r_valid, r in ctx.tick().sample(
                eng.status.valid, eng.status.payload, eng.released.valid, eng.released.payload):
            if s_valid:
                self.statuses.append((s.id, s.error))
            if r_valid:
                self.released.append(r.id)

    async def wait_status(self, ctx, ident):
        """The status of request ``ident``: the next to come, as statuses come in order."""
        await wait_for(ctx, lambda: self.statuses, max_cycles=20_000, what="status")
        status = self.statuses.pop(0)
        assert status[0] == ident, f"status of {status[0]} before {ident}'s"
        assert ident in self.released, "a status before the request's RAM was released"
        return status

    def simulate(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_testbench(self.sink, background=True)
        sim.add_testbench(self.collect, background=True)
        sim.add_testbench(tb)
        run(sim, name)


def decode_write(t):
    """Bytes written by one TLP, from its payload and byte enables."""
    out = bytearray()
    n = t["dwords"]
    for i, dw in enumerate(t["payload"]):
        be = t["fbe"] if i == 0 else (t["lbe"] if i == n - 1 else 0xF)
        for b in range(4):
            if be >> b & 1:
                out.append((dw >> (8 * b)) & 0xFF)
    first = (t["fbe"] & -t["fbe"]).bit_length() - 1
    return t["addr"] + first, bytes(out)


def expected_bytes(ram_addr, length, ram_bytes):
    return bytes(ram_byte((ram_addr + k) % ram_bytes) for k in range(length))


def check_writes(b, addr, length, ram_addr, mps):
    ram_bytes = RAM_ROWS * b.row_bytes
    got = bytearray()
    pos = addr
    for a, data in b.writes:
        assert a == pos, f"TLP at {a:#x}, expected {pos:#x}"
        # Each TLP within one Max_Payload_Size block: never crosses an MPS (or 4 KiB) boundary.
        assert a // mps == (a + len(data) - 1) // mps, f"TLP {a:#x}+{len(data)} crosses MPS"
        got += data
        pos += len(data)
    assert bytes(got) == expected_bytes(ram_addr, length, ram_bytes)


@pytest.mark.parametrize("data_width", [512, 256])
@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_alignments(data_width, stall):
    cases = []
    rng = random.Random(data_width + int(stall * 10))
    for length in (1, 2, 3, 4, 5, 63, 64, 65, 127, 255, 256, 257, 700, 1500):
        cases.append((0x10000 + rng.randrange(64), length, rng.randrange(RAM_ROWS * 8)))
    mps_code = 1  # 256 bytes

    for addr, length, ram_addr in cases:
        b = Bench(data_width, stall=stall, seed=addr ^ length)

        async def tb(ctx):
            ctx.set(b.dut.engine.max_payload, mps_code)
            ctx.set(b.dut.engine.bus_master, 1)
            await b.fill_ram(ctx)
            await b.request(ctx, addr, length, ram_addr, ident=0x5A)
            assert await b.wait_status(ctx, 0x5A) == (0x5A, WriteError.OK)
            for _ in range(20):
                await ctx.tick()
            check_writes(b, addr, length, ram_addr, 128 << mps_code)

        b.simulate(tb, f"dma_write_{data_width}_{addr:x}_{length}")


@pytest.mark.parametrize("mps_code", [0, 1, 2, 3])
def test_max_payload_sizes(mps_code):
    b = Bench(512)
    addr, length, ram_addr = 0x2_0000_0F00 + 12, 3000, 100

    async def tb(ctx):
        ctx.set(b.dut.engine.max_payload, mps_code)
        ctx.set(b.dut.engine.bus_master, 1)
        await b.fill_ram(ctx)
        await b.request(ctx, addr, length, ram_addr, ident=1)
        assert await b.wait_status(ctx, 1) == (1, WriteError.OK)
        check_writes(b, addr, length, ram_addr, 128 << mps_code)

    b.simulate(tb, f"dma_write_mps{mps_code}")


def test_back_to_back_tlps_have_no_gap():
    b = Bench(512)
    length = 4096 * 2       # 32 TLPs of 256 bytes, 4 beats each

    async def tb(ctx):
        ctx.set(b.dut.engine.max_payload, 1)
        ctx.set(b.dut.engine.bus_master, 1)
        await b.fill_ram(ctx)
        await b.request(ctx, 0x40000, length, 0, ident=2)
        await b.wait_status(ctx, 2)
        check_writes(b, 0x40000, length, 0, 256)

    b.simulate(tb, "dma_write_throughput")
    cycles = [c for c, _, _ in b.tlp_beats]
    assert len(cycles) == length // 64
    assert cycles[-1] - cycles[0] == len(cycles) - 1, "a beat every clock, no gaps between TLPs"


def test_status_waits_for_the_hard_blocks_report():
    b = Bench(512)

    async def tb(ctx):
        ctx.set(b.dut.engine.max_payload, 1)
        ctx.set(b.dut.engine.bus_master, 1)
        await b.fill_ram(ctx)
        b.hold_reports = True
        await b.request(ctx, 0x5000, 1024, 0, ident=4)
        for _ in range(100):
            await ctx.tick()
            assert not b.statuses, "status before the last TLP was reported sent"
        assert len(b.writes) == 4
        b.hold_reports = False
        assert await b.wait_status(ctx, 4) == (4, WriteError.OK)
        assert not b.reports, "status only after every report"

    b.simulate(tb, "dma_write_confirm")


def test_lost_reports_end_in_a_timeout_and_the_engine_goes_on():
    """A hard block that drops sent TLPs without reporting them (as the model does when bus
    mastering is cleared): the waiting requests end with TIMEOUT after ``timeout`` clocks
    without a report, a late report of a lost TLP is ignored, and later requests are confirmed
    by their own reports."""
    b = Bench(512, stall=0.3)
    b.timeout = 300

    async def tb(ctx):
        eng = b.dut.engine
        ctx.set(eng.max_payload, 0)
        ctx.set(eng.bus_master, 1)
        await b.fill_ram(ctx)
        b.hold_reports = True
        await b.request(ctx, 0x1000, 512, 0, ident=1)
        await b.request(ctx, 0x9000, 200, 64, ident=2)
        await wait_for(ctx, lambda: len(b.writes) == 6, max_cycles=2_000, what="TLPs sent")
        sent = b.cycle
        assert not ctx.get(eng.idle)
        lost = b.reports[:]
        b.reports.clear()                # dropped: never reported
        assert await b.wait_status(ctx, 1) == (1, WriteError.TIMEOUT)
        # The time-out runs from the first request waiting for its report.
        assert sent + b.timeout - 100 < b.cycle < sent + b.timeout + 50, (sent, b.cycle)
        assert await b.wait_status(ctx, 2) == (2, WriteError.TIMEOUT)
        assert ctx.get(eng.idle), "nothing left in the engine"
        # A late report of a lost TLP, with nothing outstanding: ignored.
        b.reports.append(lost[-1])
        b.hold_reports = False
        await ctx.tick().repeat(20)
        assert not b.reports
        # The next request waits for its own report, then completes.
        b.hold_reports = True
        await b.request(ctx, 0x4000, 64, 0, ident=3)
        for _ in range(b.timeout // 2):
            await ctx.tick()
            assert not b.statuses, "confirmed by a stale report"
        b.hold_reports = False
        assert await b.wait_status(ctx, 3) == (3, WriteError.OK)

    b.simulate(tb, "dma_write_lost_reports")


def test_requests_follow_each_other_and_bus_master_off():
    """Requests are written in the order they come, their TLPs without a gap between them;
    each is released, then confirmed, in order."""
    b = Bench(512)
    cases = [(0x1000, 1024, 0), (0x8000 + 3, 1000, 512 + 7), (0xA000, 256, 2048)]

    async def tb(ctx):
        ctx.set(b.dut.engine.max_payload, 0)
        ctx.set(b.dut.engine.bus_master, 1)
        await b.fill_ram(ctx)
        eng = b.dut.engine
        b.hold_reports = True
        for i, (addr, length, ram) in enumerate(cases):
            await b.request(ctx, addr, length, ram, ident=0x10 + i)
        await wait_for(ctx, lambda: len(b.released) == len(cases), max_cycles=2_000,
                       what="released")
        assert b.released == [0x10 + i for i in range(len(cases))]
        assert not b.statuses, "no status before the reports"
        b.hold_reports = False
        for i in range(len(cases)):
            assert await b.wait_status(ctx, 0x10 + i) == (0x10 + i, WriteError.OK)
        pos = 0
        for addr, length, ram in cases:
            got = bytearray()
            while len(got) < length:
                a, data = b.writes[pos]
                assert a == addr + len(got)
                got += data
                pos += 1
            assert bytes(got) == expected_bytes(ram, length, RAM_ROWS * b.row_bytes)
        starts = [c for c, first, _ in b.tlp_beats if first]
        ends = [c for c, _, last in b.tlp_beats if last]
        assert all(s == e + 1 for s, e in zip(starts[1:], ends)), "a gap between TLPs"
        # Bus mastering off: the request ends at once with its error and sends nothing.
        ctx.set(eng.bus_master, 0)
        sent = len(b.writes)
        await b.request(ctx, 0x3000, 64, 0, ident=9)
        assert await b.wait_status(ctx, 9) == (9, WriteError.BUS_MASTER_OFF)
        assert len(b.writes) == sent
        await ctx.tick().repeat(3)
        assert ctx.get(eng.idle)

    b.simulate(tb, "dma_write_in_order")


def test_one_tlp_requests_go_out_one_per_clock():
    """A request is taken in the clock the one before it leaves the register, so requests of
    one TLP each (a stream of small writes) follow each other without a gap."""
    b = Bench(512)
    count = 6

    async def tb(ctx):
        ctx.set(b.dut.engine.max_payload, 1)
        ctx.set(b.dut.engine.bus_master, 1)
        await b.fill_ram(ctx)
        for i in range(count):
            await b.request(ctx, 0x6000 + 0x100 * i, 64, 64 * i, ident=i)
        for i in range(count):
            assert await b.wait_status(ctx, i) == (i, WriteError.OK)

    b.simulate(tb, "dma_write_small")
    starts = [c for c, first, _ in b.tlp_beats if first]
    assert len(starts) == count
    assert starts[-1] - starts[0] == count - 1, f"a TLP every clock: {starts}"
