"""ContextLoader against a fake read engine (reads taken and answered at random times, some
failing) and a fake TLB (answers late, some pages refused): the entry the engine builds from
its updates is the context's tables as SDXI lays them out, the read index's slot is right, and
every bad table, failed read and refused translation ends the load with its step and class."""

import random

import pytest

from hdl.config import EngineConfig
from hdl.sdxi.context_loader import ContextLoader
from sdxi_defs.errors import ErrClass, ErrStep, ErrSubStep, READ_ERROR_CLASS, FAULT_CLASS
from sdxi_defs.errors import ReadError
from sdxi_defs.page_tables import Fault
from sdxi_defs.structures import CXT_CTL, CXT_L1_ENT, CXT_L2_ENT, CXT_STS, CxtState
from sim.reference_model import HostMemory

from .pcie_helpers import new_sim, run

STRUCT_RAM = 0x1F00
ROW = 64
L2 = 0x10_0000
FRAME_OFFSET = 0x7000_0000          # the fake TLB maps a virtual page this far up
CFG = EngineConfig()
ENTRY_GROUPS = {
    "l1": ("akey", "akey_sz", "max_buffer", "opb", "pv", "pasid", "user"),
    "ctl": ("ring", "ring_sz", "qos"),
    "sts_addr": ("sts",), "wi_addr": ("wi_ptr",), "wi_fault": ("wi_fault",),
    "sts": ("read_index", "state"), "slot": ("slot",),
}


class Context:
    """One context's tables in host memory, with what may be wrong with them."""

    def __init__(self, rng, mem, cxt, *, pv=0, flaw=None):
        self.cxt, self.pv, self.flaw = cxt, pv, flaw
        l1 = 0x20_0000 + 0x1000 * (cxt >> 7)
        ctl = 0x30_0000 + 64 * cxt
        sts = 0x40_0000 + 16 * cxt
        wi = 0x50_0000 + 8 * cxt
        self.ring = 0x60_0000 + (rng.getrandbits(20) << 6)
        self.ring_sz = rng.choice([1024, 1536, 4096, 5000, 1024 << CFG.max_ds_ring_sz])
        self.read_index = rng.choice([0, 5, 1023, rng.getrandbits(40), rng.getrandbits(64)])
        self.akey = rng.getrandbits(40) << 12
        self.akey_sz = rng.randrange(CFG.max_akey_sz + 1)
        self.opb = rng.getrandbits(32)
        self.pasid = rng.getrandbits(20)
        self.pr = rng.randrange(2)
        self.max_buffer = rng.randrange(12)
        self.qos = rng.randrange(4)
        self.state = rng.choice([CxtState.RUN, CxtState.STOP_SW])
        # pv = 1: the structures' addresses are virtual, their frames FRAME_OFFSET up.
        self.sts_addr, self.wi_addr = sts, wi
        ring_sz, l2_vl, l1_vl, ctl_vl = self.ring_sz, 1, 1, 1
        akey_sz = self.akey_sz
        if flaw == "l2_invalid":
            l2_vl = 0
        if flaw == "l1_invalid":
            l1_vl = 0
        if flaw == "akey_sz":
            akey_sz = CFG.max_akey_sz + 1
        if flaw == "ctl_invalid":
            ctl_vl = 0
        if flaw == "ring_small":
            ring_sz = 1000
        if flaw == "ring_large":
            ring_sz = (1024 << CFG.max_ds_ring_sz) + 1
        ring = self.ring
        if flaw == "ring_wraps":
            ring = (1 << 64) - 64 * 16
        mem.write(L2 + 8 * (cxt >> 7), CXT_L2_ENT.encode(vl=l2_vl, lv01_ptr=l1 >> 12))
        mem.write(l1 + 32 * (cxt & 0x7F), CXT_L1_ENT.encode(
            vl=l1_vl, pv=pv, pr=self.pr, cxt_ctl_ptr=ctl >> 6, akey_sz=akey_sz,
            akey_ptr=self.akey >> 12, cxt_pasid=self.pasid, max_buffer=self.max_buffer,
            opb_000_enb=self.opb))
        mem.write(ctl, CXT_CTL.encode(vl=ctl_vl, qos=self.qos, ds_ring_ptr=ring >> 6,
                                      ds_ring_sz=ring_sz, cxt_sts_ptr=sts >> 4,
                                      write_index_ptr=wi >> 3))
        frame = FRAME_OFFSET if pv else 0
        mem.write(sts + frame, CXT_STS.encode(state=self.state, read_index=self.read_index))
        self.addresses = dict(l2=L2 + 8 * (cxt >> 7), l1=l1 + 32 * (cxt & 0x7F), ctl=ctl,
                              sts=sts + frame)

    def expected_entry(self, tables_only, before):
        frame = FRAME_OFFSET if self.pv else 0
        e = dict(before)
        e.update(akey=self.akey, akey_sz=self.akey_sz, max_buffer=self.max_buffer,
                 opb=self.opb, pv=self.pv, pasid=self.pasid, user=1 - self.pr, ring=self.ring,
                 ring_sz=self.ring_sz, qos=self.qos, wi_fault=0, sts=self.sts_addr + frame,
                 wi_ptr=self.wi_addr + frame)
        if not tables_only:
            e.update(read_index=self.read_index, state=self.state,
                     slot=self.read_index % self.ring_sz)
        return e


