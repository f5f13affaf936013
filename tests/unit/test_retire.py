"""Retire against fake write engines (random stalls and latencies on every client) and a
fake data mover: CSTs, interrupts and the read index in ring order, checked against the host
memory, and a datapath error ending its context with an error report (ERR_FN, log entry,
CST with er) that holds what follows."""

import random

from hdl.sdxi.retire import CST_WRITERS, Retire
from sdxi_defs.errors import ErrClass, ErrStep, WriteError
from sdxi_defs.ram_map import RamLayout
from sdxi_defs.structures import CXT_STS
from sim.reference_model import HostMemory

from .pcie_helpers import new_sim, run, transfer, wait_for

LAY = RamLayout(64)
RAM_BITS = (LAY.bytes - 1).bit_length()
ROWS = (1 << RAM_BITS) // 64
STS = [0x10_0000 + 0x1000 * c for c in range(4)]       # each context's CXT_STS
CST = 0x20_0000                                         # CSTs, 32 bytes apart


class Bench:
    def __init__(self, seed):
        self.dut = Retire(contexts=4, vectors=4, data_width=512, ram_rows=ROWS,
                          ram_addr_bits=RAM_BITS, layout=LAY)
        self.rng = random.Random(seed)
        self.ram = bytearray(1 << RAM_BITS)
        self.ram[LAY.stage:LAY.stage + 64] = LAY.constants_row().to_bytes(64, "little")
        self.host = HostMemory()
        self.writes = []            # (cycle confirmed, address, bytes)
        self.cycle = 0
        self.raised = []            # (cycle, vector)
        self.reports = []
        self.failures = []

    def client(self, req, st):
        """One write client: one request at a time, confirmed after a random delay."""
        async def process(ctx):
            pending, due = None, 0
            async for _, _, valid, ready, p in ctx.tick().sample(req.valid, req.ready,
                                                                  req.payload):
                ctx.set(st.valid, 0)
                if pending is None:
                    if valid and ready:
                        pending, due = (p.addr, p.length, p.ram_addr), self.rng.randrange(1, 12)
                        ctx.set(req.ready, 0)
                    else:
                        ctx.set(req.ready, self.rng.random() < 0.5)
                    continue
                due -= 1
                if due:
                    continue
                addr, length, ram = pending
                data = bytes(self.ram[ram:ram + length])
                self.host.write(addr, data)
                self.writes.append((self.cycle, addr, data))
                ctx.set(st.payload.error, WriteError.OK)
                ctx.set(st.valid, 1)
                pending = None
        return process

    async def side(self, ctx):
        dut = self.dut
        async for _, _, en, row, data, raised, rep_valid, rep_ready, rep, failure, cxt in \
                ctx.tick().sample(dut.ram_wr.en, dut.ram_wr.row, dut.ram_wr.data,
                                  dut.raise_vectors, dut.error_report.valid,
                                  dut.error_report.ready, dut.error_report.payload,
                                  dut.failure.valid, dut.failure.payload):
            self.cycle += 1
            if en and ctx.get(dut.ram_wr_taken):
                for b in range(64):
                    if en >> b & 1:
                        self.ram[row * 64 + b] = data >> (8 * b) & 0xFF
            ctx.set(dut.ram_wr_taken, self.rng.random() < 0.7)
            for v in range(4):
                if raised >> v & 1:
                    self.raised.append((self.cycle, v))
            # The error completion unit: a report is held until it is done.
            if rep_valid and rep_ready:
                self.reports.append(rep)
            ctx.set(dut.error_report.ready, self.rng.random() < 0.1)
            if failure:
                self.failures.append(cxt.cxt)

    async def mover(self, ctx, results):
        """Results in order, each offered after a random delay."""
        res = self.dut.results
        for error, buffer in results:
            await ctx.tick().repeat(self.rng.randrange(1, 5))
            ctx.set(res.payload.error, error)
            ctx.set(res.payload.buffer, buffer)
            await transfer(ctx, res, max_cycles=5000, what="result taken")

    async def send(self, ctx, records):
        rq = self.dut.records
        for r in records:
            await ctx.tick().repeat(self.rng.randrange(1, 4))
            p = rq.payload
            ctx.set(p.cxt, r["cxt"])
            ctx.set(p.sts, STS[r["cxt"]])
            ctx.set(p.index, r["index"])
            ctx.set(p.mover, r.get("mover", 0))
            ctx.set(p.cst, int("cst" in r))
            ctx.set(p.csb, r.get("cst", 0))
            ctx.set(p.intr, int("vector" in r))
            ctx.set(p.vector, r.get("vector", 0))
            await transfer(ctx, rq, max_cycles=5000, what="record taken")

    def simulate(self, tb, name, results):
        dut = self.dut
        sim = new_sim(dut)
        for c in range(CST_WRITERS):
            sim.add_testbench(self.client(dut.cst_req[c], dut.cst_status[c]), background=True)
        sim.add_testbench(self.client(dut.ri_req, dut.ri_status), background=True)
        sim.add_testbench(self.side, background=True)

        async def mover(ctx):
            await self.mover(ctx, results)
        sim.add_testbench(mover, background=True)
        sim.add_testbench(tb)
        run(sim, name)

    def read_index(self, cxt):
        return CXT_STS.decode(self.host.read(STS[cxt], 16))["read_index"]

    def confirmed(self, addr, length):
        """The cycle the last write covering [addr, addr + length) was confirmed."""
        return max(c for c, a, d in self.writes if a < addr + length and addr < a + len(d))


