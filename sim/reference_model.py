"""Reference model of the SDXI semantics the engine implements, for scoring random streams.

It executes one context's descriptors in ring order against a model of host memory and says
what the function must leave behind: buffer contents, each CST (signal 0, er), the read index,
the context state and the error class of a failed descriptor (docs/spec-choices.md, "Errors").
It knows the descriptor formats from ``sdxi_defs.descriptors`` and nothing of the gateware.

Buffers of AKeys with pv = 1 are translated a 4 KiB page at a time through the address
spaces it is given (objects with ``translate(vaddr, write=, user=)`` that raise
``PageFault``, as ``sw.address_space.AddressSpace`` does from the page tables in host memory).
A translation fault ends a COPY, FILL or WRT_IMM where the fault is: the bytes before the
faulting page are written, none at or after it (docs/spec-choices.md, "Address spaces"). A
read the host answers with an error (``read_fault``) leaves the destination undefined, as does
a fault of a REPCOPY: those bytes are listed in ``unknown`` and not scored.
"""

from dataclasses import dataclass, field

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import DmaBaseOp, IntrOp, OpGroup
from sdxi_defs.errors import FAULT_CLASS, READ_ERROR_CLASS, ErrClass
from sdxi_defs.structures import AKEY_ENT, LOCAL_SFUNC, CxtState, sfunc_of


__all__ = ["HostMemory", "FlatMemory", "ContextModel", "Outcome", "Effect", "PAGE"]

PAGE = 4096
ADDRESS_LIMIT = 1 << 64


class HostMemory:
    """Sparse byte-addressed memory; reads of unwritten bytes return 0."""

    def __init__(self):
        self.pages = {}

    def read(self, addr, n):
        out = bytearray()
        while n:
            page, off = divmod(addr, PAGE)
            take = min(n, PAGE - off)
            out += self.pages.get(page, bytes(PAGE))[off:off + take]
            addr, n = addr + take, n - take
        return bytes(out)

    def write(self, addr, data):
        data = bytes(data)
        while data:
            page, off = divmod(addr, PAGE)
            take = min(len(data), PAGE - off)
            buf = bytearray(self.pages.get(page, bytes(PAGE)))
            buf[off:off + take] = data[:take]
            self.pages[page] = bytes(buf)
            addr, data = addr + take, data[take:]


class FlatMemory:
    """``size`` bytes of memory at bus address ``base``, as one ``bytearray`` (a copy of host
    memory that the model then changes as the function must)."""

    def __init__(self, base, data):
        self.base = base
        self.data = bytearray(data)

    def _offset(self, addr, n):
        off = addr - self.base
        if off < 0 or off + n > len(self.data):
            raise IndexError(f"{n} bytes at {addr:#x} outside the model's memory")
        return off

    def read(self, addr, n):
        off = self._offset(addr, n)
        return bytes(self.data[off:off + n])

    def write(self, addr, data):
        off = self._offset(addr, len(data))
        self.data[off:off + len(data)] = data


@dataclass
class Outcome:
    read_index: int
    state: CxtState
    csts: dict = field(default_factory=dict)      # CST address -> er
    error: ErrClass = None
    interrupts: list = field(default_factory=list)


@dataclass
class Effect:
    """What one descriptor did: its error class (None: success), the MSI-X vector it raised,
    the physical byte ranges it wrote and the ones it left undefined (``(address, bytes)``)."""
    error: ErrClass = None
    vector: int = None
    written: list = field(default_factory=list)
    unknown: list = field(default_factory=list)


class _Fault(Exception):
    def __init__(self, err_class):
        super().__init__(err_class.name)
        self.err_class = err_class


class _Operand:
    """A buffer operand resolved to physical pieces: ``pieces`` is a list of
    ``(offset, paddr, bytes)`` up to ``stop``, the offset of the first page that cannot be
    reached (``n`` if none), which fails with ``err_class``."""

    def __init__(self, pieces, stop, err_class):
        self.pieces, self.stop, self.err_class = pieces, stop, err_class

    def physical(self, start, end):
        """The physical ranges of operand bytes ``start`` to ``end`` (within ``stop``)."""
        out = []
        for off, paddr, n in self.pieces:
            lo, hi = max(start, off), min(end, off + n)
            if lo < hi:
                out.append((paddr + lo - off, hi - lo))
        return out


