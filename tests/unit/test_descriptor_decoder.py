"""DescriptorDecoder on random descriptors, AKey caches, fill images and context limits: each
verdict against a statement of the checks written here from docs/spec-choices.md, and each
error class (and each acceptance) of a descriptor the reference model can run against
``sim/reference_model.py``'s ``ContextModel``."""

import random

import pytest
from amaranth.sim import Simulator

from hdl.sdxi.akey_cache import AkeyCache
from hdl.sdxi.data_mover import MoverOp
from hdl.sdxi.descriptor_decoder import Action, DescriptorDecoder, ImageCache
from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import AdminOp, DmaBaseOp, IntrOp, OpGroup, SyncFilter, VendorOp
from sdxi_defs.errors import ErrClass
from sdxi_defs.ram_map import IMAGE
from sdxi_defs.structures import AKEY_ENT
from sim.reference_model import ContextModel

ROW = 64
FILL_RAM = 0x1840
TOP = (1 << 64) - 1
KNOWN = [(OpGroup.DMABASE, op) for op in DmaBaseOp] + [(OpGroup.INTR, IntrOp.INTR)] + \
    [(OpGroup.ADMIN, op) for op in AdminOp] + [(OpGroup.VENDOR, VendorOp.FILL)]
COMMON = [(OpGroup.DMABASE, DmaBaseOp.COPY), (OpGroup.VENDOR, VendorOp.FILL)] * 4