def test_csts_interrupts_and_the_read_index_in_ring_order():
    bench = Bench(1)
    records, results = [], []
    for i in range(40):
        r = {"cxt": 1, "index": 100 + i, "mover": int(i % 3 != 0)}
        if i % 4 == 1:
            r["cst"] = CST + 32 * i
        if i in (9, 30):
            r["vector"] = 2
        if r["mover"]:
            results.append((0, 0))
        records.append(r)
    for r in records:
        if "cst" in r:
            bench.host.write(r["cst"], (1).to_bytes(8, "little"))      # signal = 1 before

    async def tb(ctx):
        await bench.send(ctx, records)
        await wait_for(ctx, lambda: ctx.get(bench.dut.idle) and bench.read_index(1) == 140,
                       max_cycles=20_000, what="all retired")

    bench.simulate(tb, "retire_in_order", results)
    for r in records:
        if "cst" in r:
            flags = int.from_bytes(bench.host.read(r["cst"] + 8, 4), "little")
            assert flags >> 31 == 0, "er = 0"
            assert bench.host.read(r["cst"], 8) == bytes(8), "signal cleared"
            assert bench.confirmed(r["cst"], 8) > bench.confirmed(r["cst"] + 8, 4), \
                "the signal after the flags"
    # Each interrupt after every earlier CST was confirmed.
    raised = [c for c, v in bench.raised if v == 2]
    assert len(raised) == 2
    for cycle, index in zip(raised, (9, 30)):
        for r in records[:index]:
            if "cst" in r:
                assert bench.confirmed(r["cst"], 8) < cycle
    assert bench.failures == [] and bench.reports == []


def test_a_datapath_error_ends_its_context_and_drops_what_follows():
    bench = Bench(2)
    records = [{"cxt": 2, "index": 7, "mover": 1, "cst": CST},
               {"cxt": 2, "index": 8, "mover": 1, "cst": CST + 32},
               {"cxt": 3, "index": 50, "mover": 1, "cst": CST + 64}]
    results = [(0, 0), (ErrClass.READ_UR, 0), (0, 0)]
    for csb in (CST, CST + 32, CST + 64, CST + 96):
        bench.host.write(csb, (1).to_bytes(8, "little"))

    async def tb(ctx):
        await bench.send(ctx, records[:2])
        await wait_for(ctx, lambda: bench.failures, max_cycles=20_000, what="failure")
        await bench.send(ctx, [{"cxt": 2, "index": 9, "mover": 0, "cst": CST + 96}])
        await bench.send(ctx, records[2:])
        await wait_for(ctx, lambda: ctx.get(bench.dut.idle) and bench.read_index(3) == 51,
                       max_cycles=20_000, what="context 3 retired")

    bench.simulate(tb, "retire_failure", results)
    assert bench.failures == [2]
    assert bench.read_index(2) == 8, "the read index stops at the failed descriptor"
    assert int.from_bytes(bench.host.read(CST + 8, 4), "little") >> 31 == 0
    assert bench.host.read(CST + 96, 8) == (1).to_bytes(8, "little"), "dropped: untouched"
    assert len(bench.reports) == 1
    rep = bench.reports[0]
    assert (rep.stop, rep.sts, rep.cst, rep.csb) == (1, STS[2], 1, CST + 32)
    found = rep.found
    assert (found.function, found.cxt, found.index, found.err_class, found.step, found.bv,
            found.div) == (0, 2, 8, ErrClass.READ_UR, ErrStep.DATA_BUFFER, 1, 1)
