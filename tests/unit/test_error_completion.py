"""ErrorCompletion against a fake write engine and a log sink with random stalls: CXT_STS,
then the log entry, then the CST's flags and signal, each after the one before is done."""

import random

import pytest

from hdl.sdxi.error_completion import ErrorCompletion
from sdxi_defs.errors import ERRLOG_TYPE, ErrReaction, WriteError
from sdxi_defs.ram_map import RamLayout
from sdxi_defs.structures import ERRLOG_HD_ENT, CxtState

from .pcie_helpers import new_sim, run, transfer

LAY = RamLayout(64)
STS, CSB = 0x9000, 0xA000


class Bench:
    def __init__(self, seed, fail=False, context_bits=16):
        self.dut = ErrorCompletion(ram_addr_bits=14, row_bytes=64, context_bits=context_bits)
        self.rng = random.Random(seed)
        self.fail = fail
        self.events = []          # ("write", addr, length, ram) / ("log", cxt) in order
        self.entries = []         # the log entries, as bytes
        self.functions = []       # the function whose log each entry is for

    async def engine(self, ctx):
        dut = self.dut
        pending, due = None, 0
        async for _, _, valid, ready, p, l_valid, l_ready, entry, function in ctx.tick().sample(
                dut.wr_req.valid, dut.wr_req.ready, dut.wr_req.payload,
                dut.log.valid, dut.log.ready, dut.log.payload.entry.as_value(),
                dut.log.payload.function):
            ctx.set(dut.wr_status.valid, 0)
            if l_valid and l_ready:
                raw = entry.to_bytes(ERRLOG_HD_ENT.size, "little")
                self.entries.append(raw)
                self.functions.append(function)
                self.events.append(("log", ERRLOG_HD_ENT.decode(raw)["cxt_num"]))
            ctx.set(dut.log.ready, self.rng.random() < 0.4)
            if pending is None:
                if valid and ready:
                    pending, due = ("write", p.addr, p.length, p.ram_addr), self.rng.randrange(1, 8)
                    ctx.set(dut.wr_req.ready, 0)
                else:
                    ctx.set(dut.wr_req.ready, self.rng.random() < 0.5)
                continue
            due -= 1
            if due == 0:
                self.events.append(pending)
                ctx.set(dut.wr_status.payload.error,
                        WriteError.TIMEOUT if self.fail else WriteError.OK)
                ctx.set(dut.wr_status.valid, 1)
                pending = None

    async def report(self, ctx, port, *, cxt, stop, cst, notify=None):
        r = self.dut.reports[port]
        ctx.set(r.payload.notify, notify is not None)
        ctx.set(r.payload.notify_function, notify or 0)
        ctx.set(r.payload.found.as_value(), 0)
        for name, value in dict(FOUND, cxt=cxt).items():
            ctx.set(getattr(r.payload.found, name), value)
        ctx.set(r.payload.stop, stop)
        ctx.set(r.payload.sts, STS)
        ctx.set(r.payload.cst, cst)
        ctx.set(r.payload.csb, CSB)
        await transfer(ctx, r, max_cycles=2000, what="report done")
        self.events.append(("done", cxt))

    def simulate(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_testbench(self.engine, background=True)
        sim.add_testbench(tb)
        run(sim, name)


STATE = ("write", STS, 1, LAY.states + CxtState.ERR_FN)
FLAGS = ("write", CSB + 8, 4, LAY.flags_err)
# What a report says; its entry names the descriptor but no operand (bv = 0 hides buf).
FOUND = dict(function=0, step=3, sub_step=2, err_class=0x21, div=1, index=77, bv=0, buf=5)


def expected_entry(cxt):
    return ERRLOG_HD_ENT.encode(vl=1, type=ERRLOG_TYPE, step=3, sub_step=2, err_class=0x21,
                                cv=1, re=ErrReaction.CONTEXT_STOPPED, cxt_num=cxt, div=1,
                                dsc_index=77)
SIGNAL = ("write", CSB, 8, LAY.zero)


@pytest.mark.parametrize("stop,cst", [(1, 1), (1, 0), (0, 0)])
def test_each_part_follows_the_one_before(stop, cst):
    bench = Bench(stop * 2 + cst)

    async def tb(ctx):
        await bench.report(ctx, 0, cxt=5, stop=stop, cst=cst)

    bench.simulate(tb, f"error_completion_{stop}{cst}")
    expected = ([STATE] if stop else []) + [("log", 5)] + ([FLAGS, SIGNAL] if cst else [])
    assert bench.events == expected + [("done", 5)]
    assert bench.entries == [expected_entry(5)], "the entry is made from the report, in full"


def test_failed_writes_do_not_hold_up_the_rest_and_port_0_comes_first():
    bench = Bench(9, fail=True)

    async def both(ctx):
        await bench.report(ctx, 1, cxt=2, stop=1, cst=1)

    async def tb(ctx):
        await bench.report(ctx, 0, cxt=1, stop=1, cst=1)

    sim = new_sim(bench.dut)
    sim.add_testbench(bench.engine, background=True)
    sim.add_testbench(both)
    sim.add_testbench(tb)
    run(sim, "error_completion_ports")
    first = [STATE, ("log", 1), FLAGS, SIGNAL, ("done", 1)]
    second = [STATE, ("log", 2), FLAGS, SIGNAL, ("done", 2)]
    assert bench.events == first + second


def test_an_rkey_error_is_logged_by_both_functions():
    """Contexts numbered with 7 bits per function: context 5 of function 1 is 133. Its
    function's log gets the full entry (context 5), then function 2's an informative one with
    no context, descriptor or operand."""
    bench = Bench(11, context_bits=7)

    async def tb(ctx):
        await bench.report(ctx, 1, cxt=(1 << 7) + 5, stop=1, cst=1, notify=2)

    bench.simulate(tb, "error_completion_notify")
    assert bench.events == [STATE, ("log", 5), FLAGS, SIGNAL, ("log", 0), ("done", 133)]
    assert bench.functions == [1, 2]
    assert bench.entries[0] == expected_entry(5)
    assert bench.entries[1] == ERRLOG_HD_ENT.encode(
        vl=1, type=ERRLOG_TYPE, step=3, sub_step=2, err_class=0x21, cv=0,
        re=ErrReaction.INFORMATIVE, cxt_num=0, div=0, dsc_index=0)
