"""Translation unit (TLB, walker and table reader) over a model of its DMA read client, with
the same PASID in several PCIe functions, each with its own PASID table in its own view of
host memory: one virtual address translates to a different page in each function, every table
read goes out with the lookup's function (``rd_req.payload.function``) and is answered from
that function's memory, and no cached translation, path or table line crosses functions."""

import random

from amaranth.sim import Simulator

from sdxi_defs.errors import ReadError
from sdxi_defs.page_tables import Fault
from hdl.mmu.translation_unit import TranslationUnit

from .mmu_helpers import VA, function_spaces, reference_walk, run_bounded, set_pasid_tables


ROW = 32                       # bytes per RAM row on the 256-bit datapath
RAM_ROWS = 16
LANDING = 3 * ROW
PASID = 5


def read_engine(tu, mems, rng, requests):
    """A testbench standing in for the DMA read engine: takes ``tu.rd_req`` at random, writes
    the row read from the request's function's memory into the RAM (seen on ``ram_snoop``) in
    one or two pieces after a random delay, then sends the status. Other rows are written
    meanwhile, as other clients' reads would. Each request is appended to ``requests`` as
    (function, address)."""
    async def idle_clock(ctx):
        noise = rng.random() < 0.3
        ctx.set(tu.ram_snoop.row, rng.choice([r for r in range(RAM_ROWS) if r != LANDING // ROW]))
        ctx.set(tu.ram_snoop.data, rng.getrandbits(8 * ROW))
        ctx.set(tu.ram_snoop.en, rng.getrandbits(ROW) if noise else 0)
        await ctx.tick()

    async def engine(ctx):
        while True:
            ready = rng.random() < 0.6
            ctx.set(tu.rd_req.ready, ready)
            valid, p = ctx.get(tu.rd_req.valid), ctx.get(tu.rd_req.payload)
            await idle_clock(ctx)
            if not (valid and ready):
                continue
            ctx.set(tu.rd_req.ready, 0)
            requests.append((p.function, p.addr))
            assert (p.addr % ROW, p.length, p.ram_addr) == (0, ROW, LANDING), p
            mem = mems.get(p.function)
            off = p.addr - mem.base if mem else None
            error = off is None or not 0 <= off <= len(mem.bytes) - ROW
            for _ in range(rng.randrange(4)):
                await idle_clock(ctx)
            if not error:
                row = int.from_bytes(mem.bytes[off:off + ROW], "little")
                first = rng.getrandbits(ROW)
                for en in (first, ~first & ((1 << ROW) - 1)):
                    ctx.set(tu.ram_snoop.row, LANDING // ROW)
                    ctx.set(tu.ram_snoop.data, row)
                    ctx.set(tu.ram_snoop.en, en)
                    await ctx.tick()
            ctx.set(tu.ram_snoop.en, 0)
            ctx.set(tu.rd_status.payload.id, p.id)
            ctx.set(tu.rd_status.payload.error, ReadError.UR if error else ReadError.OK)
            ctx.set(tu.rd_status.valid, 1)
            await ctx.tick()
            ctx.set(tu.rd_status.valid, 0)
    return engine


async def burst(ctx, tu, lookups, rng, *, stall=0.0):
    """Offer ``lookups`` ((function, vaddr, write) in PASID ``PASID``, user accesses) back to
    back, taking the results (refusing each with probability ``stall``); return them as
    (fault, paddr or None)."""
    results, pending = [], list(lookups)
    while len(results) < len(lookups):
        if pending:
            function, va, write = pending[0]
            ctx.set(tu.lookup.payload.function, function)
            ctx.set(tu.lookup.payload.pasid, PASID)
            ctx.set(tu.lookup.payload.vaddr, va)
            ctx.set(tu.lookup.payload.write, write)
            ctx.set(tu.lookup.payload.user, 1)
        ctx.set(tu.lookup.valid, bool(pending))
        ready = rng.random() >= stall
        ctx.set(tu.result.ready, ready)
        _, _, taken, valid, out = await ctx.tick().sample(tu.lookup.ready, tu.result.valid,
                                                          tu.result.payload)
        if pending and taken:
            pending.pop(0)
        if valid and ready:
            fault = Fault(out.fault)
            results.append((fault, out.paddr if fault == Fault.NONE else None))
    ctx.set(tu.lookup.valid, 0)
    return results


def test_functions_translate_through_their_own_tables():
    rng = random.Random(11)
    mems, tables, spaces = function_spaces(PASID)
    tu = TranslationUnit(data_width=8 * ROW, ram_rows=RAM_ROWS,
                         ram_addr_bits=(RAM_ROWS * ROW - 1).bit_length(), landing=LANDING,
                         sets=2, ways=2)
    sim = Simulator(tu)
    sim.add_clock(1e-8)
    requests = []
    done = []

    def want(function, va, write):
        fault, _, pa = reference_walk(spaces.get(function), va, write=write, user=True)
        return fault, pa

    def line(addr):
        return addr & ~(ROW - 1)

    async def host(ctx):
        set_pasid_tables(ctx, tu, tables)
        # One lookup at a time: VA in each function. Each walk's first read is its own
        # function's PASID table entry, and all its reads carry its function.
        for function in range(4):
            del requests[:]
            got, = await burst(ctx, tu, [(function, VA + 8, 0)], rng)
            assert got == want(function, VA + 8, 0), f"function {function}: {got}"
            if function == 3:
                assert got[0] == Fault.NO_PASID and requests == []
                continue
            assert requests[0] == (function, line(tables[function].buffer.addr + 8 * PASID))
            assert {f for f, _ in requests} == {function}, requests
        assert len({want(f, VA, 0)[1] for f in range(3)}) == 3
        # Many lookups mixed, most missing in a TLB of 4 entries, results held back at
        # random: every answer from the lookup's own function's tables.
        lookups = [(rng.randrange(4), VA + 4096 * rng.randrange(8) + rng.randrange(4096),
                    int(rng.random() < 0.3)) for _ in range(200)]
        results = await burst(ctx, tu, lookups, rng, stall=0.3)
        for n, (lookup, got) in enumerate(zip(lookups, results)):
            assert got == want(*lookup), f"lookup {n} {lookup}: {got}, not {want(*lookup)}"
        assert {f for f, _ in requests} == {0, 1, 2}
        done.append(True)

    sim.add_testbench(read_engine(tu, mems, rng, requests), background=True)
    sim.add_testbench(host)
    run_bounded(sim, 500e-6)
    assert done
