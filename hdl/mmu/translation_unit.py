"""The address-space manager's translation path: TLB, page-table walker and their table reads."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.regmap import TlbInvalidateKind

from ..pcie.dma_layouts import FUNCTION_BITS
from ..pcie.dma_ram import RamWriteSignature
from ..pcie.dma_read import ReadRequest, ReadStatus
from .table_reader import TableReader
from .tlb import Invalidate, Lookup, Tlb, Translation
from .walker import PASID_BITS, PageWalker


__all__ = ["TranslationUnit"]


class TranslationUnit(wiring.Component):
    """Translates pv = 1 buffer pages for the datapath (docs/spec-choices.md, "Address spaces").

    A ``Tlb`` in front of a ``PageWalker`` whose table reads go out on one DMA read client
    (``TableReader``); the walker's recent paths and the reader's table lines are dropped
    with every invalidation the TLB carries out.

    A lookup's address space is its (``function``, ``pasid``): the PASID's entry in the PASID
    table of PCIe function ``function`` (``pasid_table[function]``, ``pasid_count[function]``
    entries; 0 entries: every PASID faults ``NO_PASID``), and its walk's table reads go out with
    that function's requester ID (``rd_req.payload.function``).

    Invalidations come from the host (``inv_request`` with ``inv_kind``, ``inv_pasid`` and
    ``inv_vaddr``, held until taken) and from SYNC (``flush``: everything); a request arriving
    while one is pending is merged into it as ALL, so none is lost. They name no function: a
    PASID or PAGE invalidation drops the PASID's translations in every function (more than
    asked, which is always safe). ``inv_busy`` stays high from a request until the TLB has
    finished it.

    Members
    -------
    lookup : In(stream.Signature(Lookup)), result : Out(stream.Signature(Translation))
    rd_req, rd_status : the DMA read client; ram_snoop : In(RamWriteSignature)
    pasid_table : In(64).array(1 << FUNCTION_BITS)
        Each function's PASID table: its physical address, 4 KiB aligned.
    pasid_count : In(PASID_BITS + 1).array(1 << FUNCTION_BITS)
        Each function's PASID table size in entries.
    inv_request, flush : In(1); inv_kind : In(2); inv_pasid : In(PASID_BITS); inv_vaddr : In(64)
    inv_busy : Out(1)
    hits, misses, walk_cycles : Out(32)
    """

    def __init__(self, *, data_width, ram_rows, ram_addr_bits, landing, sets=64, ways=4):
        self._args = dict(data_width=data_width, ram_rows=ram_rows, ram_addr_bits=ram_addr_bits,
                          landing=landing)
        self._sets, self._ways = sets, ways
        super().__init__({
            "lookup": In(stream.Signature(Lookup())),
            "result": Out(stream.Signature(Translation())),
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))),
            "rd_status": In(stream.Signature(ReadStatus(), always_ready=True)),
            "ram_snoop": In(RamWriteSignature(data_width, ram_rows)),
            "pasid_table": In(64).array(1 << FUNCTION_BITS),
            "pasid_count": In(PASID_BITS + 1).array(1 << FUNCTION_BITS),
            "inv_request": In(1),
            "inv_kind": In(2),
            "inv_pasid": In(PASID_BITS),
            "inv_vaddr": In(64),
            "flush": In(1),
            "inv_busy": Out(1),
            "hits": Out(32),
            "misses": Out(32),
            "walk_cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.tlb = tlb = Tlb(sets=self._sets, ways=self._ways)
        m.submodules.walker = walker = PageWalker()
        m.submodules.reader = reader = TableReader(**self._args)

        wiring.connect(m, wiring.flipped(self.lookup), tlb.lookup)
        wiring.connect(m, tlb.result, wiring.flipped(self.result))
        wiring.connect(m, tlb.walk, walker.request)
        wiring.connect(m, walker.result, tlb.walked)
        wiring.connect(m, walker.read_addr, reader.read_addr)
        wiring.connect(m, reader.read_data, walker.read_data)
        wiring.connect(m, reader.rd_req, wiring.flipped(self.rd_req))
        wiring.connect(m, wiring.flipped(self.rd_status), reader.rd_status)
        m.d.comb += [
            reader.ram_snoop.row.eq(self.ram_snoop.row),
            reader.ram_snoop.data.eq(self.ram_snoop.data),
            reader.ram_snoop.en.eq(self.ram_snoop.en),
            walker.flush.eq(tlb.invalidating),
            reader.flush.eq(walker.drop_cached),
            self.hits.eq(tlb.hits),
            self.misses.eq(tlb.misses),
            self.walk_cycles.eq(tlb.walk_cycles),
        ]
        for f in range(1 << FUNCTION_BITS):
            m.d.comb += [walker.pasid_table[f].eq(self.pasid_table[f]),
                         walker.pasid_count[f].eq(self.pasid_count[f])]

        pending = Signal()
        inv = Signal(Invalidate())
        merged = Signal(Invalidate())
        m.d.comb += [merged.kind.eq(Mux(self.flush, TlbInvalidateKind.ALL, self.inv_kind)),
                     merged.pasid.eq(self.inv_pasid), merged.vaddr.eq(self.inv_vaddr)]
        m.d.comb += [tlb.invalidate.valid.eq(pending), tlb.invalidate.payload.eq(inv)]
        with m.If(self.inv_request | self.flush):
            m.d.sync += pending.eq(1)
            with m.If(pending & ~tlb.invalidate.ready):
                m.d.sync += inv.kind.eq(TlbInvalidateKind.ALL)
            with m.Else():
                m.d.sync += inv.eq(merged)
        with m.Elif(tlb.invalidate.ready):
            m.d.sync += pending.eq(0)
        m.d.comb += self.inv_busy.eq(pending | tlb.invalidating)
        return m