class Situation:
    """One descriptor and everything else the decoder is told."""

    def __init__(self, rng):
        self.rng = rng
        r = rng.random()
        if r < 0.06:
            typ, sub = rng.choice([OpGroup.ATOMIC, 0x7FF, 0x123]), rng.randrange(256)
        elif r < 0.12:
            typ, sub = rng.choice([OpGroup.DMABASE, OpGroup.INTR, OpGroup.VENDOR]), 0x77
        else:
            typ, sub = rng.choice(KNOWN + COMMON)
        self.typ, self.sub = int(typ), int(sub)
        self.max_buffer = rng.randrange(12)
        self.enabled = rng.choice([0xFFFFFFFF] * 4 + [rng.getrandbits(32)])
        self.max_cxt = rng.choice([1, 7, 127, rng.randrange(1 << 16)])
        self.admin_context = rng.random() < 0.8
        keys = [rng.randrange(4) for _ in range(2)]
        self.cache = [dict(valid=rng.random() < 0.7, idx=keys[i], iv=rng.random() < 0.5,
                           vec=rng.randrange(2048),
                           space=dict(pv=rng.randrange(2), pasid=rng.getrandbits(20),
                                      user=rng.randrange(2)))
                      for i in range(2)]
        fields = dict(vl=1, np=rng.randrange(2), csb_ptr=rng.getrandbits(59), type=self.typ,
                      subtype=self.sub)
        fields.update(self._operands(typ, sub))
        layout = dsc.DESCRIPTORS.get((typ, sub), dsc.DSC_DMAB_COPY)
        names = {f.name for f in layout.fields}
        self.bytes = layout.encode(**{k: v for k, v in fields.items() if k in names})
        self.raw = int.from_bytes(self.bytes, "little")
        pattern = fields.get("pattern", 0)
        match = rng.random() < 0.5
        self.image = dict(ok=rng.random() < 0.8, psz=fields.get("psz", 0) if match else
                          rng.randrange(4), pattern=pattern if match else rng.getrandbits(256),
                          rows=rng.randrange(IMAGE // ROW + 1))

    def _size(self):
        rng = self.rng
        limit = 1 << (self.max_buffer + 21)
        return rng.choice([x for x in (0, 1, 31, 32, 63, 4095, 4096, 70000, limit - 1, limit,
                                       rng.getrandbits(32)) if x < 1 << 32])

    def _addr(self, size):
        rng = self.rng
        if rng.random() < 0.8:
            return rng.getrandbits(48)
        return rng.choice([TOP - size, min(TOP, TOP - size + 1), TOP, rng.getrandbits(64)])

    def _operands(self, typ, sub):
        rng = self.rng
        size = self._size()
        f = dict(size=size, count=rng.choice([0, 2, (1 << (self.max_buffer + 9)) - 1,
                                               1 << (self.max_buffer + 9),
                                               rng.getrandbits(32)]),
                 akey0=rng.randrange(4), akey1=rng.randrange(4), akey=rng.randrange(4),
                 psz=rng.randrange(4), pattern=rng.getrandbits(256), data=rng.getrandbits(256),
                 vf=int(rng.random() < 0.1), flt=rng.randrange(8),
                 cxt_start=rng.choice([0, 1, 3]), cxt_end=rng.choice([0, 2, 3, 200]))
        if sub == DmaBaseOp.WRT_IMM and typ == OpGroup.DMABASE:
            f["size"] = rng.choice([0, 12, 31, 32, 1000])
        if sub == DmaBaseOp.REPCOPY and typ == OpGroup.DMABASE:
            last = (f["count"] + 1) * 4096 - 1
            f["addr0"], f["addr1"] = self._addr(4095), self._addr(last)
        else:
            f["addr0"], f["addr1"] = self._addr(f["size"]), self._addr(f["size"])
        return f

    def lookup(self, index):
        hits = [e for e in self.cache if e["valid"] and e["idx"] == index]
        return (bool(hits), any(e["iv"] for e in hits), hits[0] if hits else self.cache[1])


def expected(s):
    """(action, err_class, buf or None, keys, key_intr, intr, vector) as the checks say."""
    d = dsc.DSC_GENERIC.decode(s.bytes)
    typ, sub = d["type"], d["subtype"]
    groups = (OpGroup.DMABASE, OpGroup.ADMIN, OpGroup.INTR, OpGroup.VENDOR)
    bad = lambda cls, buf=None: (Action.INVALID, cls, buf, 0, 0, 0, 0)      # noqa: E731
    if typ not in groups:
        return bad(ErrClass.UNKNOWN_OPCODE)
    if not s.enabled >> OpGroup(typ).opb_bit & 1:
        return bad(ErrClass.GROUP_DISABLED)
    limit = 1 << (s.max_buffer + 21)
    wraps = lambda addr, last: addr + last > TOP                             # noqa: E731
    if typ == OpGroup.DMABASE:
        if sub == DmaBaseOp.NOP:
            return (Action.PUSH, None, None, 0, 0, 0, 0)
        if sub == DmaBaseOp.COPY:
            f = dsc.DSC_DMAB_COPY.decode(s.bytes)
            if f["size"] + 1 > limit:
                return bad(ErrClass.SIZE)
            for buf, addr in enumerate((f["addr0"], f["addr1"])):
                if wraps(addr, f["size"]):
                    return bad(ErrClass.ADDRESS_WRAP, buf)
            if s.lookup(f["akey0"])[0] and s.lookup(f["akey1"])[0]:
                return (Action.ISSUE, None, None, 0, 0, 0, 0)
            return (Action.CHECK, None, None, 0b11, 0, 0, 0)
        if sub == DmaBaseOp.WRT_IMM:
            f = dsc.DSC_DMAB_WRT_IMM.decode(s.bytes)
            if f["size"] >= dsc.WRT_IMM_MAX:
                return bad(ErrClass.SIZE)
            if wraps(f["addr0"], f["size"]):
                return bad(ErrClass.ADDRESS_WRAP, 0)
            return (Action.CHECK, None, None, 0b01, 0, 0, 0)
        if sub == DmaBaseOp.REPCOPY:
            f = dsc.DSC_DMAB_REPCOPY.decode(s.bytes)
            total = (f["count"] + 1) * dsc.REPCOPY_BLOCK
            if total > limit:
                return bad(ErrClass.SIZE)
            if wraps(f["addr0"], dsc.REPCOPY_BLOCK - 1):
                return bad(ErrClass.ADDRESS_WRAP, 0)
            if wraps(f["addr1"], total - 1):
                return bad(ErrClass.ADDRESS_WRAP, 1)
            return (Action.CHECK, None, None, 0b11, 0, 0, 0)
        return bad(ErrClass.UNKNOWN_OPCODE)
    if typ == OpGroup.VENDOR:
        f = dsc.DSC_VENDOR_FILL.decode(s.bytes)
        if sub != VendorOp.FILL:
            return bad(ErrClass.UNKNOWN_OPCODE)
        if f["psz"] >= len(dsc.FILL_PATTERN_SIZES):
            return bad(ErrClass.BAD_PARAMETER)
        if f["size"] + 1 > limit:
            return bad(ErrClass.SIZE)
        if wraps(f["addr0"], f["size"]):
            return bad(ErrClass.ADDRESS_WRAP, 0)
        img = s.image
        if (s.lookup(f["akey0"])[0] and img["ok"] and img["psz"] == f["psz"] and
                img["pattern"] == f["pattern"] and img["rows"] >= fill_rows(f["size"])):
            return (Action.ISSUE, None, None, 0, 0, 0, 0)
        return (Action.CHECK, None, None, 0b01, 0, 0, 0)
    if typ == OpGroup.INTR:
        if sub != IntrOp.INTR:
            return bad(ErrClass.UNKNOWN_OPCODE)
        hit, intr_ok, entry = s.lookup(dsc.DSC_INTR.decode(s.bytes)["akey"])
        if intr_ok:
            return (Action.PUSH, None, None, 0, 0, 1, entry["vec"])
        return (Action.CHECK, None, None, 0b01, 1, 0, 0)
    f = dsc.DSC_SYNC.decode(s.bytes)          # the admin range is where every admin op has it
    if not s.admin_context:
        return bad(ErrClass.ADMIN_NOT_CXT0)
    if f["vf"]:
        return bad(ErrClass.BAD_PARAMETER)
    range_ok = 1 <= f["cxt_start"] <= f["cxt_end"] <= s.max_cxt
    if sub in (AdminOp.CXT_START_NM, AdminOp.CXT_START_RS, AdminOp.CXT_STOP, AdminOp.CXT_UPD):
        return (Action.ADMIN, None, None, 0, 0, 0, 0) if range_ok else \
            bad(ErrClass.BAD_PARAMETER)
    if sub == AdminOp.SYNC:
        if f["flt"] > SyncFilter.FN or (f["flt"] == SyncFilter.CXT and not range_ok):
            return bad(ErrClass.BAD_PARAMETER)
        return (Action.ADMIN, None, None, 0, 0, 0, 0)
    if sub in (AdminOp.AKEY_UPD, AdminOp.RKEY_UPD):
        return (Action.ADMIN, None, None, 0, 0, 0, 0)
    return bad(ErrClass.UNKNOWN_OPCODE)


def fill_rows(size_minus_one):
    return IMAGE // ROW if size_minus_one >= IMAGE else size_minus_one // ROW + 1


class _TableOnly:
    """Host memory that holds one valid, interrupting AKey entry everywhere (the model's
    reads of data return zeros; its writes are dropped): enough for the model to say
    whether a descriptor is accepted, without moving gigabytes."""

    def read(self, addr, n):
        if n == AKEY_ENT.size:
            return AKEY_ENT.encode(vl=1, iv=1, intr_num=0)
        return bytes(min(n, 1 << 20))

    def write(self, addr, data):
        pass


def model_class(s):
    """The reference model's error class (or None), where it applies: the decoder's errors
    before any AKey entry is read, for operands that do not wrap and non-admin descriptors."""
    model = ContextModel(_TableOnly(), akey_table=0, akey_entries=1 << 16, opb=s.enabled,
                         max_buffer=s.max_buffer)
    err, _ = model.execute(s.bytes)
    return err


def run_cases(count, seed):
    rng = random.Random(seed)
    dut = DescriptorDecoder(ram_addr_bits=15, row_bytes=ROW, fill_ram=FILL_RAM)
    cases = [Situation(rng) for _ in range(count)]
    sim = Simulator(dut)
    checked = {"verdicts": 0, "model": 0, "issued": 0, "checked": 0, "invalid": 0}

    async def bench(ctx):
        for s in cases:
            ctx.set(dut.descriptor, s.raw)
            ctx.set(dut.enabled, s.enabled)
            ctx.set(dut.max_buffer, s.max_buffer)
            ctx.set(dut.max_cxt, s.max_cxt)
            ctx.set(dut.admin_context, s.admin_context)
            ctx.set(dut.akeys, AkeyCache().const({
                "valid": s.cache[0]["valid"] | s.cache[1]["valid"] << 1,
                "iv": s.cache[0]["iv"] | s.cache[1]["iv"] << 1,
                "idx": [e["idx"] for e in s.cache], "vec": [e["vec"] for e in s.cache],
                "space": [e["space"] for e in s.cache]}))
            ctx.set(dut.image, ImageCache(ROW).const(s.image))
            v = ctx.get(dut.verdict)
            action, err, buf, keys, key_intr, intr, vector = expected(s)
            got = Action(v.action)
            assert got == action, f"{s.typ:#x}/{s.sub:#x}: {got} instead of {action}"
            if action == Action.INVALID:
                checked["invalid"] += 1
                assert v.err_class == err, f"class {v.err_class:#x} instead of {err!r}"
                assert v.bv == (buf is not None) and (buf is None or v.buf == buf)
            if action == Action.PUSH:
                assert (v.intr, v.vector if intr else 0) == (intr, vector)
            if action == Action.CHECK:
                checked["checked"] += 1
                assert (v.keys, v.key_intr) == (keys, key_intr)
                assert v.key_idx == dsc.DSC_DMAB_COPY.decode(s.bytes)["akey0"]
            if action in (Action.ISSUE, Action.CHECK):
                check_command(s, v.cmd, issued=action == Action.ISSUE)
                checked["issued"] += action == Action.ISSUE
            checked["verdicts"] += 1
            # The model moves what it accepts: only where that stays small.
            big = action != Action.INVALID and moved_bytes(s) > 1 << 20
            if err != ErrClass.ADDRESS_WRAP and not big and \
                    s.typ in (OpGroup.DMABASE, OpGroup.VENDOR, OpGroup.INTR):
                want = err if action == Action.INVALID else None
                assert model_class(s) == want, "the reference model disagrees"
                checked["model"] += 1

    sim.add_testbench(bench)
    sim.run()
    return checked


def moved_bytes(s):
    f = dsc.DSC_DMAB_REPCOPY.decode(s.bytes)
    if s.typ == OpGroup.DMABASE and s.sub == DmaBaseOp.REPCOPY:
        return (f["count"] + 1) * dsc.REPCOPY_BLOCK
    return f["count"] + 1          # where COPY and FILL have size


def check_command(s, cmd, *, issued):
    d = dsc.DSC_GENERIC.decode(s.bytes)
    f = dsc.DSC_DMAB_REPCOPY.decode(s.bytes) if d["subtype"] == DmaBaseOp.REPCOPY and \
        d["type"] == OpGroup.DMABASE else dsc.DSC_DMAB_COPY.decode(s.bytes)
    if d["type"] == OpGroup.INTR:
        return
    if d["type"] == OpGroup.VENDOR or d["subtype"] == DmaBaseOp.WRT_IMM:
        assert MoverOp(cmd.op) == MoverOp.FROM_RAM and cmd.ram == FILL_RAM
        assert (cmd.dst, cmd.last) == (f["addr0"], f["size"])
        spaces = [("dst_space", f["akey0"])]
    elif d["subtype"] == DmaBaseOp.REPCOPY:
        assert MoverOp(cmd.op) == MoverOp.REPCOPY
        assert (cmd.src, cmd.dst) == (f["addr0"], f["addr1"])
        assert cmd.last == ((f["count"] + 1) * 4096 - 1) & 0xFFFFFFFF
        spaces = [("src_space", f["akey0"]), ("dst_space", f["akey1"])]
    else:
        assert MoverOp(cmd.op) == MoverOp.COPY
        assert (cmd.src, cmd.dst, cmd.last) == (f["addr0"], f["addr1"], f["size"])
        spaces = [("src_space", f["akey0"]), ("dst_space", f["akey1"])]
    if issued:
        for name, key in spaces:
            space = getattr(cmd, name)
            want = s.lookup(key)[2]["space"]
            assert (space.pv, space.pasid, space.user) == (want["pv"], want["pasid"],
                                                           want["user"]), name


@pytest.mark.parametrize("seed", range(3))
def test_random_descriptors(seed):
    checked = run_cases(700, seed)
    # The cases reach every outcome, and the model scored a good share of them.
    assert checked["invalid"] > 100 and checked["checked"] > 50 and checked["issued"] > 10
    assert checked["model"] > 250
