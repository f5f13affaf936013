"""DataMover against fake DMA engines and a fake TLB that answer late, out of order and with
stalls on every stream; every destination byte and every result is checked against a model
computed here from the command (host bytes in ``sim.reference_model.HostMemory``)."""

import random

import pytest

from hdl.sdxi.data_mover import PAGE, DataMover, MoverOp
from sdxi_defs.errors import FAULT_CLASS, READ_ERROR_CLASS, WRITE_ERROR_CLASS, ReadError, WriteError
from sdxi_defs.page_tables import Fault
from sdxi_defs.ram_map import IMAGE
from sim.reference_model import HostMemory

from .mmu_helpers import answer_lookups
from .pcie_helpers import new_sim, run, transfer, wait_for

RAM_BITS = 15
ROW = 64
FILL_RAM = 0x5000          # where the tests keep a FROM_RAM image (beyond the copy slots)
PASID_OFFSET = 0x40_0000   # a translated page lands this far above its virtual address


def host_byte(a):
    return (a * 29 + (a >> 9) + 7) & 0xFF


class Bench:
    """The mover with a read engine, a write engine and a TLB made of Python.

    The read engine takes requests with random stalls and completes them in random order,
    copying host bytes into the RAM. The write engine takes requests with random stalls, and
    later (in random order) reads the RAM bytes, writes them to the host and sends the release
    notice, then later still the status. The TLB answers after a random delay: page ``v`` of
    PASID ``p`` is at ``v + PASID_OFFSET``, except pages listed in ``faults``.
    """

    def __init__(self, seed, *, read_errors=None, write_errors=None, faults=None):
        self.dut = DataMover(ram_addr_bits=RAM_BITS, row_bytes=ROW, slot_base=0)
        self.rng = random.Random(seed)
        self.host = HostMemory()
        self.ram = bytearray(1 << RAM_BITS)
        self.read_errors = read_errors or {}       # source address -> ReadError
        self.write_errors = write_errors or {}     # destination address -> WriteError
        self.faults = faults or {}                 # virtual page address -> Fault
        self.written = []                          # (host address, bytes) of every write
        self.results = []
        self.reads = []
        self.writes = []
        self.translations = 0

    # ---- engines ------------------------------------------------------------------------------
    async def read_engine(self, ctx):
        rq, st = self.dut.rd_req, self.dut.rd_status
        async for _, _, valid, p in ctx.tick().sample(rq.valid, rq.payload):
            ctx.set(st.valid, 0)
            if self.reads and self.rng.random() < 0.4:
                ident, addr, length, ram = self.reads.pop(self.rng.randrange(len(self.reads)))
                error = self.read_errors.get(addr, ReadError.OK)
                if error == ReadError.OK:
                    data = self.host.read(addr, length)
                    for k in range(length):
                        self.ram[(ram + k) % len(self.ram)] = data[k]
                ctx.set(st.payload.id, ident)
                ctx.set(st.payload.error, error)
                ctx.set(st.valid, 1)
            if valid and ctx.get(rq.ready):
                self.reads.append((p.id, p.addr, p.length, p.ram_addr))
            ctx.set(rq.ready, self.rng.random() < 0.7)

    async def write_engine(self, ctx):
        wq, st, rel = self.dut.wr_req, self.dut.wr_status, self.dut.wr_released
        released = []
        async for _, _, valid, p in ctx.tick().sample(wq.valid, wq.payload):
            ctx.set(rel.valid, 0)
            ctx.set(st.valid, 0)
            if released and self.rng.random() < 0.3:
                ident, addr = released.pop(self.rng.randrange(len(released)))
                ctx.set(st.payload.id, ident)
                ctx.set(st.payload.error, self.write_errors.get(addr, WriteError.OK))
                ctx.set(st.valid, 1)
            if self.writes and self.rng.random() < 0.4:
                ident, addr, length, ram = self.writes.pop(self.rng.randrange(len(self.writes)))
                data = bytes(self.ram[(ram + k) % len(self.ram)] for k in range(length))
                if self.write_errors.get(addr, WriteError.OK) != WriteError.BUS_MASTER_OFF:
                    self.host.write(addr, data)
                    self.written.append((addr, data))
                released.append((ident, addr))
                ctx.set(rel.payload.id, ident)
                ctx.set(rel.valid, 1)
            if valid and ctx.get(wq.ready):
                self.writes.append((p.id, p.addr, p.length, p.ram_addr))
            ctx.set(wq.ready, self.rng.random() < 0.7)

    async def tlb(self, ctx):
        def resolve(vaddr):
            self.translations += 1
            return self.faults.get(vaddr, Fault.NONE), vaddr + PASID_OFFSET
        await answer_lookups(ctx, self.dut.translate, self.dut.translated, self.rng, resolve,
                             max_delay=5)

    async def collect(self, ctx):
        res = self.dut.result
        async for _, _, valid, p in ctx.tick().sample(res.valid, res.payload):
            if valid and ctx.get(res.ready):
                self.results.append((p.error, p.buffer, p.aborted))
            ctx.set(res.ready, self.rng.random() < 0.6)

    # ---- commands -------------------------------------------------------------------------------
    async def send(self, ctx, op, *, src=0, dst, length, ram=0, src_pv=0, dst_pv=0):
        cmd = self.dut.cmd
        await ctx.tick().repeat(self.rng.randrange(1, 4))
        p = cmd.payload
        for name, value in (("op", op), ("src", src), ("dst", dst), ("last", length - 1),
                            ("ram", ram)):
            ctx.set(getattr(p, name), value)
        for space, pv in ((p.src_space, src_pv), (p.dst_space, dst_pv)):
            ctx.set(space.pv, pv)
            ctx.set(space.pasid, 5 if pv else 0)
            ctx.set(space.user, 1)
        await transfer(ctx, cmd, max_cycles=20_000, what="command taken")

    def simulate(self, tb, name):
        sim = new_sim(self.dut)
        for process in (self.read_engine, self.write_engine, self.tlb, self.collect):
            sim.add_testbench(process, background=True)
        sim.add_testbench(tb)
        run(sim, name)


