"""Page-table walker: page tables built by the host driver (4 KiB, 2 MiB and 1 GiB pages),
walked in amaranth.sim with random read latency; every result agrees with the driver's
reference walk, and every fault kind appears. The PTE bytes themselves are checked against
values written from the x86 manual (Linux's _PAGE_TABLE = 0x67 and friends). The same PASID in
two PCIe functions is two address spaces: each walk reads its own function's PASID table, in
its own function's view of memory, and never uses another function's recent path."""

import random

import pytest
from amaranth.sim import Simulator

from sdxi_defs.page_tables import Fault, Level
from hdl.mmu.walker import PageWalker
from sw.address_space import AddressSpace, PasidTable

from .mmu_helpers import (VA, FlatMemory, build, function_spaces, reference_walk, run_bounded,
                          set_pasid_tables, table_memory)


def test_pte_bytes_match_the_x86_format():
    mem = FlatMemory()
    space = AddressSpace(mem.alloc, pasid=3)
    space.map(0x7F00_0000_1000, 0x1234_5000, 4096)                       # user, writable
    space.map(0x0000_4000_0000, 0x8000_0000, 2 << 20, page_size=2 << 20, writable=False)
    space.map(0x0080_0000_0000, 0x1_0000_0000, 1 << 30, page_size=1 << 30, user=False)
    pt, i = space.entry(0x7F00_0000_1000, Level.PT)
    assert pt.read_u64(8 * i) == 0x1234_5067          # P RW US A D
    pd, i = space.entry(0x0000_4000_0000, Level.PD)
    assert pd.read_u64(8 * i) == 0x8000_00E5          # P US A D PS, not RW
    pdpt, i = space.entry(0x0080_0000_0000, Level.PDPT)
    assert pdpt.read_u64(8 * i) == 0x1_0000_00E3      # P RW A D PS, supervisor
    pml4 = space.root.read_u64(8 * 0xFE)               # 0x7F00_0000_1000 >> 39 = 0xFE
    assert pml4 & 0xFFF == 0x007 and pml4 >> 12 << 12 != 0   # P RW US, a table
    table = PasidTable(mem.alloc, 16)
    table.bind(space)
    assert table.buffer.read_u64(3 * 8) == space.root.addr | 1


def expected(space, va):
    """(fault, level, physical address, rw, us) the walker must report for ``va``."""
    fault, level, pa = reference_walk(space, va)
    if fault != Fault.NONE:
        return fault, level, None, None, None

    def allowed(**access):
        return int(reference_walk(space, va, **access)[0] == Fault.NONE)
    return Fault.NONE, None, pa, allowed(write=True, user=False), allowed(write=False, user=True)


def entry_addr(space, va, level):
    table, index = space.entry(va, level)
    return table.addr + 8 * index


@pytest.mark.parametrize("seed", [1, 2])
def test_walks_agree_with_the_reference(seed):
    rng = random.Random(seed)
    mem = FlatMemory()
    table, walks = build(mem, rng)
    # Some walks that would succeed get one table read answered with a bus error instead.
    failing = {}
    for n, (pasid, va, space) in enumerate(walks):
        if space is not None and expected(space, va)[0] == Fault.NONE and rng.random() < 0.1:
            levels = [lv for lv in (Level.PML4, Level.PDPT, Level.PD, Level.PT)
                      if _reaches(space, va, lv)]
            level = rng.choice(levels + [0])
            failing[n] = (level, table.buffer.addr + 8 * pasid if level == 0 else
                          entry_addr(space, va, level))
    dut = PageWalker()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    fail_addr = [None]
    seen = set()
    cached = 0
    done = []

    memory = table_memory(dut, mem, rng, fail_addr)

    async def host(ctx):
        nonlocal cached
        set_pasid_tables(ctx, dut, table)
        for n, (pasid, va, space) in enumerate(walks):
            fault, level, pa, rw, us = expected(space, va)
            if n in failing:
                (level, fail_addr[0]), fault = failing[n], Fault.READ_ERROR
            else:
                fail_addr[0] = None
            # A walk with an injected bus error is fresh, so it reads every level from memory;
            # the others may use the recent paths (tables do not change here).
            fresh = n in failing or n % 5 == 0
            ctx.set(dut.request.payload.pasid, pasid)
            ctx.set(dut.request.payload.vaddr, va)
            ctx.set(dut.request.payload.fresh, fresh)
            ctx.set(dut.request.valid, 1)
            await ctx.tick().until(dut.request.ready)
            ctx.set(dut.request.valid, 0)
            ctx.set(dut.result.ready, 1)
            result, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
            ctx.set(dut.result.ready, 0)
            got = Fault(result.fault)
            seen.add(got)
            cached += result.cached
            what = f"walk {n}: {va:#x} in PASID {pasid}"
            assert not (fresh and result.cached), f"{what}: a fresh walk used a cached path"
            assert got == fault, f"{what}: {got.name}, not {fault.name}"
            if fault == Fault.NONE:
                size = 1 << (12 + 9 * (result.level - 1))
                assert (result.frame << 12) | (va & (size - 1)) == pa, what
                assert (result.rw, result.us) == (rw, us), what
            else:
                assert result.level == level, f"{what}: level {result.level}, not {level}"
        done.append(True)

    sim.add_testbench(memory, background=True)
    sim.add_testbench(host)
    run_bounded(sim, 200e-6)
    assert done
    assert cached > 10, f"only {cached} walks used a recent path"
    assert seen == {Fault.NONE, Fault.NOT_PRESENT, Fault.NO_PASID, Fault.RESERVED,
                    Fault.READ_ERROR}, seen


