"""Page-table walker: one virtual address of a (function, PASID) address space to a physical
page, through that function's PASID table and x86-64 4-level page tables (formats in
``page_tables.py``)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.page_tables import ENTRY_BYTES, PASID_ENT, PTE, VA_BITS, Fault, Level

from ..pcie.dma_layouts import FUNCTION_BITS


__all__ = ["PageWalker", "WalkRequest", "WalkResult", "TableAddress", "TableRead"]

PASID_BITS = 20
FUNCTIONS = 1 << FUNCTION_BITS


class WalkRequest(data.StructLayout):
    """Translate ``vaddr`` in the address space of ``pasid`` in ``function``'s PASID table.

    ``fresh``: read every entry from memory (no cached path, no cached table line).
    """

    def __init__(self):
        super().__init__({"function": FUNCTION_BITS, "pasid": PASID_BITS, "vaddr": 64,
                          "fresh": 1})


class WalkResult(data.StructLayout):
    """A translation, or why there is none.

    ``frame`` is the page's physical address bits 51:12 (the bits below the page size are 0),
    ``level`` the leaf's level (1: 4 KiB, 2: 2 MiB, 3: 1 GiB) or, on a fault, the level of the
    entry that caused it (0 for the PASID table). ``rw`` and ``us`` are the AND of the bits of
    every entry on the path: whether writes and user accesses are allowed. ``cached``: some
    entry came from a cache rather than from memory just now.
    """

    def __init__(self):
        super().__init__({"fault": 3, "level": 3, "frame": 40, "rw": 1, "us": 1, "cached": 1})


class TableAddress(data.StructLayout):
    """A qword of a table to read: ``addr``, 8-byte aligned, is a physical address as
    ``function`` sees host memory (the read goes out with that function's requester ID)."""

    def __init__(self):
        super().__init__({"addr": 64, "function": FUNCTION_BITS})


class TableRead(data.StructLayout):
    """One qword of a table: its value, or ``error`` if the bus read failed; ``cached`` if it
    was served from a copy read earlier."""

    def __init__(self):
        super().__init__({"data": 64, "error": 1, "cached": 1})


class PageWalker(wiring.Component):
    """Walks one translation at a time.

    Each PCIe function has a PASID table of its own: ``pasid_table[f]`` (its physical address,
    4 KiB aligned) and ``pasid_count[f]`` (its entries) of the request's ``function`` f, taken
    when the request is, give the PASID's PML4. Each level's entry is read with one 8-byte read
    on ``read_addr`` / ``read_data`` (in order, one outstanding), every read of a walk carrying
    its ``function``: the tables are in that function's view of host memory. A walk ends at the
    first entry that is not present, at a leaf (ps = 1 at levels 3 and 2, any entry at level 1),
    or at a malformed case: a non-canonical address or ps = 1 at level 4 (``Fault.RESERVED``).
    The walker does not judge permissions (the TLB does, per access, from ``rw`` and ``us``) and
    neither checks nor sets the accessed and dirty bits.

    The last ``PATHS`` paths down to a page table (level 1) are kept, tagged with the function,
    the PASID and address bits 47:21, so a walk near a recent one in the same address space
    reads only its PTE; a ``fresh`` request ignores them and asks the reader to drop its cached
    lines (``drop_cached``), as does ``flush``, which also forgets the paths of every function
    (any invalidation).

    Ports
    -----
    request : In(stream.Signature(WalkRequest))
    result : Out(stream.Signature(WalkResult)), one per request
    read_addr : Out(stream.Signature(TableAddress)), a qword to read and the walk's function
    read_data : In(stream.Signature(TableRead)), its value, in request order
    pasid_table : In(64).array(1 << FUNCTION_BITS), per function
    pasid_count : In(PASID_BITS + 1).array(1 << FUNCTION_BITS), per function
    flush : In(1), drop_cached : Out(1)
    """

    PATHS = 2

    def __init__(self):
        super().__init__({
            "request": In(stream.Signature(WalkRequest())),
            "result": Out(stream.Signature(WalkResult())),
            "read_addr": Out(stream.Signature(TableAddress())),
            "read_data": In(stream.Signature(TableRead())),
            "pasid_table": In(64).array(FUNCTIONS),
            "pasid_count": In(PASID_BITS + 1).array(FUNCTIONS),
            "flush": In(1),
            "drop_cached": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        req = Signal(WalkRequest())
        res = Signal(WalkResult())
        level = Signal(3)
        table = Signal(52)                 # the current table's physical address
        pasid_table = Signal(64)           # the walk's function's PASID table and its size
        pasid_count = Signal(PASID_BITS + 1)
        m.d.comb += [self.result.payload.eq(res),
                     self.read_addr.payload.function.eq(req.function)]

        index = Signal(9)
        # Bits 47:12 are the four levels' 9-bit indexes, level 1's lowest.
        m.d.comb += index.eq(req.vaddr[12:VA_BITS].word_select((level - 1)[:2], 9))
        entry = Signal(64)
        m.d.comb += entry.eq(self.read_data.payload.data)
        canonical = Signal()
        top = req.vaddr[VA_BITS - 1:]
        m.d.comb += canonical.eq((top == 0) | (top == (1 << (64 - VA_BITS + 1)) - 1))

        def finish(fault, at_level):
            m.d.sync += [res.fault.eq(fault), res.level.eq(at_level)]
            m.next = "RESULT"

        # Recent paths to a page table: function, PASID, address bits 47:21, the table, rw and
        # us so far.
        tag_bits = VA_BITS - 21
        p_valid = Signal(self.PATHS)
        p_function = [Signal(FUNCTION_BITS, name=f"path_function{i}") for i in range(self.PATHS)]
        p_pasid = [Signal(PASID_BITS, name=f"path_pasid{i}") for i in range(self.PATHS)]
        p_tag = [Signal(tag_bits, name=f"path_tag{i}") for i in range(self.PATHS)]
        p_table = [Signal(52, name=f"path_table{i}") for i in range(self.PATHS)]
        p_rw = Signal(self.PATHS)
        p_us = Signal(self.PATHS)
        p_next = Signal(range(self.PATHS))
        tag = req.vaddr[21:VA_BITS]
        with m.If(self.flush):
            m.d.sync += p_valid.eq(0)
        m.d.comb += self.drop_cached.eq(self.flush |
                                        (self.request.valid & self.request.ready &
                                         self.request.payload.fresh))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += [req.eq(self.request.payload), res.eq(0), res.rw.eq(1),
                                 res.us.eq(1)]
                    with m.Switch(self.request.payload.function):
                        for f in range(FUNCTIONS):
                            with m.Case(f):
                                m.d.sync += [pasid_table.eq(self.pasid_table[f]),
                                             pasid_count.eq(self.pasid_count[f])]
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(~canonical):
                    finish(Fault.RESERVED, Level.PML4)
                with m.Elif(req.pasid >= pasid_count):
                    finish(Fault.NO_PASID, 0)
                with m.Else():
                    m.next = "PASID"
                    for i in range(self.PATHS):
                        with m.If(p_valid[i] & (p_function[i] == req.function) &
                                  (p_pasid[i] == req.pasid) & (p_tag[i] == tag) &
                                  ~req.fresh & ~self.flush):
                            m.d.sync += [table.eq(p_table[i]), level.eq(Level.PT),
                                         res.rw.eq(p_rw[i]), res.us.eq(p_us[i]),
                                         res.cached.eq(1)]
                            m.next = "READ"
            with m.State("PASID"):
                m.d.comb += [self.read_addr.valid.eq(1),
                             self.read_addr.payload.addr.eq(pasid_table +
                                                            req.pasid * ENTRY_BYTES)]
                with m.If(self.read_addr.ready):
                    m.next = "PASID_WAIT"
            with m.State("PASID_WAIT"):
                m.d.comb += self.read_data.ready.eq(1)
                with m.If(self.read_data.valid):
                    m.d.sync += res.cached.eq(res.cached | self.read_data.payload.cached)
                    with m.If(self.read_data.payload.error):
                        finish(Fault.READ_ERROR, 0)
                    with m.Elif(~PASID_ENT["p"].bits(entry)):
                        finish(Fault.NO_PASID, 0)
                    with m.Else():
                        m.d.sync += [table.eq(Cat(Const(0, 12), PASID_ENT["root"].bits(entry))),
                                     level.eq(Level.PML4)]
                        m.next = "READ"
            with m.State("READ"):
                m.d.comb += [self.read_addr.valid.eq(1),
                             self.read_addr.payload.addr.eq(table + index * ENTRY_BYTES)]
                with m.If(self.read_addr.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += self.read_data.ready.eq(1)
                ps = PTE["ps"].bits(entry)
                with m.If(self.read_data.valid):
                    m.d.sync += [res.rw.eq(res.rw & PTE["rw"].bits(entry)),
                                 res.us.eq(res.us & PTE["us"].bits(entry)),
                                 res.cached.eq(res.cached | self.read_data.payload.cached)]
                    with m.If(self.read_data.payload.error):
                        finish(Fault.READ_ERROR, level)
                    with m.Elif(~PTE["p"].bits(entry)):
                        finish(Fault.NOT_PRESENT, level)
                    with m.Elif((level == Level.PML4) & ps):
                        finish(Fault.RESERVED, level)
                    with m.Elif((level == Level.PT) | ps):
                        # A leaf: drop the frame bits the page offset covers.
                        frame = PTE["addr"].bits(entry)
                        low = Signal(18)
                        m.d.comb += low.eq(Mux(level == Level.PDPT, (1 << 18) - 1,
                                               Mux(level == Level.PD, (1 << 9) - 1, 0)))
                        m.d.sync += res.frame.eq(Cat(frame[:18] & ~low, frame[18:]))
                        finish(Fault.NONE, level)
                    with m.Else():
                        next_table = Cat(Const(0, 12), PTE["addr"].bits(entry))
                        m.d.sync += [table.eq(next_table), level.eq(level - 1)]
                        with m.If((level == Level.PD) & ~self.flush):
                            # Keep the path down to this page table.
                            for i in range(self.PATHS):
                                with m.If(p_next == i):
                                    m.d.sync += [p_valid[i].eq(1),
                                                 p_function[i].eq(req.function),
                                                 p_pasid[i].eq(req.pasid),
                                                 p_tag[i].eq(tag), p_table[i].eq(next_table),
                                                 p_rw[i].eq(res.rw & PTE["rw"].bits(entry)),
                                                 p_us[i].eq(res.us & PTE["us"].bits(entry))]
                            m.d.sync += p_next.eq(Mux(p_next == self.PATHS - 1, 0, p_next + 1))
                        m.next = "READ"
            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"
        return m