def fill_host(bench, addr, length):
    bench.host.write(addr, bytes(host_byte(addr + k) for k in range(length)))


def copy_cases(rng, count):
    sizes = [1, 2, 63, 64, 65, 255, 256, 257, 1000, 4096, 5000, 20000]
    cases = []
    for i in range(count):
        length = rng.choice(sizes)
        src = 0x100_0000 + i * 0x10000 + rng.randrange(4096)
        dst = 0x800_0000 + i * 0x10000 + rng.randrange(4096)
        cases.append((src, dst, length))
    return cases


@pytest.mark.parametrize("seed", [1, 2])
def test_copies_overlap_and_land_exactly(seed):
    """A stream of copies of every size and alignment: each destination gets exactly its
    source's bytes, nothing is written elsewhere, and a result comes for each, in order."""
    bench = Bench(seed)
    cases = copy_cases(bench.rng, 14)
    for src, _, length in cases:
        fill_host(bench, src, length)

    async def tb(ctx):
        for src, dst, length in cases:
            await bench.send(ctx, MoverOp.COPY, src=src, dst=dst, length=length)
        await wait_for(ctx, lambda: len(bench.results) == len(cases), max_cycles=100_000,
                       what="results")
        await wait_for(ctx, lambda: ctx.get(bench.dut.idle), max_cycles=1000, what="idle")

    bench.simulate(tb, f"data_mover_copies_{seed}")
    assert bench.results == [(0, 0, 0)] * len(cases)
    allowed = set()
    for src, dst, length in cases:
        assert bench.host.read(dst, length) == bench.host.read(src, length)
        allowed.update(range(dst, dst + length))
    for addr, data in bench.written:
        assert set(range(addr, addr + len(data))) <= allowed, f"write outside at {addr:#x}"


def test_fill_and_repcopy_repeat_their_image():
    bench = Bench(3)
    image = bytes(bench.rng.randrange(256) for _ in range(IMAGE))
    bench.ram[FILL_RAM:FILL_RAM + IMAGE] = image
    block_src = 0x300_0000
    fill_host(bench, block_src, IMAGE)
    fills = [(0x900_0000 + 5, 3 * IMAGE + 100), (0x910_0000, 40)]
    rep = (0x920_0000 + 64, 5 * IMAGE)

    async def tb(ctx):
        for dst, length in fills:
            await bench.send(ctx, MoverOp.FROM_RAM, dst=dst, length=length, ram=FILL_RAM)
        await bench.send(ctx, MoverOp.REPCOPY, src=block_src, dst=rep[0], length=rep[1])
        await bench.send(ctx, MoverOp.COPY, src=block_src, dst=0x930_0000, length=300)
        await wait_for(ctx, lambda: len(bench.results) == 4, max_cycles=100_000, what="results")

    bench.simulate(tb, "data_mover_images")
    assert bench.results == [(0, 0, 0)] * 4
    for dst, length in fills:
        assert bench.host.read(dst, length) == (image * 4)[:length]
    block = bench.host.read(block_src, IMAGE)
    assert bench.host.read(rep[0], rep[1]) == block * 5
    assert bench.host.read(0x930_0000, 300) == block[:300]


