"""ErrorLogWriter against a fake write engine and RAM with random stalls: entries land in the
host's log ring in the order the spec's consumer needs (body, then the header with vl), and
the registers move as docs/spec-choices.md ("Errors") says, for a full, disabled, failing and
wrapping log."""

import random

import pytest

from hdl.sdxi.error_log import ErrorLogWriter
from sdxi_defs.errors import WriteError
from sdxi_defs.regmap import REGISTERS_BY_NAME
from sdxi_defs.structures import ERRLOG_HD_ENT
from sim.reference_model import HostMemory

from .pcie_helpers import new_sim, run, transfer

ROW = 64
STAGING = 0x1000
ERR_CFG = REGISTERS_BY_NAME["ERR_CFG"]
ERR_STS = REGISTERS_BY_NAME["ERR_STS"]
LOG_RING = 0x8000_0000


def entry(cxt, index):
    return ERRLOG_HD_ENT.encode(vl=1, step=7, type=0x7F7, cv=1, div=1, cxt_num=cxt,
                                dsc_index=index, err_class=0x21)


class Bench:
    def __init__(self, seed, *, fail_at=None, functions=1):
        self.dut = ErrorLogWriter(data_width=512, ram_rows=128, ram_addr_bits=13,
                                  staging=STAGING, functions=functions)
        self.rng = random.Random(seed)
        self.ram = bytearray(1 << 13)
        self.host = HostMemory()
        self.order = []                    # (address, length) of each host write, in order
        self.fail_at = fail_at             # host address whose write fails
        # Function f's registers (its ring 64 KiB after the one before); function 0's as ``regs``.
        self.functions = [dict(err_ctl=1,
                               err_cfg=ERR_CFG.encode(en=1, sz=0, ptr=(LOG_RING >> 12) + 16 * f),
                               err_wrt=0, err_rd=0, err_sts=0) for f in range(functions)]
        self.regs = self.functions[0]
        self.raised = [0] * functions

    async def engine(self, ctx):
        """The write engine and the RAM's side port, both with random stalls."""
        dut = self.dut
        queue = []
        async for _, _, valid, p, en, row, wdata in ctx.tick().sample(
                dut.wr_req.valid, dut.wr_req.payload, dut.ram_wr.en, dut.ram_wr.row,
                dut.ram_wr.data):
            ctx.set(dut.wr_status.valid, 0)
            if en and ctx.get(dut.ram_wr_taken):
                self.ram[row * ROW:(row + 1) * ROW] = wdata.to_bytes(ROW, "little")
            ctx.set(dut.ram_wr_taken, self.rng.random() < 0.6)
            if queue and self.rng.random() < 0.3:
                addr, length, ram = queue.pop(0)
                failed = addr == self.fail_at
                if not failed:
                    self.host.write(addr, self.ram[ram:ram + length])
                    self.order.append((addr, length))
                ctx.set(dut.wr_status.payload.error,
                        WriteError.TIMEOUT if failed else WriteError.OK)
                ctx.set(dut.wr_status.valid, 1)
            if valid and ctx.get(dut.wr_req.ready):
                queue.append((p.addr, p.length, p.ram_addr))
            ctx.set(dut.wr_req.ready, self.rng.random() < 0.5)

    async def registers(self, ctx):
        """The register file's side: ERR_WRT loads, ERR_STS bits set."""
        dut = self.dut
        fns = range(len(self.functions))
        for f in fns:
            for name, value in self.functions[f].items():
                ctx.set(getattr(dut, name)[f], value)
        async for _, _, loads, value, raised, *sts_set in ctx.tick().sample(
                dut.err_wrt_load, dut.err_wrt_value, dut.raise_vector0,
                *(dut.err_sts_set[f] for f in fns)):
            for f in fns:
                regs = self.functions[f]
                if loads >> f & 1:
                    regs["err_wrt"] = value
                regs["err_sts"] |= sts_set[f]
                self.raised[f] += raised >> f & 1
                for name, v in regs.items():
                    ctx.set(getattr(dut, name)[f], v)

    async def log(self, ctx, raw, function=0):
        req = self.dut.req
        ctx.set(req.payload.entry.as_value(), int.from_bytes(raw, "little"))
        ctx.set(req.payload.function, function)
        await transfer(ctx, req, max_cycles=5000, what="entry settled")

    def simulate(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_testbench(self.engine, background=True)
        sim.add_testbench(self.registers, background=True)
        sim.add_testbench(tb)
        run(sim, name)


def test_entries_fill_the_ring_then_overflow():
    bench = Bench(1)
    entries = 32                        # ERR_CFG.sz = 0

    async def tb(ctx):
        for i in range(entries):
            await bench.log(ctx, entry(3, 100 + i))
        await bench.log(ctx, entry(3, 999))              # the ring is full: discarded

    bench.simulate(tb, "error_log_fill")
    for i in range(entries):
        assert bench.host.read(LOG_RING + 64 * i, 64) == entry(3, 100 + i), i
    # Each entry's body, then its first 8 bytes (with vl), after the body was confirmed.
    expected = []
    for i in range(entries):
        expected += [(LOG_RING + 64 * i + 8, 56), (LOG_RING + 64 * i, 8)]
    assert bench.order == expected
    assert bench.regs["err_wrt"] == entries
    assert bench.regs["err_sts"] == ERR_STS.encode(sts=1, ovf=1)
    assert bench.raised == [1], "vector 0 once: only while ERR_STS.sts was 0"


@pytest.mark.parametrize("case", ["disabled", "write_fails", "wraps"])
def test_an_entry_that_cannot_be_logged_sets_its_bit(case):
    bench = Bench(2, fail_at=LOG_RING + 8 if case == "write_fails" else None)
    if case == "disabled":
        bench.regs["err_cfg"] = ERR_CFG.encode(en=0, ptr=LOG_RING >> 12)
    if case == "wraps":
        # The ring's 128 entries (8 KiB) would run past 2^64 - 1.
        bench.regs["err_cfg"] = ERR_CFG.encode(en=1, sz=2, ptr=(1 << 52) - 1)

    async def tb(ctx):
        await bench.log(ctx, entry(1, 5))

    bench.simulate(tb, f"error_log_{case}")
    assert bench.order == [], "nothing of it reaches the host"
    assert bench.regs["err_wrt"] == 0
    bit = "ovf" if case == "disabled" else "err"
    assert bench.regs["err_sts"] == ERR_STS.encode(sts=1, **{bit: 1})


def test_each_function_has_its_own_log():
    """Entries for functions 1 and 0, interleaved: each lands in its own function's ring and
    moves only that function's ERR_WRT, ERR_STS and vector 0."""
    bench = Bench(3, functions=2)

    async def tb(ctx):
        for i in range(3):
            await bench.log(ctx, entry(1, 10 + i), function=1)
            if i < 2:
                await bench.log(ctx, entry(0, 20 + i), function=0)

    bench.simulate(tb, "error_log_functions")
    ring1 = LOG_RING + (16 << 12)
    assert [bench.host.read(ring1 + 64 * i, 64) for i in range(3)] == \
        [entry(1, 10 + i) for i in range(3)]
    assert [bench.host.read(LOG_RING + 64 * i, 64) for i in range(2)] == \
        [entry(0, 20 + i) for i in range(2)]
    assert [f["err_wrt"] for f in bench.functions] == [2, 3]
    assert [f["err_sts"] for f in bench.functions] == [ERR_STS.encode(sts=1)] * 2
    assert bench.raised == [1, 1]
