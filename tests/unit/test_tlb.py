"""TLB with the page-table walker behind it, over page tables built by the host driver: every
translation and fault agrees with the driver's reference walk for reads and writes, user and
supervisor; hits cost one clock each; capacity and conflict evictions stay correct; a remap is
seen after an invalidation (page, PASID, all) and, as documented, not before it. Entries are
tagged with the PCIe function: the same PASID and address in another function misses and
translates through that function's tables, and invalidations drop every function's entries."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from sdxi_defs.page_tables import Fault, Level
from hdl.mmu.tlb import Tlb
from sdxi_defs.regmap import TlbInvalidateKind
from hdl.mmu.walker import PageWalker
from sw.address_space import AddressSpace, PasidTable

from .mmu_helpers import (VA, FlatMemory, build, function_spaces, reference_walk, run_bounded,
                          set_pasid_tables, table_memory)


def reference(space, va, write, user):
    fault, _, pa = reference_walk(space, va, write=write, user=user)
    return fault, pa


class Bench:
    """A TLB and a walker over ``mem`` (a ``FlatMemory``, or one per function) and ``table``
    (function 0's ``PasidTable``, or one per function); ``burst`` runs lookups back to back."""

    def __init__(self, mem, table, rng, **tlb_params):
        self.tlb, self.walker = Tlb(**tlb_params), PageWalker()
        self.m = Module()
        self.m.submodules.tlb, self.m.submodules.walker = self.tlb, self.walker
        wiring.connect(self.m, self.tlb.walk, self.walker.request)
        wiring.connect(self.m, self.walker.result, self.tlb.walked)
        self.m.d.comb += self.walker.flush.eq(self.tlb.invalidating)    # as TranslationUnit
        self.mem, self.table, self.rng = mem, table, rng
        self.fail_addr = [None]

    def run(self, body, limit=2e-3):
        sim = Simulator(self.m)
        sim.add_clock(1e-8)
        done = []

        async def host(ctx):
            set_pasid_tables(ctx, self.walker, self.table)
            await body(ctx)
            done.append(True)

        sim.add_testbench(table_memory(self.walker, self.mem, self.rng, self.fail_addr),
                          background=True)
        sim.add_testbench(host)
        run_bounded(sim, limit)
        assert done

    async def burst(self, ctx, lookups, *, stall=0.0):
        """Offer ``lookups`` ((pasid, vaddr, write, user) of function 0, or (..., function))
        back to back and take the results (refusing each with probability ``stall``); return
        the results and the clocks from the first offer to the last result."""
        tlb = self.tlb
        results = []
        clocks = 0
        pending = list(lookups)
        while len(results) < len(lookups):
            if pending:
                pasid, va, write, user, function = (*pending[0], 0)[:5]
                ctx.set(tlb.lookup.payload.function, function)
                ctx.set(tlb.lookup.payload.pasid, pasid)
                ctx.set(tlb.lookup.payload.vaddr, va)
                ctx.set(tlb.lookup.payload.write, write)
                ctx.set(tlb.lookup.payload.user, user)
            ctx.set(tlb.lookup.valid, bool(pending))
            ready = self.rng.random() >= stall
            ctx.set(tlb.result.ready, ready)
            _, _, taken, out_valid, out = await ctx.tick().sample(
                tlb.lookup.ready, tlb.result.valid, tlb.result.payload)
            clocks += 1
            if pending and taken:
                pending.pop(0)
            if out_valid and ready:
                results.append((Fault(out.fault), out.paddr))
        ctx.set(tlb.lookup.valid, 0)
        return results, clocks

    async def invalidate(self, ctx, kind, pasid=0, vaddr=0):
        inv = self.tlb.invalidate
        ctx.set(inv.payload.kind, kind)
        ctx.set(inv.payload.pasid, pasid)
        ctx.set(inv.payload.vaddr, vaddr)
        ctx.set(inv.valid, 1)
        await ctx.tick().until(inv.ready)
        ctx.set(inv.valid, 0)


def check(results, lookups, spaces):
    for (fault, paddr), (pasid, va, write, user) in zip(results, lookups):
        want_fault, want_pa = reference(spaces.get(pasid), va, write, user)
        what = f"{'write' if write else 'read'} {'user' if user else 'supervisor'} {va:#x} " \
               f"in PASID {pasid}"
        assert fault == want_fault, f"{what}: {fault.name}, not {want_fault.name}"
        if fault == Fault.NONE:
            assert paddr == want_pa, f"{what}: {paddr:#x}, not {want_pa:#x}"


@pytest.mark.parametrize("seed", [1, 2])
def test_random_lookups_agree_with_the_reference(seed):
    rng = random.Random(seed)
    mem = FlatMemory()
    table, walks = build(mem, rng)
    spaces = {s.pasid: s for _, _, s in walks if s is not None}
    # Each address asked several times, in several ways, mixed: hits, misses and refusals.
    lookups = [(pasid, va + rng.randrange(64), rng.random() < 0.4, rng.random() < 0.7)
               for pasid, va, _ in walks for _ in range(3)]
    rng.shuffle(lookups)
    b = Bench(mem, table, rng, sets=16, ways=2)

    async def body(ctx):
        results, _ = await b.burst(ctx, lookups, stall=0.3)     # results held at random
        check(results, lookups, spaces)
        hits, misses = ctx.get(b.tlb.hits), ctx.get(b.tlb.misses)
        assert hits + misses == len(lookups) and hits > 0 and misses > 0, (hits, misses)

    b.run(body)


def sequential_space(mem, pages, pasid=1):
    space = AddressSpace(mem.alloc, pasid)
    table = PasidTable(mem.alloc, 4)
    table.bind(space)
    frames = [mem.alloc(4096) for _ in range(pages)]
    for i, f in enumerate(frames):
        space.map(0x100_0000 + 4096 * i, f.addr, 4096)
    return space, table


def test_hits_cost_one_clock_and_evictions_stay_correct():
    rng = random.Random(3)
    mem = FlatMemory()
    space, table = sequential_space(mem, 64)
    b = Bench(mem, table, rng, sets=16, ways=2)        # 32 entries
    pages = lambda n: [(1, 0x100_0000 + 4096 * i + 8, 0, 1) for i in range(n)]  # noqa: E731

    async def body(ctx):
        # 32 pages fill the TLB exactly (2 per set); asked again, all 32 hit, one per clock.
        results, _ = await b.burst(ctx, pages(32))
        check(results, pages(32), {1: space})
        assert ctx.get(b.tlb.misses) == 32
        results, clocks = await b.burst(ctx, pages(32) * 4)
        check(results, pages(32) * 4, {1: space})
        assert ctx.get(b.tlb.misses) == 32 and ctx.get(b.tlb.hits) == 128
        assert clocks <= 128 + 2, f"{clocks} clocks for 128 hits"
        # A result held back keeps its lookup (and its set) in place: still all hits.
        results, _ = await b.burst(ctx, pages(32) * 2, stall=0.5)
        check(results, pages(32) * 2, {1: space})
        assert ctx.get(b.tlb.misses) == 32 and ctx.get(b.tlb.hits) == 192
        # 64 pages cannot fit: the first 32 still hit, the next 32 evict them, and asked
        # again in the same order all 64 miss (capacity), every answer still correct.
        results, _ = await b.burst(ctx, pages(64) * 2)
        check(results, pages(64) * 2, {1: space})
        assert ctx.get(b.tlb.misses) == 32 + 32 + 64
        # Three pages of one set in a 2-way TLB: conflict misses every time round.
        await b.invalidate(ctx, TlbInvalidateKind.ALL)
        same_set = [(1, 0x100_0000 + 4096 * 16 * k, 0, 1) for k in range(3)] * 3
        before = ctx.get(b.tlb.misses)
        results, _ = await b.burst(ctx, same_set)
        check(results, same_set, {1: space})
        assert ctx.get(b.tlb.misses) - before == 9

    b.run(body)


def test_invalidation_and_remapping():
    rng = random.Random(4)
    mem = FlatMemory()
    space, table = sequential_space(mem, 8, pasid=1)
    other = AddressSpace(mem.alloc, 2)
    table.bind(other)
    other.map(0x100_0000, mem.alloc(4096).addr, 4096)
    spare = mem.alloc(4096)
    b = Bench(mem, table, rng, sets=4, ways=4)
    va = 0x100_0000 + 3 * 4096
    old = space.translate(va)

    def remap():
        pt, i = space.entry(va, Level.PT)
        pt.write_u64(8 * i, AddressSpace.leaf(spare.addr, Level.PT))

    async def one(ctx, pasid=1, address=va, write=0):
        (fault, paddr), = (await b.burst(ctx, [(pasid, address, write, 1)]))[0]
        return fault, paddr

    async def body(ctx):
        for i in range(8):
            await one(ctx, address=0x100_0000 + 4096 * i)
        await one(ctx, pasid=2, address=0x100_0000)
        assert ctx.get(b.tlb.misses) == 9
        remap()
        assert await one(ctx) == (Fault.NONE, old), "a remap without invalidation is not seen"
        await b.invalidate(ctx, TlbInvalidateKind.PAGE, 1, va)
        assert await one(ctx) == (Fault.NONE, spare.addr), "the remap after a page invalidation"
        assert ctx.get(b.tlb.misses) == 10
        # PASID 1 invalidated: its pages miss, PASID 2's still hits.
        await b.invalidate(ctx, TlbInvalidateKind.PASID, 1)
        await one(ctx, pasid=2, address=0x100_0000)
        assert ctx.get(b.tlb.misses) == 10
        await one(ctx, address=0x100_0000)
        assert ctx.get(b.tlb.misses) == 11
        await b.invalidate(ctx, TlbInvalidateKind.ALL)
        await one(ctx, pasid=2, address=0x100_0000)
        assert ctx.get(b.tlb.misses) == 12
        # A cached read-only page made writable is written without an invalidation (the
        # refusal walks again); made read-only again, the write is refused after a walk.
        space.protect(va, 4096, writable=False, user=True)
        await b.invalidate(ctx, TlbInvalidateKind.PAGE, 1, va)
        assert (await one(ctx, write=1))[0] == Fault.WRITE
        space.protect(va, 4096, writable=True, user=True)
        assert await one(ctx, write=1) == (Fault.NONE, spare.addr)
        space.unmap(va, 4096)
        assert (await one(ctx))[0] == Fault.NONE, "still cached (no invalidation)"
        await b.invalidate(ctx, TlbInvalidateKind.PAGE, 1, va)
        assert (await one(ctx))[0] == Fault.NOT_PRESENT
        # The page table itself replaced (its PD entry rewritten): after an invalidation the
        # walker's recent path to the old table is not used either.
        neighbour = va + 4096
        assert (await one(ctx, address=neighbour))[0] == Fault.NONE     # path to the old PT
        pd, i = space.entry(va, Level.PD)
        new_pt = mem.alloc(4096)
        new_pt.write_u64(8 * ((neighbour >> 12) & 511), AddressSpace.leaf(spare.addr, Level.PT))
        pd.write_u64(8 * i, (pd.read_u64(8 * i) & 0xFFF) | new_pt.addr)
        space._tables[new_pt.addr] = new_pt
        await b.invalidate(ctx, TlbInvalidateKind.PASID, 1)
        assert await one(ctx, address=neighbour) == (Fault.NONE, spare.addr), \
            "a new page table not seen after an invalidation"

    b.run(body)


def test_entries_are_tagged_with_the_function():
    rng = random.Random(5)
    pasid = 5
    mems, tables, spaces = function_spaces(pasid)
    b = Bench(mems, tables, rng, sets=4, ways=4)

    def lookup(function, page, write=0, user=1):
        return pasid, VA + 4096 * page + 8, write, user, function

    def want(lookups):
        wanted = []
        for _, va, write, user, function in lookups:
            fault, pa = reference(spaces.get(function), va, write, user)
            wanted.append((fault, pa if fault == Fault.NONE else None))
        return wanted

    async def ask(ctx, lookups, stall=0.0):
        results, _ = await b.burst(ctx, lookups, stall=stall)
        got = [(fault, paddr if fault == Fault.NONE else None) for fault, paddr in results]
        assert got == want(lookups), lookups
        return got

    async def body(ctx):
        # Function 0 fills the entry; the same PASID and address in function 1 misses, and
        # so does function 2's: three different frames. Function 3 has no PASID table.
        first = await ask(ctx, [lookup(0, 0), lookup(0, 0)])
        assert ctx.get(b.tlb.misses) == 1 and ctx.get(b.tlb.hits) == 1
        others = await ask(ctx, [lookup(1, 0), lookup(2, 0), lookup(3, 0)])
        assert ctx.get(b.tlb.misses) == 4, "a lookup hit another function's entry"
        assert len({paddr for _, paddr in first[:1] + others[:2]}) == 3
        assert others[2][0] == Fault.NO_PASID
        # All three now hit, each its own entry, results held back at random.
        await ask(ctx, [lookup(f, 0) for f in (2, 1, 0)] * 3, stall=0.4)
        assert ctx.get(b.tlb.misses) == 4 and ctx.get(b.tlb.hits) == 10
        # Invalidations name no function: the PASID's or the page's entries of all go.
        await b.invalidate(ctx, TlbInvalidateKind.PASID, pasid)
        await ask(ctx, [lookup(f, 0) for f in range(3)] + [lookup(f, 1) for f in range(3)])
        assert ctx.get(b.tlb.misses) == 10
        await b.invalidate(ctx, TlbInvalidateKind.PAGE, pasid, VA + 4096)
        await ask(ctx, [lookup(f, p) for p in (0, 1) for f in range(3)])
        assert ctx.get(b.tlb.misses) == 13 and ctx.get(b.tlb.hits) == 13
        # Everything mixed: every function's answers from its own tables.
        mixed = [lookup(rng.randrange(4), rng.randrange(8), rng.random() < 0.3)
                 for _ in range(120)]
        await ask(ctx, mixed, stall=0.3)

    b.run(body)
