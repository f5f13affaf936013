"""DmaReadEngine with DmaRam: reads answered by a host model in any order, as chunks."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from hdl.pcie.dma_ram import DmaRam
from hdl.pcie.dma_read import DmaReadEngine
from sdxi_defs.errors import ReadError

from .pcie_helpers import new_sim, run, wait_for

RAM_ROWS = 64
MEM_READ = 0b0000
SC, UR, CA = 0b000, 0b001, 0b100
ERR_POISONED = 0b0001


def host_byte(a):
    return (a * 13 + (a >> 8) + 1) & 0xFF


class Dut(wiring.Component):
    def __init__(self, data_width, **kw):
        self.engine = DmaReadEngine(data_width=data_width, ram_rows=RAM_ROWS, **kw)
        self.ram = DmaRam(data_width=data_width, rows=RAM_ROWS)
        super().__init__({"peek": In(self.ram.rd.signature.flip())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = self.engine
        m.submodules.ram = self.ram
        wiring.connect(m, self.engine.ram, self.ram.wr)
        wiring.connect(m, wiring.flipped(self.peek), self.ram.rd)
        return m


class Host:
    """Answers captured read requests with completions cut into the engine's chunks."""

    def __init__(self, bench, *, shuffle=True, fault=None, hold=False):
        self.b = bench
        self.requests = []       # (tag, addr, nbytes) in issue order
        self.pending = []        # chunks waiting to be sent
        self.shuffle = shuffle
        self.fault = fault       # fault(tag, addr, nbytes) -> None | "drop" | status/poison
        self.hold = hold
        self.max_outstanding_tags = 0
        self.live = set()

    def completions(self, tag, addr, nbytes):
        """Split at 64-byte boundaries (the root complex's read completion boundary)."""
        out = []
        a, left = addr, nbytes
        while left:
            n = min(left, 64 - (a & 63))
            out.append((a, n, left))
            a += n
            left -= n
        return out

    def chunks(self, tag, a, n, byte_count, *, status=SC, error=0, last_cpl):
        w = self.b.row_bytes
        first_dw = a & ~3
        end = a + n
        dwords = (end - first_dw + 3) // 4 if status == SC else 0
        desc = dict(tag=tag, lower_address=a & 0xFFF, byte_count=byte_count,
                    completion_status=status, error_code=error, dword_count=dwords,
                    request_completed=int(last_cpl))
        if dwords == 0:
            return [dict(desc=desc, data=0, keep=0, window=(a & 0xFFF) // w, first=1, last=1)]
        chunks = []
        window = first_dw - first_dw % w
        while window < first_dw + 4 * dwords:
            data = keep = 0
            for lane in range(w // 4):
                da = window + 4 * lane
                if first_dw <= da < first_dw + 4 * dwords:
                    keep |= 1 << lane
                    for k in range(4):
                        data |= host_byte(da + k) << (32 * lane + 8 * k)
            chunks.append(dict(desc=desc, data=data, keep=keep, window=(window & 0xFFF) // w,
                               first=0, last=0))
            window += w
        chunks[0]["first"] = 1
        chunks[-1]["last"] = 1
        return chunks

    def on_request(self, tag, addr, nbytes):
        self.requests.append((tag, addr, nbytes))
        self.live.add(tag)
        self.max_outstanding_tags = max(self.max_outstanding_tags, len(self.live))
        fault = self.fault(tag, addr, nbytes) if self.fault else None
        if fault == "drop":
            return
        cpls = self.completions(tag, addr, nbytes)
        group = []
        for i, (a, n, bc) in enumerate(cpls):
            last_cpl = i == len(cpls) - 1
            if fault in (UR, CA):
                group += self.chunks(tag, a, n, bc, status=fault, error=0b0010, last_cpl=True)
                break
            if fault == "poison" and i == 0:
                group += self.chunks(tag, a, n, bc, error=ERR_POISONED, last_cpl=last_cpl)
                continue
            if fault == "outside" and i == 0:
                # A completion whose address lies outside its read.
                chunks = self.chunks(tag, a, n, bc, last_cpl=last_cpl)
                for c in chunks:
                    c["window"] = (c["window"] + 8) % (4096 // self.b.row_bytes)
                group += chunks
                continue
            if fault == "bad_length" and i == 0:
                # The hard block flags a completion whose length does not fit (error code 3).
                group += self.chunks(tag, a, n, bc, error=0b0011, last_cpl=True)
                break
            group += self.chunks(tag, a, n, bc, last_cpl=last_cpl)
        self.pending.append(group)

    def next_chunk(self, rng):
        if self.hold or not self.pending:
            return None
        # Completions of different reads interleave; those of one read stay in order.
        i = rng.randrange(len(self.pending)) if self.shuffle else 0
        chunk = self.pending[i].pop(0)
        if not self.pending[i]:
            self.pending.pop(i)
        if chunk["last"] and chunk["desc"]["request_completed"]:
            self.live.discard(chunk["desc"]["tag"])
        return chunk


class Bench:
    def __init__(self, data_width=512, seed=1, host=None, **kw):
        self.w = data_width
        self.row_bytes = data_width // 8
        self.dut = Dut(data_width, **kw)
        self.statuses = []       # (id, error) in the order they came
        self.requesters = []     # the requester ID of every read, in issue order
        self.rng = random.Random(seed)
        self.host = host or Host(self)
        self.host.b = self
        self.max_credit = 0

    async def device(self, ctx):
        """Takes read requests and feeds chunks back, one per clock at most.

        Requests are sampled at the clock edge, so no input the test changes in the middle of a
        clock can make a handshake pass unseen.
        """
        eng = self.dut.engine
        ctx.set(eng.tlp.ready, 1)
        async for _, _, valid, p, outstanding in ctx.tick().sample(
                eng.tlp.valid, eng.tlp.payload, eng.outstanding_bytes):
            self.max_credit = max(self.max_credit, outstanding)
            if valid:
                assert p.desc.req_type == MEM_READ and p.first and p.last and p.keep == 0
                fbe = p.first_be
                lead = (fbe & -fbe).bit_length() - 1
                a = (p.desc.address << 2) + lead
                if p.desc.dword_count == 1:
                    nbytes = fbe.bit_length() - lead
                else:
                    nbytes = 4 * p.desc.dword_count - lead - (4 - p.last_be.bit_length())
                self.host.on_request(p.desc.tag, a, nbytes)
                self.requesters.append(p.desc.requester_id)
            chunk = self.host.next_chunk(self.rng) if self.rng.random() < 0.8 else None
            if chunk:
                for k, v in chunk["desc"].items():
                    ctx.set(getattr(eng.cpl.payload.desc, k), v)
                for k in ("data", "keep", "window", "first", "last"):
                    ctx.set(getattr(eng.cpl.payload, k), chunk[k])
            ctx.set(eng.cpl.valid, int(chunk is not None))

    async def read(self, ctx, addr, length, ram_addr, ident, function=0):
        req = self.dut.engine.req
        ctx.set(req.payload.function, function)
        ctx.set(req.payload.addr, addr)
        ctx.set(req.payload.length, length)
        ctx.set(req.payload.ram_addr, ram_addr)
        ctx.set(req.payload.id, ident)
        ctx.set(req.valid, 1)
        await wait_for(ctx, lambda: ctx.get(req.ready), max_cycles=10_000, what="accepted")
        await ctx.tick()
        ctx.set(req.valid, 0)

    async def collect(self, ctx):
        """Records every status: the stream is never held back."""
        st = self.dut.engine.status
        async for _, _, valid, payload in ctx.tick().sample(st.valid, st.payload):
            if valid:
                self.statuses.append((payload.id, payload.error))

    async def status(self, ctx, ident, max_cycles=40_000):
        """The status of request ``ident`` (exactly one must come)."""
        def arrived():
            return any(i == ident for i, _ in self.statuses)
        await wait_for(ctx, arrived, max_cycles=max_cycles, what=f"status {ident}")
        mine = [s for s in self.statuses if s[0] == ident]
        assert len(mine) == 1, mine
        self.statuses.remove(mine[0])
        return mine[0]

    async def ram_bytes(self, ctx, ram_addr, length):
        out = bytearray()
        size = RAM_ROWS * self.row_bytes
        for k in range(length):
            a = (ram_addr + k) % size
            ctx.set(self.dut.peek.addr, a)
            ctx.set(self.dut.peek.en, 1)
            await ctx.tick()
            out.append((ctx.get(self.dut.peek.data) >> (8 * (a % self.row_bytes))) & 0xFF)
        ctx.set(self.dut.peek.en, 0)
        return bytes(out)

    def setup(self, ctx, *, mrrs=2, ext_tag=1, timeout=5000):
        eng = self.dut.engine
        ctx.set(eng.max_read_req, mrrs)
        ctx.set(eng.ext_tag, ext_tag)
        ctx.set(eng.bus_master, 1)
        ctx.set(eng.timeout, timeout)

    def simulate(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_testbench(self.device, background=True)
        sim.add_testbench(self.collect, background=True)
        sim.add_testbench(tb)
        run(sim, name)


@pytest.mark.parametrize("data_width", [512, 256])
def test_reads_land_in_ram_whatever_the_order(data_width):
    b = Bench(data_width, seed=data_width)
    ram_size = RAM_ROWS * b.row_bytes        # reads longer than the RAM would wrap onto themselves
    cases = [(0x1000, 1), (0x1003, 2), (0x2041, 63), (0x3FC0, 64), (0x5FFE, 5),
             (0x7010, 700), (0x9000 - 20, ram_size - 2 * b.row_bytes)]

    async def tb(ctx):
        b.setup(ctx, mrrs=2)
        for i, (addr, length) in enumerate(cases):
            ram_addr = (addr % b.row_bytes) + b.row_bytes * (i * 3) % ram_size
            await b.read(ctx, addr, length, ram_addr, ident=i)
            assert await b.status(ctx, i) == (i, ReadError.OK)
            got = await b.ram_bytes(ctx, ram_addr, length)
            assert got == bytes(host_byte(addr + k) for k in range(length)), f"case {i}"
        # MRRS 512: no read crosses a 512-byte (so no 4 KiB) boundary.
        for _, a, nbytes in b.host.requests:
            assert a // 512 == (a + nbytes - 1) // 512, f"read {a:#x}+{nbytes}"

    b.simulate(tb, f"dma_read_{data_width}")


@pytest.mark.parametrize("fault,expected", [(UR, ReadError.UR), (CA, ReadError.CA),
                                            ("poison", ReadError.POISONED),
                                            ("drop", ReadError.TIMEOUT),
                                            ("outside", ReadError.MALFORMED),
                                            ("bad_length", ReadError.MALFORMED)])
def test_errors_end_the_request_and_the_engine_goes_on(fault, expected):
    bench = Bench(seed=5)
    victim = []

    def inject(tag, addr, nbytes):
        if not victim:
            victim.append(tag)
            return fault
        return None

    bench.host.fault = inject

    async def tb(ctx):
        bench.setup(ctx, timeout=2000)
        await bench.read(ctx, 0x10000, 2048, 0, ident=7)
        assert await bench.status(ctx, 7) == (7, expected)
        # The next request completes normally.
        await bench.read(ctx, 0x20000, 1000, 0, ident=8)
        assert await bench.status(ctx, 8) == (8, ReadError.OK)
        got = await bench.ram_bytes(ctx, 0, 1000)
        assert got == bytes(host_byte(0x20000 + k) for k in range(1000))
        if fault == "drop":
            # The timed-out tag is not used again within the next time-out.
            assert victim[0] not in [t for t, a, _ in bench.host.requests if a >= 0x20000]

    bench.simulate(tb, f"dma_read_fault_{fault}")


def test_timed_out_tags_come_back_after_a_second_time_out():
    """Every one of the 32 tags times out (the host never answers, as when the hard block drops
    reads with bus mastering off); after another time-out they serve reads again."""
    bench = Bench(seed=13, credit_bytes=60000, credit_headers=1000)
    bench.host.fault = lambda tag, addr, nbytes: "drop"

    async def tb(ctx):
        bench.setup(ctx, mrrs=0, ext_tag=0, timeout=400)     # 128-byte reads, 32 tags
        await bench.read(ctx, 0x40000, 128 * 40, 0, ident=1)
        assert await bench.status(ctx, 1) == (1, ReadError.TIMEOUT)
        dropped = {t for t, _, _ in bench.host.requests}
        assert len(dropped) == 32, f"{len(dropped)} tags used"
        bench.host.fault = None
        await bench.read(ctx, 0x20000, 1000, 0, ident=2)
        assert await bench.status(ctx, 2) == (2, ReadError.OK)
        got = await bench.ram_bytes(ctx, 0, 1000)
        assert got == bytes(host_byte(0x20000 + k) for k in range(1000))

    bench.simulate(tb, "dma_read_tags_come_back")


def test_tags_32_until_extended_then_more():
    bench = Bench(seed=9, credit_bytes=60000, credit_headers=1000)
    bench.host.hold = True

    async def tb(ctx):
        bench.setup(ctx, mrrs=0, ext_tag=0)     # 128-byte reads
        await bench.read(ctx, 0x40000, 128 * 100, 0, ident=1)
        for _ in range(200):
            await ctx.tick()
        assert bench.host.max_outstanding_tags == 32
        ctx.set(bench.dut.engine.ext_tag, 1)
        for _ in range(200):
            await ctx.tick()
        assert bench.host.max_outstanding_tags == 100
        bench.host.hold = False
        assert await bench.status(ctx, 1) == (1, ReadError.OK)

    bench.simulate(tb, "dma_read_tags")


def test_outstanding_bytes_stay_within_the_credit_budget():
    bench = Bench(seed=11, credit_bytes=8192, credit_headers=1000)
    bench.host.hold = True

    async def tb(ctx):
        bench.setup(ctx, mrrs=2)
        await bench.read(ctx, 0x80000, 65536, 0, ident=3)
        for _ in range(300):
            await ctx.tick()
        # Held back: requests stop when the next one would exceed the budget.
        held = sum(n for _, _, n in bench.host.requests)
        assert 8192 - 512 < held <= 8192, held
        bench.host.hold = False
        assert await bench.status(ctx, 3) == (3, ReadError.OK)
        assert bench.max_credit <= 8192

    bench.simulate(tb, "dma_read_credits")


def test_requests_in_flight_together_and_bus_master_off():
    """Requests taken one per clock run together; their statuses come by id, in any order."""
    bench = Bench(seed=13)
    cases = [(0x1000 * (i + 1) + 3 * i, 200 + 200 * i, 1024 * i + 3 * i) for i in range(4)]

    async def tb(ctx):
        bench.setup(ctx)
        eng = bench.dut.engine
        for i, (addr, length, ram_addr) in enumerate(cases):
            await bench.read(ctx, addr, length, ram_addr, ident=0x40 + i)
        assert len(bench.statuses) < len(cases), "taken before the first completes"
        for i, (addr, length, ram_addr) in enumerate(cases):
            assert await bench.status(ctx, 0x40 + i) == (0x40 + i, ReadError.OK)
            got = await bench.ram_bytes(ctx, ram_addr, length)
            assert got == bytes(host_byte(addr + k) for k in range(length))
        ctx.set(eng.bus_master, 0)
        sent = len(bench.host.requests)
        await bench.read(ctx, 0x5000, 64, 0, ident=4)
        assert await bench.status(ctx, 4) == (4, ReadError.BUS_MASTER_OFF)
        assert len(bench.host.requests) == sent
        assert ctx.get(eng.idle)

    bench.simulate(tb, "dma_read_in_flight")


def test_bus_master_cleared_in_the_middle_of_a_request():
    """The reads not yet issued are given up; the status waits for those outstanding."""
    bench = Bench(seed=19, credit_bytes=4096, credit_headers=1000)

    async def tb(ctx):
        bench.setup(ctx, mrrs=0)                         # 128-byte reads, 4 KiB of credit
        eng = bench.dut.engine
        bench.host.hold = True
        await bench.read(ctx, 0x70000, 16384, 0, ident=9)
        for _ in range(100):
            await ctx.tick()
        ctx.set(eng.bus_master, 0)
        for _ in range(10):
            await ctx.tick()
        assert not bench.statuses, "outstanding reads are still waited for"
        sent = len(bench.host.requests)
        assert 0 < sent < 16384 // 128
        bench.host.hold = False
        assert await bench.status(ctx, 9) == (9, ReadError.BUS_MASTER_OFF)
        assert len(bench.host.requests) == sent
        for _ in range(5):
            await ctx.tick()
        assert ctx.get(eng.idle)

    bench.simulate(tb, "dma_read_bus_master_midway")


def test_first_read_leaves_in_the_clock_of_acceptance():
    bench = Bench(seed=17)
    bench.host.hold = True

    async def tb(ctx):
        bench.setup(ctx)
        eng = bench.dut.engine
        req = eng.req
        ctx.set(req.payload.addr, 0x9000)
        ctx.set(req.payload.length, 64)
        ctx.set(req.payload.ram_addr, 0)
        ctx.set(req.payload.id, 1)
        ctx.set(req.valid, 1)
        assert ctx.get(req.ready), "an idle engine takes a request at once"
        assert ctx.get(eng.tlp.valid), "its first read is offered in the same clock"
        assert ctx.get(eng.tlp.payload.desc.address) << 2 == 0x9000
        await ctx.tick()
        ctx.set(req.valid, 0)
        bench.host.hold = False
        assert await bench.status(ctx, 1) == (1, ReadError.OK)
        assert len(bench.host.requests) == 1

    bench.simulate(tb, "dma_read_latency")


def test_reads_carry_their_function_and_its_bus_mastering():
    """A request's reads go out with its function's requester ID, and a function whose Bus
    Master Enable is off has its requests refused while another function's go out."""
    bench = Bench(seed=29)

    async def tb(ctx):
        bench.setup(ctx)
        eng = bench.dut.engine
        ctx.set(eng.bus_master, 0b0011)
        await bench.read(ctx, 0x2000, 1000, 0, ident=1, function=1)
        assert await bench.status(ctx, 1) == (1, ReadError.OK)
        assert bench.requesters and set(bench.requesters) == {1}
        ctx.set(eng.bus_master, 0b0001)
        sent = len(bench.requesters)
        await bench.read(ctx, 0x3000, 64, 1024, ident=2, function=1)
        assert await bench.status(ctx, 2) == (2, ReadError.BUS_MASTER_OFF)
        assert len(bench.requesters) == sent
        await bench.read(ctx, 0x4000, 200, 2048, ident=3, function=0)
        assert await bench.status(ctx, 3) == (3, ReadError.OK)
        assert set(bench.requesters[sent:]) == {0}
        got = await bench.ram_bytes(ctx, 2048, 200)
        assert got == bytes(host_byte(0x4000 + k) for k in range(200))

    bench.simulate(tb, "dma_read_functions")