def test_dma_errors_are_reported_on_their_command_and_later_ones_run():
    src_bad, dst_bad = 0x100_0000, 0x820_0000
    bench = Bench(4, read_errors={src_bad + 256: ReadError.POISONED},
                  write_errors={dst_bad + 512: WriteError.TIMEOUT})
    cases = [(src_bad, 0x810_0000, 1024), (0x110_0000, dst_bad, 1024), (0x120_0000, 0x830_0000, 700)]
    for src, _, length in cases:
        fill_host(bench, src, length)

    async def tb(ctx):
        for src, dst, length in cases:
            await bench.send(ctx, MoverOp.COPY, src=src, dst=dst, length=length)
        await wait_for(ctx, lambda: len(bench.results) == 3, max_cycles=50_000, what="results")
        await wait_for(ctx, lambda: ctx.get(bench.dut.idle), max_cycles=1000, what="idle")

    bench.simulate(tb, "data_mover_dma_errors")
    assert bench.results == [(READ_ERROR_CLASS[ReadError.POISONED], 0, 0),
                             (WRITE_ERROR_CLASS[WriteError.TIMEOUT], 1, 0), (0, 0, 0)]
    # The failed chunk is not written; the others of its command are.
    assert bench.host.read(0x810_0000 + 256, 256) == bytes(256)
    assert bench.host.read(0x810_0000, 256) == bench.host.read(src_bad, 256)
    src, dst, length = cases[2]
    assert bench.host.read(dst, length) == bench.host.read(src, length)


def test_translated_buffers_cross_pages_and_a_fault_stops_the_command():
    bench = Bench(5, faults={0x740_3000: Fault.NOT_PRESENT})
    src, dst, length = 0x600_0F00 + 17, 0x700_0800 + 3, 3 * PAGE + 200
    fill_host(bench, src + PASID_OFFSET, length)
    faulting = (0x140_0000, 0x740_0000, 4 * PAGE + 64)         # page 3 of dst faults
    fill_host(bench, faulting[0], faulting[2])

    async def tb(ctx):
        await bench.send(ctx, MoverOp.COPY, src=src, dst=dst, length=length, src_pv=1, dst_pv=1)
        await bench.send(ctx, MoverOp.COPY, src=faulting[0], dst=faulting[1],
                         length=faulting[2], dst_pv=1)
        await wait_for(ctx, lambda: len(bench.results) == 2, max_cycles=100_000, what="results")

    bench.simulate(tb, "data_mover_translated")
    assert bench.results == [(0, 0, 0), (FAULT_CLASS[Fault.NOT_PRESENT], 1, 0)]
    assert bench.host.read(dst + PASID_OFFSET, length) == bench.host.read(src + PASID_OFFSET,
                                                                          length)
    # Pages before the fault are written; nothing at or after it.
    pa = faulting[1] + PASID_OFFSET
    assert bench.host.read(pa, 3 * PAGE) == bench.host.read(faulting[0], 3 * PAGE)
    assert bench.host.read(pa + 3 * PAGE, PAGE + 64) == bytes(PAGE + 64)


def test_abort_ends_the_command_and_those_behind_it():
    bench = Bench(6)
    fill_host(bench, 0x100_0000, 65536)

    async def tb(ctx):
        await bench.send(ctx, MoverOp.COPY, src=0x100_0000, dst=0x800_0000, length=65536)
        ctx.set(bench.dut.abort, 1)
        await bench.send(ctx, MoverOp.COPY, src=0x100_0000, dst=0x900_0000, length=512)
        await wait_for(ctx, lambda: len(bench.results) == 2, max_cycles=50_000, what="results")
        ctx.set(bench.dut.abort, 0)
        await wait_for(ctx, lambda: ctx.get(bench.dut.idle), max_cycles=5000, what="idle")

    bench.simulate(tb, "data_mover_abort")
    assert bench.results[1] == (0, 0, 1), "the next command is aborted"
    assert bench.host.read(0x900_0000, 512) == bytes(512), "nothing of it moves"
