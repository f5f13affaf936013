"""Ring fetcher: reads a context's descriptor ring ahead of decode, a batch at a time."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.ram_map import BATCH, BUFFERS

from ..mmu.tlb import Lookup, Translation
from ..pcie.dma_read import ReadRequest, ReadStatus
from .data_mover import BufferSpace
from .error_classes import class_of_fault, class_of_read_error


__all__ = ["RingFetcher", "RingTurn", "Batch", "FETCHERS"]

FETCHERS = 2                #: ring reads in flight (one read client each)


class RingTurn(data.StructLayout):
    """Where a turn's descriptors are: the ring (``ring_sz`` slots of 64 bytes at ``ring``, in
    ``space``), the index of the first (``pos``) and its slot (``pos`` mod ``ring_sz``)."""

    def __init__(self):
        super().__init__({"ring": 64, "ring_sz": 32, "pos": 64, "slot": 32,
                          "space": BufferSpace()})


class Batch(data.StructLayout):
    """The buffer to decode next: ``full`` once its read is in, ``count`` descriptors from
    RAM buffer ``buffer``, or ``failed`` with ``err_class`` (a read error or a ring page the
    context may not use)."""

    def __init__(self):
        super().__init__({"full": 1, "failed": 1, "err_class": 8,
                          "count": range(BATCH + 1), "buffer": range(max(BUFFERS, 2))})


class RingFetcher(wiring.Component):
    """Fetches a turn's ring batches ahead of decode (docs/context-engine.md, "Fetch").

    ``start`` begins a turn at ``turn``; while ``enable`` is set, descriptors up to
    ``write_index`` are read into the BUFFERS RAM buffers (``desc_base``), BATCH at most per
    read, never across the ring's end nor, for a ring in a pv = 1 space, across a page (each
    page is translated once per turn through ``ring_translate``). Buffer *b* is read by fetch
    client *b* mod FETCHERS; buffers may land out of order and are handed over in ring order
    (``batch``); ``consume`` frees the one handed over. A page the TLB refuses fails the batch
    that would start there and nothing is fetched after it. ``flush`` forgets every buffer
    (only while not ``busy``).

    Members
    -------
    start : In(1), turn : In(RingTurn), enable : In(1), write_index : In(64)
    busy : Out(1)
        A ring read or a page translation is in flight.
    pos : Out(64)
        The index of the next descriptor to fetch.
    batch : Out(Batch), consume : In(1), flush : In(1)
    fetch_req, fetch_status : the ring read clients (FETCHERS)
    ring_translate, ring_translated : the TLB
    """

    def __init__(self, *, ram_addr_bits, desc_base):
        self._ram_bits = ram_addr_bits
        self._desc_base = desc_base
        super().__init__({
            "start": In(1), "turn": In(RingTurn()), "enable": In(1), "write_index": In(64),
            "busy": Out(1), "pos": Out(64),
            "batch": Out(Batch()), "consume": In(1), "flush": In(1),
            "fetch_req": Out(stream.Signature(ReadRequest(ram_addr_bits))).array(FETCHERS),
            "fetch_status": In(stream.Signature(ReadStatus(), always_ready=True)).array(FETCHERS),
            "ring_translate": Out(stream.Signature(Lookup())),
            "ring_translated": In(stream.Signature(Translation())),
        })

    def elaborate(self, platform):
        m = Module()
        turn = Signal(RingTurn())               # ring, size and space of this turn
        fetch_pos = Signal(64)
        fetch_slot = Signal(32)
        with m.If(self.start):
            m.d.sync += [turn.eq(self.turn), fetch_pos.eq(self.turn.pos),
                         fetch_slot.eq(self.turn.slot)]
        m.d.comb += self.pos.eq(fetch_pos)

        buf_full = Signal(BUFFERS)
        buf_err = Signal(BUFFERS)
        buf_n = Signal(data.ArrayLayout(range(BATCH + 1), BUFFERS))
        buf_class = Signal(data.ArrayLayout(8, BUFFERS))    # a failed buffer's ErrClass
        fb = Signal(range(max(BUFFERS, 2)))     # buffer the fetcher fills next
        db = Signal(range(max(BUFFERS, 2)))     # buffer handed over to decode
        buf_fetching = Signal(BUFFERS)
        f_busy = Signal(FETCHERS)
        f_buf = Signal(data.ArrayLayout(range(max(BUFFERS, 2)), FETCHERS))
        fq = Signal(data.ArrayLayout(ReadRequest(self._ram_bits), FETCHERS))
        f_sent = Signal(FETCHERS)
        # A pv = 1 context's ring is read a page at a time, through the translation of that
        # page (``ring_frame``, or ``ring_fault``), looked up once per page and turn.
        space = turn.space
        ring_asking = Signal()
        ring_known = Signal()
        ring_vpn = Signal(52)
        ring_frame = Signal(52)
        ring_fault = Signal(3)
        ring_failed = Signal()                  # a buffer holds a ring translation fault
        with m.If(self.start):
            m.d.sync += [ring_known.eq(0), ring_failed.eq(0)]
        m.d.comb += self.busy.eq(f_busy.any() | ring_asking)
        fetch_addr = Signal(64)
        avail = Signal(64)
        to_end = Signal(32)
        to_page = Signal(7)
        m.d.comb += [fetch_addr.eq(turn.ring + (fetch_slot << 6)),
                     avail.eq(self.write_index - fetch_pos), to_end.eq(turn.ring_sz - fetch_slot),
                     to_page.eq(64 - fetch_addr[6:12])]
        in_ring = Mux((avail < BATCH) & (avail < to_end), avail, Mux(to_end < BATCH, to_end, BATCH))
        count = Mux(space.pv & (to_page < in_ring), to_page, in_ring)
        f_next = Signal(range(max(FETCHERS, 2)))
        m.d.comb += f_next.eq(fb % FETCHERS if FETCHERS > 1 else 0)
        page_known = ring_known & (ring_vpn == fetch_addr[12:])
        wanted = self.enable & (fetch_pos < self.write_index) & ~ring_failed
        slot_free = (~buf_full.bit_select(fb, 1) & ~buf_fetching.bit_select(fb, 1) &
                     ~f_busy.bit_select(f_next, 1))
        can_fetch = wanted & slot_free & (~space.pv | (page_known & (ring_fault == 0)))
        ring_offered = Signal()                 # the lookup is offered and not yet taken
        ask = self.ring_translate
        m.d.comb += [ask.valid.eq(ring_offered),
                     ask.payload.pasid.eq(space.pasid),
                     ask.payload.vaddr.eq(Cat(Const(0, 12), ring_vpn)),
                     ask.payload.user.eq(space.user),
                     ask.payload.function.eq(space.function),
                     self.ring_translated.ready.eq(1)]
        with m.If(wanted & space.pv & ~page_known & ~ring_asking):
            m.d.sync += [ring_asking.eq(1), ring_offered.eq(1), ring_known.eq(0),
                         ring_vpn.eq(fetch_addr[12:])]
        with m.If(ask.valid & ask.ready):
            m.d.sync += ring_offered.eq(0)
        with m.If(self.ring_translated.valid):
            m.d.sync += [ring_asking.eq(0), ring_known.eq(1),
                         ring_fault.eq(self.ring_translated.payload.fault),
                         ring_frame.eq(self.ring_translated.payload.paddr[12:])]
        with m.If(wanted & slot_free & space.pv & page_known & (ring_fault != 0)):
            # The page is refused: the batch that would start there fails instead.
            m.d.sync += [ring_failed.eq(1), buf_full.bit_select(fb, 1).eq(1),
                         buf_err.bit_select(fb, 1).eq(1),
                         buf_class[fb].eq(class_of_fault(ring_fault))]
        with m.If(can_fetch):
            addr = Mux(space.pv, Cat(fetch_addr[:12], ring_frame), fetch_addr)
            batch_shift = 6 + (BATCH - 1).bit_length()
            m.d.sync += [fq[f_next].addr.eq(addr), fq[f_next].length.eq(count << 6),
                         fq[f_next].ram_addr.eq(self._desc_base + (fb << batch_shift)),
                         fq[f_next].id.eq(0), fq[f_next].function.eq(space.function),
                         f_busy.bit_select(f_next, 1).eq(1),
                         f_sent.bit_select(f_next, 1).eq(0), f_buf[f_next].eq(fb),
                         buf_n[fb].eq(count),
                         buf_fetching.bit_select(fb, 1).eq(1), fetch_pos.eq(fetch_pos + count),
                         fetch_slot.eq(Mux(count == to_end, 0, fetch_slot + count)),
                         fb.eq(Mux(fb == BUFFERS - 1, 0, fb + 1))]
        for f in range(FETCHERS):
            req, st = self.fetch_req[f], self.fetch_status[f]
            m.d.comb += [req.payload.eq(fq[f]), req.valid.eq(f_busy[f] & ~f_sent[f])]
            with m.If(req.valid & req.ready):
                m.d.sync += f_sent[f].eq(1)
            with m.If(st.valid):
                m.d.sync += [buf_class[f_buf[f]].eq(class_of_read_error(st.payload.error)),
                             f_busy[f].eq(0), buf_fetching.bit_select(f_buf[f], 1).eq(0),
                             buf_full.bit_select(f_buf[f], 1).eq(1),
                             buf_err.bit_select(f_buf[f], 1).eq(st.payload.error != 0)]

        # ---- hand-over, in ring order ------------------------------------------------------------
        m.d.comb += [
            self.batch.full.eq(buf_full.bit_select(db, 1)),
            self.batch.failed.eq(buf_err.bit_select(db, 1)),
            self.batch.err_class.eq(buf_class[db]),
            self.batch.count.eq(buf_n[db]),
            self.batch.buffer.eq(db),
        ]
        with m.If(self.consume):
            m.d.sync += [buf_full.bit_select(db, 1).eq(0),
                         db.eq(Mux(db == BUFFERS - 1, 0, db + 1))]
        with m.If(self.flush):
            m.d.sync += [buf_full.eq(0), fb.eq(0), db.eq(0)]
        return m