class Bench:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.mem = HostMemory()
        self.dut = ContextLoader(config=CFG, ram_addr_bits=15, struct_ram=STRUCT_RAM,
                                 row_bytes=ROW)
        self.read_errors = {}           # host address -> ReadError
        self.faults = {}                # virtual address -> Fault
        self.entry = {}

    async def load(self, ctx, cxt, tables_only):
        """Hand over one load, play engine and TLB until it is done; return the result."""
        dut, rng = self.dut, self.rng
        ctx.set(dut.cmd.payload.cxt, cxt)
        ctx.set(dut.cmd.payload.tables_only, tables_only)
        ctx.set(dut.cmd.valid, 1)
        read = xlate = None               # (clocks left, answer) in flight
        landing = None
        for clock in range(2000):
            ctx.set(dut.rd_req.ready, rng.random() < 0.5)
            ctx.set(dut.translate.ready, rng.random() < 0.5)
            ctx.set(dut.done.ready, rng.random() < 0.7)
            ctx.set(dut.rd_status.valid, 0)
            ctx.set(dut.translated.valid, 0)
            if read is not None and read[0] == 0:
                ctx.set(dut.rd_status.valid, 1)
                ctx.set(dut.rd_status.payload.error, read[1])
            if xlate is not None and xlate[0] == 0:
                ctx.set(dut.translated.valid, 1)
                ctx.set(dut.translated.payload.fault, xlate[1])
                ctx.set(dut.translated.payload.paddr, xlate[2])
            if landing is not None:
                ctx.set(dut.landed, landing)
                landing = None
            if ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready):
                cmd_taken = True
            else:
                cmd_taken = False
            if ctx.get(dut.rd_req.valid) and ctx.get(dut.rd_req.ready):
                assert read is None, "a second read before the first one's status"
                p = ctx.get(dut.rd_req.payload)
                assert p.ram_addr == STRUCT_RAM + (p.addr & (ROW - 1))
                error = self.read_errors.get(p.addr, ReadError.OK)
                read = [rng.randrange(1, 6), error, p.addr, p.length]
            if ctx.get(dut.translate.valid) and ctx.get(dut.translate.ready):
                assert xlate is None
                q = ctx.get(dut.translate.payload)
                assert (q.pasid, q.user) == (self.entry["pasid"], self.entry["user"]), \
                    "a translation in the context's space"
                fault = self.faults.get(q.vaddr, Fault.NONE)
                xlate = [rng.randrange(1, 6), fault, q.vaddr + FRAME_OFFSET]
            if ctx.get(dut.land):
                assert read is not None and read[0] == 0 and read[1] == ReadError.OK
                raw = self.mem.read(read[2], read[3])
                landing = int.from_bytes(raw, "little")
            if ctx.get(dut.done.valid) and ctx.get(dut.done.ready):
                result = ctx.get(dut.done.payload)
                await ctx.tick()
                return result
            update = ctx.get(dut.update)
            await ctx.tick()
            if cmd_taken:
                ctx.set(dut.cmd.valid, 0)
            for group, names in ENTRY_GROUPS.items():
                if getattr(update, group):
                    for name in names:
                        self.entry[name] = int(getattr(update.entry, name))
                    if group == "ctl":
                        self.entry["wi_fault"] = 0
            ctx.set(dut.entry, self.entry_const())
            for pending in (read, xlate):
                if pending is not None:
                    pending[0] -= 1
            if read is not None and read[0] < 0:
                read = None
            if xlate is not None and xlate[0] < 0:
                xlate = None
        raise AssertionError("the load did not end within 2000 clocks")

    def entry_const(self):
        return self.dut.entry.shape().const(self.entry)


