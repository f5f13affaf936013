"""Reference model of the SDXI semantics the engine implements, for scoring random streams.

It executes one context's descriptors in ring order against a model of host memory and says
what the function must leave behind: buffer contents, each CST (signal 0, er), the read index,
the context state and the error class of a failed descriptor (docs/spec-choices.md, "Errors").
It knows the descriptor formats from ``sdxi_defs.descriptors`` and nothing of the gateware.
"""

from dataclasses import dataclass, field

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import DmaBaseOp, IntrOp, OpGroup
from sdxi_defs.errors import ErrClass
from sdxi_defs.structures import AKEY_ENT, CxtState


__all__ = ["HostMemory", "ContextModel", "Outcome"]


class HostMemory:
    """Sparse byte-addressed memory; reads of unwritten bytes return 0."""

    def __init__(self):
        self.pages = {}

    def read(self, addr, n):
        out = bytearray()
        while n:
            page, off = divmod(addr, 4096)
            take = min(n, 4096 - off)
            out += self.pages.get(page, bytes(4096))[off:off + take]
            addr, n = addr + take, n - take
        return bytes(out)

    def write(self, addr, data):
        data = bytes(data)
        while data:
            page, off = divmod(addr, 4096)
            take = min(len(data), 4096 - off)
            buf = bytearray(self.pages.get(page, bytes(4096)))
            buf[off:off + take] = data[:take]
            self.pages[page] = bytes(buf)
            addr, data = addr + take, data[take:]


@dataclass
class Outcome:
    read_index: int
    state: CxtState
    csts: dict = field(default_factory=dict)      # CST address -> er
    error: ErrClass = None
    interrupts: list = field(default_factory=list)


class ContextModel:
    """A running client context: its AKey table, enabled groups and buffer limit."""

    def __init__(self, mem, *, akey_table, akey_entries=256, opb=0x2B, max_buffer=11,
                 vectors=16):
        self.mem = mem
        self.akey_table = akey_table
        self.akey_entries = akey_entries
        self.opb = opb
        self.max_bytes = 1 << (max_buffer + 21)
        self.vectors = vectors

    def _akey(self, index, intr=False):
        if index >= self.akey_entries:
            return ErrClass.AKEY_RANGE, None
        e = AKEY_ENT.decode(self.mem.read(self.akey_table + 16 * index, 16))
        if not e["vl"] or (intr and not e["iv"]):
            return ErrClass.AKEY_INVALID, None
        if e["pv"] or e["tgt_sfunc"]:
            return ErrClass.AKEY_UNSUPPORTED, None
        if intr and e["intr_num"] >= self.vectors:
            return ErrClass.BAD_PARAMETER, None
        return None, e

    def execute(self, raw):
        """Run one descriptor; return (error class or None, interrupt vector or None)."""
        g = dsc.DSC_GENERIC.decode(raw)
        group, sub = g["type"], g["subtype"]
        groups = {int(x): x for x in OpGroup}
        if group not in groups or group == OpGroup.ATOMIC:
            return ErrClass.UNKNOWN_OPCODE, None
        if not self.opb >> groups[group].opb_bit & 1:
            return ErrClass.GROUP_DISABLED, None
        layout = dsc.DESCRIPTORS.get((group, sub))
        if layout is None:
            return ErrClass.UNKNOWN_OPCODE, None
        if group == OpGroup.ADMIN:
            return ErrClass.ADMIN_NOT_CXT0, None
        f = layout.decode(raw)
        if (group, sub) == (OpGroup.DMABASE, DmaBaseOp.NOP):
            return None, None
        if (group, sub) == (OpGroup.INTR, IntrOp.INTR):
            err, e = self._akey(f["akey"], intr=True)
            return err, None if err else e["intr_num"]
        if sub == DmaBaseOp.WRT_IMM and group == OpGroup.DMABASE:
            if f["size"] >= dsc.WRT_IMM_MAX:
                return ErrClass.SIZE, None
            keys, n = (f["akey0"],), f["size"] + 1
        elif group == OpGroup.VENDOR:
            if f["psz"] >= len(dsc.FILL_PATTERN_SIZES):
                return ErrClass.BAD_PARAMETER, None
            keys, n = (f["akey0"],), f["size"] + 1
        elif sub == DmaBaseOp.REPCOPY:
            keys, n = (f["akey0"], f["akey1"]), (f["count"] + 1) * dsc.REPCOPY_BLOCK
        else:
            keys, n = (f["akey0"], f["akey1"]), f["size"] + 1
        if n > self.max_bytes:
            return ErrClass.SIZE, None
        for k in keys:
            err, _ = self._akey(k)
            if err:
                return err, None
        if group == OpGroup.VENDOR:
            size = dsc.FILL_PATTERN_SIZES[f["psz"]]
            pattern = f["pattern"].to_bytes(32, "little")[:size]
            self.mem.write(f["addr0"], (pattern * (n // size + 1))[:n])
        elif sub == DmaBaseOp.WRT_IMM:
            self.mem.write(f["addr0"], f["data"].to_bytes(32, "little")[:n])
        elif sub == DmaBaseOp.REPCOPY:
            block = self.mem.read(f["addr0"], dsc.REPCOPY_BLOCK)
            self.mem.write(f["addr1"], block * (f["count"] + 1))
        else:
            self.mem.write(f["addr1"], self.mem.read(f["addr0"], n))
        return None, None

    def run(self, first_index, descriptors):
        """Execute in order from ring index ``first_index``; stop at the first error."""
        out = Outcome(read_index=first_index, state=CxtState.RUN)
        for raw in descriptors:
            g = dsc.DSC_GENERIC.decode(raw)
            if not g["vl"]:
                break
            err, vector = self.execute(raw)
            cst = None if g["np"] else g["csb_ptr"] << 5
            if cst is not None:
                out.csts[cst] = bool(err)
            if err:
                out.error, out.state = err, CxtState.ERR_FN
                break
            if vector is not None:
                out.interrupts.append(vector)
            out.read_index += 1
        return out