class ContextModel:
    """A running client context: its AKey table, enabled groups and buffer limit.

    ``spaces`` maps a PASID to its address space; ``read_fault(paddr, n)`` returns the
    ``ReadError`` the host answers a data read of those bytes with, or None. AKey entries are
    read from ``akey_mem`` (default: ``mem``). ``sfunc`` is the function's own CAP0.sfunc.
    """

    def __init__(self, mem, *, akey_table, akey_entries=256, opb=0x2B, max_buffer=11,
                 vectors=16, spaces=None, read_fault=None, akey_mem=None, sfunc=sfunc_of(0)):
        self.mem = mem
        self.sfunc = sfunc
        self.akey_mem = akey_mem
        self.akey_table = akey_table
        self.akey_entries = akey_entries
        self.opb = opb
        self.max_bytes = 1 << (max_buffer + 21)
        self.vectors = vectors
        self.spaces = spaces or {}
        self.read_fault = read_fault

    def _akey(self, index, intr=False):
        if index >= self.akey_entries:
            raise _Fault(ErrClass.AKEY_RANGE)
        e = AKEY_ENT.decode((self.akey_mem or self.mem).read(self.akey_table + 16 * index, 16))
        local = e["tgt_sfunc"] in (LOCAL_SFUNC, self.sfunc)
        if not e["vl"] or (intr and local and not e["iv"]):
            raise _Fault(ErrClass.AKEY_INVALID)
        if not local:                   # the model's card has no other function
            raise _Fault(ErrClass.AKEY_UNSUPPORTED)
        if intr and e["intr_num"] >= self.vectors:
            raise _Fault(ErrClass.BAD_PARAMETER)
        return e

    def _resolve(self, key, addr, n, *, write):
        """The operand at ``addr`` of ``n`` bytes through AKey entry ``key``."""
        if not key["pv"]:
            return _Operand([(0, addr, n)], n, None)
        space = self.spaces.get(key["pasid"])
        if space is None:
            return _Operand([], 0, ErrClass.ATF_NO_PASID)
        pieces, off = [], 0
        while off < n:
            take = min(n - off, PAGE - (addr + off) % PAGE)
            try:
                paddr = space.translate(addr + off, write=write, user=not key["pr"])
            except Exception as fault:         # PageFault, duck-typed: it has .fault
                if not hasattr(fault, "fault"):
                    raise
                return _Operand(pieces, off, FAULT_CLASS[fault.fault])
            pieces.append((off, paddr, take))
            off += take
        return _Operand(pieces, n, None)

    def _host_error(self, operand):
        """The class of the first host read error among ``operand``'s bytes, or None."""
        if self.read_fault is None:
            return None
        for _, paddr, n in operand.pieces:
            error = self.read_fault(paddr, n)
            if error:
                return READ_ERROR_CLASS[error]
        return None

    def _check(self, raw):
        """Decode checks (step 7): the layout and fields, or a ``_Fault``."""
        g = dsc.DSC_GENERIC.decode(raw)
        group, sub = g["type"], g["subtype"]
        groups = {int(x): x for x in OpGroup}
        if group not in groups or group == OpGroup.ATOMIC:
            raise _Fault(ErrClass.UNKNOWN_OPCODE)
        if not self.opb >> groups[group].opb_bit & 1:
            raise _Fault(ErrClass.GROUP_DISABLED)
        layout = dsc.DESCRIPTORS.get((group, sub))
        if layout is None:
            raise _Fault(ErrClass.UNKNOWN_OPCODE)
        if group == OpGroup.ADMIN:
            raise _Fault(ErrClass.ADMIN_NOT_CXT0)
        return group, sub, layout.decode(raw)

    def execute_effect(self, raw):
        """Run one descriptor against the model's memory; return its ``Effect``."""
        effect = Effect()
        try:
            self._execute(raw, effect)
        except _Fault as fault:
            effect.error = fault.err_class
        return effect

    def execute(self, raw):
        """Run one descriptor; return (error class or None, interrupt vector or None)."""
        effect = self.execute_effect(raw)
        return effect.error, effect.vector

    def _execute(self, raw, effect):
        group, sub, f = self._check(raw)
        if (group, sub) == (OpGroup.DMABASE, DmaBaseOp.NOP):
            return
        if (group, sub) == (OpGroup.INTR, IntrOp.INTR):
            effect.vector = self._akey(f["akey"], intr=True)["intr_num"]
            return
        if sub == DmaBaseOp.WRT_IMM and group == OpGroup.DMABASE:
            if f["size"] >= dsc.WRT_IMM_MAX:
                raise _Fault(ErrClass.SIZE)
            keys, n = (f["akey0"],), f["size"] + 1
        elif group == OpGroup.VENDOR:
            if f["psz"] >= len(dsc.FILL_PATTERN_SIZES):
                raise _Fault(ErrClass.BAD_PARAMETER)
            keys, n = (f["akey0"],), f["size"] + 1
        elif sub == DmaBaseOp.REPCOPY:
            keys, n = (f["akey0"], f["akey1"]), (f["count"] + 1) * dsc.REPCOPY_BLOCK
        else:
            keys, n = (f["akey0"], f["akey1"]), f["size"] + 1
        if n > self.max_bytes:
            raise _Fault(ErrClass.SIZE)
        if group == OpGroup.DMABASE and sub == DmaBaseOp.REPCOPY:
            spans = ((f["addr0"], dsc.REPCOPY_BLOCK), (f["addr1"], n))
        elif len(keys) == 2:
            spans = ((f["addr0"], n), (f["addr1"], n))
        else:
            spans = ((f["addr0"], n),)
        if any(addr + length > ADDRESS_LIMIT for addr, length in spans):
            raise _Fault(ErrClass.ADDRESS_WRAP)
        entries = [self._akey(k) for k in keys]
        if len(keys) == 1:
            self._fill_or_immediate(group, f, entries[0], n, effect)
        elif sub == DmaBaseOp.REPCOPY:
            self._repcopy(f, entries, n, effect)
        else:
            self._copy(f, entries, n, effect)

    def _write(self, operand, start, data, effect):
        pos = 0
        for paddr, length in operand.physical(start, start + len(data)):
            self.mem.write(paddr, data[pos:pos + length])
            effect.written.append((paddr, length))
            pos += length

    def _read(self, operand, start, end):
        return b"".join(self.mem.read(paddr, n) for paddr, n in operand.physical(start, end))

    def _fill_or_immediate(self, group, f, key, n, effect):
        dst = self._resolve(key, f["addr0"], n, write=True)
        if group == OpGroup.VENDOR:
            size = dsc.FILL_PATTERN_SIZES[f["psz"]]
            data = (f["pattern"].to_bytes(32, "little")[:size] * (n // size + 1))[:n]
        else:
            data = f["data"].to_bytes(32, "little")[:n]
        self._write(dst, 0, data[:dst.stop], effect)
        if dst.stop < n:
            raise _Fault(dst.err_class)

    def _copy(self, f, keys, n, effect):
        src = self._resolve(keys[0], f["addr0"], n, write=False)
        dst = self._resolve(keys[1], f["addr1"], n, write=True)
        host_error = self._host_error(src)
        if host_error:
            effect.unknown += dst.physical(0, dst.stop)
            raise _Fault(host_error)
        stop = min(src.stop, dst.stop)
        self._write(dst, 0, self._read(src, 0, stop), effect)
        if stop < n:
            raise _Fault(src.err_class if src.stop <= dst.stop else dst.err_class)

    def _repcopy(self, f, keys, n, effect):
        if keys[0]["pv"] and f["addr0"] % PAGE:
            raise _Fault(ErrClass.BAD_PARAMETER)
        src = self._resolve(keys[0], f["addr0"], dsc.REPCOPY_BLOCK, write=False)
        dst = self._resolve(keys[1], f["addr1"], n, write=True)
        host_error = self._host_error(src)
        if host_error or src.stop < dsc.REPCOPY_BLOCK or dst.stop < n:
            effect.unknown += dst.physical(0, dst.stop)
            raise _Fault(host_error or (src.err_class if src.stop < dsc.REPCOPY_BLOCK
                                        else dst.err_class))
        block = self._read(src, 0, dsc.REPCOPY_BLOCK)
        self._write(dst, 0, block * (f["count"] + 1), effect)

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
