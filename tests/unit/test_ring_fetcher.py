"""RingFetcher against a fake read engine (reads answered late and out of order) and a fake
TLB: the descriptors handed over are the ring's, in order, across the ring's end and its
pages, and a page the TLB refuses fails the batch that starts there."""

import random

import pytest

from hdl.sdxi.ring_fetcher import FETCHERS, RingFetcher
from sdxi_defs.errors import FAULT_CLASS, READ_ERROR_CLASS, ReadError
from sdxi_defs.page_tables import Fault
from sdxi_defs.ram_map import BATCH
from sim.reference_model import HostMemory

from .mmu_helpers import answer_lookups
from .pcie_helpers import new_sim, run, wait_for

DESC_BASE = 0x2000
RING = 0x40_0000
FRAME_OFFSET = 0x1000_0000     # a virtual ring page lands this far up


def slot_bytes(index):
    return bytes((index * 7 + k) & 0xFF for k in range(64))


class Bench:
    def __init__(self, seed, *, ring_sz, pv=0, faults=(), read_errors=()):
        self.dut = RingFetcher(ram_addr_bits=15, desc_base=DESC_BASE)
        self.rng = random.Random(seed)
        self.ram = bytearray(1 << 15)
        self.host = HostMemory()
        self.ring_sz = ring_sz
        self.pv = pv
        self.faults = set(faults)          # virtual page addresses the TLB refuses
        self.read_errors = set(read_errors)  # host addresses whose reads fail
        self.pending = []
        self.max_reads = 0

    def place(self, first, count):
        base = RING + (FRAME_OFFSET if self.pv else 0)
        for i in range(first, first + count):
            self.host.write(base + 64 * (i % self.ring_sz), slot_bytes(i))

    async def engine(self, ctx):
        dut = self.dut
        async for _, _, *seen in ctx.tick().sample(
                *[x for f in range(FETCHERS) for x in (dut.fetch_req[f].valid,
                                                      dut.fetch_req[f].payload)]):
            for f in range(FETCHERS):
                ctx.set(dut.fetch_status[f].valid, 0)
            for f in range(FETCHERS):
                valid, p = seen[2 * f], seen[2 * f + 1]
                if valid and ctx.get(dut.fetch_req[f].ready):
                    self.pending.append((f, p.addr, p.length, p.ram_addr))
                ctx.set(dut.fetch_req[f].ready, self.rng.random() < 0.6)
            self.max_reads = max(self.max_reads, len(self.pending))
            if self.pending and self.rng.random() < 0.3:
                f, addr, length, ram = self.pending.pop(self.rng.randrange(len(self.pending)))
                error = ReadError.CA if addr in self.read_errors else ReadError.OK
                if error == ReadError.OK:
                    self.ram[ram:ram + length] = self.host.read(addr, length)
                ctx.set(dut.fetch_status[f].payload.error, error)
                ctx.set(dut.fetch_status[f].valid, 1)

    async def tlb(self, ctx):
        def resolve(vaddr):
            return (Fault.NOT_PRESENT if vaddr in self.faults else Fault.NONE,
                    vaddr + FRAME_OFFSET)
        await answer_lookups(ctx, self.dut.ring_translate, self.dut.ring_translated, self.rng,
                             resolve, max_delay=4)

    async def turn(self, ctx, pos, write_index):
        """Run a turn from ``pos`` to ``write_index``; return what was handed over: the
        descriptors' bytes in order, then the failed batch's class if one failed."""
        dut = self.dut
        ctx.set(dut.write_index, write_index)
        ctx.set(dut.turn.ring, RING)
        ctx.set(dut.turn.ring_sz, self.ring_sz)
        ctx.set(dut.turn.pos, pos)
        ctx.set(dut.turn.slot, pos % self.ring_sz)
        ctx.set(dut.turn.space.pv, self.pv)
        ctx.set(dut.turn.space.pasid, 9)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.enable, 1)
        got, failed, seen = [], None, 0
        while seen < write_index - pos and failed is None:
            await wait_for(ctx, lambda: ctx.get(dut.batch.full), max_cycles=5000, what="batch")
            b = ctx.get(dut.batch)
            if b.failed:
                failed = b.err_class
            else:
                assert 1 <= b.count <= BATCH
                base = DESC_BASE + b.buffer * BATCH * 64
                got += [bytes(self.ram[base + 64 * k:base + 64 * (k + 1)])
                        for k in range(b.count)]
                seen += b.count
            await ctx.tick().repeat(self.rng.randrange(1, 5))
            ctx.set(dut.consume, 1)
            await ctx.tick()
            ctx.set(dut.consume, 0)
        ctx.set(dut.enable, 0)
        await wait_for(ctx, lambda: not ctx.get(dut.busy), max_cycles=5000, what="quiet")
        ctx.set(dut.flush, 1)
        await ctx.tick()
        ctx.set(dut.flush, 0)
        return got, failed

    def simulate(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_testbench(self.engine, background=True)
        sim.add_testbench(self.tlb, background=True)
        sim.add_testbench(tb)
        run(sim, name)


@pytest.mark.parametrize("pv", [0, 1])
def test_batches_follow_the_ring_across_its_end_and_its_pages(pv):
    bench = Bench(pv + 1, ring_sz=1024 if pv else 100, pv=pv)
    turns = [(90, 130), (130, 131), (1000, 1100)] if pv else [(90, 130), (130, 131), (195, 260)]
    results = []

    async def tb(ctx):
        for pos, wi in turns:
            bench.place(pos, wi - pos)       # the producer writes the slots, then the index
            results.append(await bench.turn(ctx, pos, wi))

    bench.simulate(tb, f"ring_fetcher_pv{pv}")
    for (pos, wi), (got, failed) in zip(turns, results):
        assert failed is None
        assert got == [slot_bytes(i) for i in range(pos, wi)], (pos, wi)
    assert bench.max_reads >= 2, "several ring reads in flight"


def test_a_refused_page_or_a_failed_read_fails_its_batch():
    bench = Bench(3, ring_sz=1024, pv=1, faults={RING + 0x1000})
    bench.place(60, 10)

    async def tb(ctx):
        got, failed = await bench.turn(ctx, 60, 70)
        assert got == [slot_bytes(i) for i in range(60, 64)], "the slots before the page"
        assert failed == FAULT_CLASS[Fault.NOT_PRESENT]
        bench.faults.clear()
        bench.read_errors.add(RING + FRAME_OFFSET + 64 * 64)
        got, failed = await bench.turn(ctx, 64, 70)
        assert got == [] and failed == READ_ERROR_CLASS[ReadError.CA]

    bench.simulate(tb, "ring_fetcher_faults")
