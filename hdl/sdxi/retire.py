"""Retire unit: completes issued descriptors in ring order (CST, interrupt, read index)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ErrClass, ErrStep, ErrSubStep

from ..common.fsm import goto, request_states
from ..common.priority import lowest_set
from ..config import FUNCTION_BITS
from ..pcie.dma_ram import RamWriteSignature
from ..pcie.dma_write import WriteRequest, WriteStatus
from .data_mover import MoverResult
from .error_completion import ErrorReport, found_fields


__all__ = ["Retire", "RetireRecord", "ContextFailure", "CST_WRITERS"]

CST_WRITERS = 4             #: completion status blocks being written at once


class RetireRecord(data.StructLayout):
    """An issued descriptor, in ring order: what completing it takes."""

    def __init__(self, cxt_bits):
        super().__init__({
            "cxt": cxt_bits, "sts": 64, "index": 64,
            "mover": 1,          # a data mover result comes for it
            "cst": 1, "csb": 64,
            "intr": 1, "vector": 11,
            "intr_function": FUNCTION_BITS,   # whose vector: the context's or an RKey's target
        })


class ContextFailure(data.StructLayout):
    """A context that failed in the datapath: the front end stops serving it (its CXT_STS,
    written by the retire unit, says where it stopped)."""

    def __init__(self, cxt_bits):
        super().__init__({"cxt": cxt_bits})


class Retire(wiring.Component):
    """Completes descriptors in the order they were issued (docs/context-engine.md, "Retire").

    For each record: wait for its data mover result if it has one; then write its CST (flags
    dword, then ``signal = 0``) in the background on the ``cst`` client, raise its interrupt once
    every earlier write has been confirmed, and count it complete. CXT_STS.read_index is written
    on the ``ri`` client, never past a descriptor whose CST is still in flight, whenever the
    records run out, the context changes or 8 have completed since the last write.

    A mover error fails the descriptor: an error report to the error completion unit
    (CXT_STS.state = ERR_FN, an error-log entry: step 10, DAF, re = 1, the CST with er = 1),
    then ``failure`` to the front end. Later records of that
    context are dropped until ``clear_failed``. An aborted result (hard stop) drops its record.

    Members
    -------
    records : In(stream.Signature(RetireRecord))
    results : In(stream.Signature(MoverResult))
    cst_req, cst_status : CST_WRITERS write clients, CSTs in flight at once
    ri_req, ri_status : write client for the read index
    ram_wr, ram_wr_taken : RAM staging of the read index (``stage`` holds the constants of
        ``RamLayout``): one qword, repeated across the row (a qword writer of the DMA RAM)
    error_report : Out(stream.Signature(ErrorReport)), to the error completion unit
    failure : Out(stream.Signature(ContextFailure)), a one-clock report (always taken)
    clear_failed : In(contexts), contexts (re)started: their records count again
    restart : In(1), the function is activating: forget the last context's indexes
    raise_vectors : Out(vectors), raise_function : Out(FUNCTION_BITS)
        MSI-X vectors to raise, of that function
    idle : Out(1), from a register: nothing was held or in flight in the last clock. The unit
        leaves idle only by taking a record, so while no record is offered it is still idle.
    """

    def __init__(self, *, contexts, vectors, data_width, ram_rows, ram_addr_bits, layout,
                 context_bits=None):
        """``contexts`` of all functions together; a context's function is its number's bits
        from ``context_bits`` up (all of them: one function)."""
        self._n = contexts
        self._cxt_bits = max(1, (contexts - 1).bit_length())
        self._fn_shift = self._cxt_bits if context_bits is None else context_bits
        self._lay = layout
        self._w = data_width
        super().__init__({
            "records": In(stream.Signature(RetireRecord(self._cxt_bits))),
            "results": In(stream.Signature(MoverResult())),
            "cst_req": Out(stream.Signature(WriteRequest(ram_addr_bits))).array(CST_WRITERS),
            "cst_status": In(stream.Signature(WriteStatus(), always_ready=True)).array(CST_WRITERS),
            "ri_req": Out(stream.Signature(WriteRequest(ram_addr_bits))),
            "ri_status": In(stream.Signature(WriteStatus(), always_ready=True)),
            "ram_wr": Out(RamWriteSignature(data_width, ram_rows)),
            "ram_wr_taken": In(1),
            "error_report": Out(stream.Signature(ErrorReport())),
            "failure": Out(stream.Signature(ContextFailure(self._cxt_bits))),
            "clear_failed": In(contexts),
            "restart": In(1),
            "raise_vectors": Out(vectors),
            "raise_function": Out(FUNCTION_BITS),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lay = self._lay
        row = lay.row

        failed = Signal(self._n)
        m.d.sync += failed.eq(failed & ~self.clear_failed)

        rec = Signal.like(self.records.payload)
        err = Signal(8)
        buf = Signal()

        # ---- CST writers: flags, then signal, in the background; CST_WRITERS at once -------------
        cst_start = Signal()            # start the lowest idle writer on cst_addr / cst_er
        cst_er = Signal()
        cst_addr = Signal(64)
        busy = Signal(CST_WRITERS)
        cst_busy = Signal()             # any writer busy
        m.d.comb += cst_busy.eq(busy.any())
        free_writer, writer_free = lowest_set(m, ~busy, name="free_writer")
        hold = [Signal(64, name=f"hold{c}") for c in range(CST_WRITERS)]
        queues = [Signal.like(self.cst_req[0].payload, name=f"cst_q{c}")
                  for c in range(CST_WRITERS)]
        for c in range(CST_WRITERS):
            q, req, st = queues[c], self.cst_req[c], self.cst_status[c]
            m.d.comb += req.payload.eq(q)
            with m.FSM(name=f"cst{c}"):
                with m.State("IDLE"):
                    with m.If(cst_start & (free_writer == c)):
                        m.d.sync += [q.addr.eq(cst_addr + 8), q.length.eq(4),
                                     q.function.eq(rec.cxt >> self._fn_shift),
                                     q.ram_addr.eq(Mux(cst_er, lay.flags_err, lay.flags_ok)),
                                     hold[c].eq(rec.index)]
                        m.next = "FLAGS"

                def signal_next(q=q):
                    m.d.sync += [q.addr.eq(q.addr - 8), q.length.eq(8), q.ram_addr.eq(lay.zero)]
                    m.next = "SIGNAL"

                request_states(m, "FLAGS", req, st, signal_next, busy=busy[c])
                request_states(m, "SIGNAL", req, st, goto(m, "IDLE"), busy=busy[c])

        # ---- read index: completed (done), safe to publish (safe), published (written) -----------
        cur_cxt = Signal(self._cxt_bits)
        cur_sts = Signal(64)
        done_index = Signal(64)
        written = Signal(64)
        # Never past a CST still being written: the oldest busy writer's descriptor bounds it.
        # ``safe`` is that bound one clock ago, from a register: the bound only grows within a
        # context, so an older value is never past it (and a new context sets both).
        safe = Signal(64)
        bound = done_index
        for c in range(CST_WRITERS):
            bound = Mux(busy[c] & (hold[c] < bound), hold[c], bound)
        m.d.sync += safe.eq(bound)

        ri_q = Signal.like(self.ri_req.payload)
        m.d.comb += self.ri_req.payload.eq(ri_q)
        ri_busy = Signal()
        ri_kick = Signal()             # publish now (records ran out, context change)
        ri_value = Signal(64)
        with m.FSM(name="ri"):
            with m.State("IDLE"):
                with m.If((safe != written) & (ri_kick | (safe - written >= 8))):
                    m.d.sync += ri_value.eq(safe)
                    m.next = "STAGE"
            with m.State("STAGE"):
                m.d.comb += [ri_busy.eq(1),
                             self.ram_wr.row.eq(lay.read_index // row),
                             self.ram_wr.data.eq(ri_value.replicate(self._w // 64)),
                             self.ram_wr.en.eq(0xFF)]
                with m.If(self.ram_wr_taken):
                    m.d.sync += [ri_q.addr.eq(cur_sts + 8), ri_q.length.eq(8),
                                 ri_q.function.eq(cur_cxt >> self._fn_shift),
                                 ri_q.ram_addr.eq(lay.read_index)]
                    m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += [ri_busy.eq(1), self.ri_req.valid.eq(1)]
                with m.If(self.ri_req.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += ri_busy.eq(1)
                with m.If(self.ri_status.valid):
                    m.d.sync += written.eq(ri_value)
                    m.next = "IDLE"

        # ---- records, in order -------------------------------------------------------------------

        # Everything completed is published: with no CST writer busy, the bound is done_index.
        settled = Signal()
        m.d.comb += settled.eq(~cst_busy & ~ri_busy & (done_index == written))
        idle_now = Signal()
        m.d.sync += self.idle.eq(idle_now)
        have_cur = Signal()
        with m.If(self.restart):
            m.d.sync += have_cur.eq(0)
        switching = Signal()
        m.d.comb += switching.eq(~have_cur | (self.records.payload.cxt != cur_cxt))
        complete = [done_index.eq(rec.index + 1)]
        with m.FSM(name="retire"):
            with m.State("NEXT"):
                m.d.comb += idle_now.eq(settled & ~self.records.valid)
                with m.If(~self.records.valid):
                    m.d.comb += ri_kick.eq(1)
                with m.Elif(switching & ~settled):
                    m.d.comb += ri_kick.eq(1)      # publish the last context's index first
                with m.Else():
                    m.d.comb += self.records.ready.eq(1)
                    p = self.records.payload
                    r = self.results.payload
                    # The common case completes in this clock: no CST, no interrupt, data done.
                    quick = (~switching & ~failed.bit_select(p.cxt, 1) & ~p.cst & ~p.intr &
                             (~p.mover | (self.results.valid & (r.error == 0) & ~r.aborted)))
                    m.d.sync += rec.eq(p)
                    with m.If(switching):
                        m.d.sync += [cur_cxt.eq(p.cxt), cur_sts.eq(p.sts), done_index.eq(p.index),
                                     written.eq(p.index), safe.eq(p.index), have_cur.eq(1)]
                    with m.If(quick):
                        m.d.comb += self.results.ready.eq(p.mover)
                        m.d.sync += done_index.eq(p.index + 1)
                    with m.Elif(p.mover):
                        m.next = "RESULT"
                    with m.Else():
                        m.next = "COMPLETE"
            with m.State("RESULT"):
                m.d.comb += self.results.ready.eq(1)
                r = self.results.payload
                with m.If(self.results.valid):
                    m.d.sync += [err.eq(r.error), buf.eq(r.buffer)]
                    with m.If(failed.bit_select(rec.cxt, 1) | r.aborted):
                        m.next = "NEXT"                  # dropped
                    with m.Elif(r.error != 0):
                        m.next = "FAIL_SETTLE"
                    with m.Else():
                        m.next = "COMPLETE"
            with m.State("COMPLETE"):
                with m.If(failed.bit_select(rec.cxt, 1)):
                    m.next = "NEXT"
                with m.Elif(rec.cst | rec.intr):
                    # A CST takes a free writer; an interrupt waits for every earlier write.
                    with m.If(Mux(rec.intr, ~cst_busy, writer_free)):
                        m.d.comb += [cst_start.eq(rec.cst), cst_addr.eq(rec.csb), cst_er.eq(0)]
                        with m.If(rec.intr):
                            m.next = "INTR"
                        with m.Else():
                            m.d.sync += complete
                            m.next = "NEXT"
                with m.Else():
                    m.d.sync += complete
                    m.next = "NEXT"
            with m.State("INTR"):
                with m.If(~cst_busy & ~cst_start):
                    m.d.comb += [self.raise_vectors.eq(1 << rec.vector),
                                 self.raise_function.eq(rec.intr_function)]
                    m.d.sync += complete
                    m.next = "NEXT"

            # ---- a datapath error: ERR_FN, log entry, CST with er, then tell the front end -----
            with m.State("FAIL_SETTLE"):
                m.d.comb += ri_kick.eq(1)
                with m.If(settled):
                    m.next = "FAIL"
            with m.State("FAIL"):
                rep = self.error_report
                sub_step = Mux(ErrClass.is_translation(err), ErrSubStep.ATF,
                               Mux(err == ErrClass.BAD_PARAMETER, ErrSubStep.DVF, ErrSubStep.DAF))
                m.d.comb += [
                    rep.valid.eq(1), rep.payload.stop.eq(1), rep.payload.sts.eq(rec.sts),
                    rep.payload.cst.eq(rec.cst), rep.payload.csb.eq(rec.csb),
                    rep.payload.notify.eq(0),       # a data-buffer error: this function's only
                    *found_fields(rep.payload.found, step=ErrStep.DATA_BUFFER, sub_step=sub_step,
                                  err_class=err, function=0, cxt=rec.cxt, index=rec.index,
                                  buf=buf),
                ]
                with m.If(rep.ready):
                    m.d.sync += failed.bit_select(rec.cxt, 1).eq(1)
                    m.next = "FAIL_REPORT"
            with m.State("FAIL_REPORT"):
                m.d.comb += [self.failure.valid.eq(1), self.failure.payload.cxt.eq(rec.cxt)]
                m.next = "NEXT"
        return m