def _reaches(space, va, level):
    """Whether a walk of ``va`` reads an entry at ``level``."""
    try:
        space.entry(va, level)
        return True
    except (KeyError, ValueError):
        return False


def test_each_function_walks_its_own_tables():
    rng = random.Random(7)
    pasid = 5
    mems, tables, spaces = function_spaces(pasid)
    # One virtual address, three physical ones: the functions' address spaces are unrelated.
    assert len({spaces[f].translate(VA) for f in range(3)}) == 3
    # (function, page, fresh, whether the walk may use a recent path). Two paths are kept:
    # function 1's walk of VA must not take function 0's path to the same page table (same
    # PASID, same address bits 47:21), but a later walk of each function takes its own.
    script = [(0, 0, True, 0), (1, 0, False, 0), (0, 1, False, 1), (2, 0, False, 0),
              (1, 2, False, 1), (3, 0, False, 0)]
    script += [(rng.randrange(4), rng.randrange(8), rng.random() < 0.2, None)
               for _ in range(60)]
    dut = PageWalker()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    reads = []
    done = []

    async def host(ctx):
        set_pasid_tables(ctx, dut, tables)         # function 3: no PASID table
        for n, (function, page, fresh, cached) in enumerate(script):
            va = VA + 4096 * page + rng.randrange(4096)
            del reads[:]
            ctx.set(dut.request.payload.function, function)
            ctx.set(dut.request.payload.pasid, pasid)
            ctx.set(dut.request.payload.vaddr, va)
            ctx.set(dut.request.payload.fresh, fresh)
            ctx.set(dut.request.valid, 1)
            await ctx.tick().until(dut.request.ready)
            ctx.set(dut.request.valid, 0)
            for _ in range(rng.randrange(3)):          # the result held back at random
                await ctx.tick()
            ctx.set(dut.result.ready, 1)
            result, = await ctx.tick().sample(dut.result.payload).until(dut.result.valid)
            ctx.set(dut.result.ready, 0)
            what = f"walk {n}: {va:#x} in function {function}'s PASID {pasid}"
            if function == 3:
                assert (Fault(result.fault), result.level) == (Fault.NO_PASID, 0), what
                assert reads == [], f"{what}: read {reads} without a PASID table"
                continue
            assert Fault(result.fault) == Fault.NONE, f"{what}: {Fault(result.fault).name}"
            assert (result.frame << 12) | (va & 0xFFF) == spaces[function].translate(va), what
            assert {f for f, _ in reads} == {function}, f"{what}: reads {reads}"
            if cached is not None:
                assert result.cached == cached, f"{what}: cached {result.cached}"
            if not result.cached:
                pasid_entry = tables[function].buffer.addr + 8 * pasid
                assert reads[0] == (function, pasid_entry), f"{what}: first read {reads[0]}"
                assert len(reads) == 5, what
            else:
                assert len(reads) == 1, f"{what}: used a recent path, but read {reads}"
        done.append(True)

    sim.add_testbench(table_memory(dut, mems, rng, [None], reads), background=True)
    sim.add_testbench(host)
    run_bounded(sim, 100e-6)
    assert done