NAMES = [name for names in ENTRY_GROUPS.values() for name in names]


def fresh_entry(rng):
    return {name: 0 for name in NAMES} | {"read_index": rng.getrandbits(64),
                                          "slot": rng.randrange(1024), "state": 9}


@pytest.mark.parametrize("seed", range(2))
def test_loads_build_the_entry(seed):
    """Good contexts, pv = 0 and pv = 1, all loads and refreshes: every field as laid out."""
    bench = Bench(seed)
    rng = bench.rng
    cxts = [0, 1, 127, 128, 129, 4095] + rng.sample(range(130, 4095), 6)
    loads = [(Context(rng, bench.mem, cxt, pv=i % 2), rng.random() < 0.3)
             for i, cxt in enumerate(cxts)]

    async def testbench(ctx):
        ctx.set(bench.dut.cxt_l2.ptr, L2 >> 12)
        ctx.set(bench.dut.max_akey_sz, CFG.max_akey_sz)
        for c, tables_only in loads:
            bench.entry = fresh_entry(rng)
            before = dict(bench.entry)
            ctx.set(bench.dut.entry, bench.entry_const())
            result = await bench.load(ctx, c.cxt, tables_only)
            assert result.ok and not result.sts_lost
            want = c.expected_entry(tables_only, before)
            assert bench.entry == want, {k: (bench.entry[k], want[k]) for k in want
                                         if bench.entry[k] != want[k]}

    sim = new_sim(bench.dut)
    sim.add_testbench(testbench)
    run(sim, "context_loader_loads")


FLAWS = {
    "l2_invalid": (ErrStep.CXT_L2, ErrSubStep.DVF, ErrClass.INVALID_ENTRY),
    "l1_invalid": (ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.INVALID_ENTRY),
    "akey_sz": (ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.BAD_FIELD),
    "ctl_invalid": (ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.INVALID_ENTRY),
    "ring_small": (ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.BAD_FIELD),
    "ring_large": (ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.BAD_FIELD),
    "ring_wraps": (ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.ADDRESS_WRAP),
}
READS = {"l2": ErrStep.CXT_L2, "l1": ErrStep.CXT_L1, "ctl": ErrStep.CXT_CTL,
         "sts": ErrStep.CXT_STS}


def test_bad_tables_failed_reads_and_refused_translations_end_the_load():
    bench = Bench(11)
    rng = bench.rng
    cases = []

    def cxt():
        return 129 * (len(cases) + 1)     # each in an L2 entry of its own

    for flaw, want in FLAWS.items():
        cases.append((Context(rng, bench.mem, cxt(), flaw=flaw), want, None))
    for structure, step in READS.items():
        c = Context(rng, bench.mem, cxt())
        error = rng.choice([e for e in ReadError if e != ReadError.OK])
        bench.read_errors[c.addresses[structure]] = error
        cases.append((c, (step, ErrSubStep.DAF, READ_ERROR_CLASS[error]), None))
    c = Context(rng, bench.mem, cxt(), pv=1)
    bench.faults[c.sts_addr] = Fault.NOT_PRESENT
    cases.append((c, (ErrStep.CXT_STS, ErrSubStep.ATF, FAULT_CLASS[Fault.NOT_PRESENT]), None))
    # A write index that cannot be translated is no load error: its fault is kept for the turn.
    c = Context(rng, bench.mem, cxt(), pv=1)
    bench.faults[c.wi_addr] = Fault.WRITE
    cases.append((c, None, Fault.WRITE))

    async def testbench(ctx):
        ctx.set(bench.dut.cxt_l2.ptr, L2 >> 12)
        ctx.set(bench.dut.max_akey_sz, CFG.max_akey_sz)
        for c, want, wi_fault in cases:
            bench.entry = fresh_entry(rng)
            ctx.set(bench.dut.entry, bench.entry_const())
            result = await bench.load(ctx, c.cxt, False)
            if want is None:
                assert result.ok
                assert bench.entry["wi_fault"] == wi_fault
                assert bench.entry["read_index"] == c.read_index
                continue
            assert not result.ok, f"{c.flaw or 'a failure'} was loaded"
            got = (result.step, result.sub_step, result.err_class)
            assert got == want, f"{c.flaw}: {got} instead of {want}"
            assert result.sts_lost == (want[1] == ErrSubStep.ATF)

    sim = new_sim(bench.dut)
    sim.add_testbench(testbench)
    run(sim, "context_loader_failures")
