"""Error completion: what ending a context in error writes, shared by the front end and retire."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ERRLOG_TYPE, ErrReaction
from sdxi_defs.ram_map import RamLayout
from sdxi_defs.structures import ERRLOG_HD_ENT, CxtState

from ..common.fsm import goto, request_states
from ..common.layouts import layout_of
from ..config import FUNCTION_BITS
from ..pcie.dma_write import WriteRequest, WriteStatus


__all__ = ["ErrorCompletion", "ErrorFound", "ErrorReport", "LogRequest", "entry_fields",
           "found_fields"]


_ENTRY = layout_of(ERRLOG_HD_ENT)


class ErrorFound(data.StructLayout):
    """What an error-log header entry says about one error (sdxi-spec.md 6), and nothing of
    the entry's constant or reserved bits: ``function`` is whether the function stops (re)
    rather than the context; ``div`` whether ``index`` names the descriptor (its read index);
    ``bv`` whether ``buf`` names its operand. ``entry_fields`` makes the entry from it."""

    def __init__(self):
        super().__init__({
            "function": 1, "step": _ENTRY["step"].width, "sub_step": _ENTRY["sub_step"].width,
            "err_class": _ENTRY["err_class"].width, "cxt": _ENTRY["cxt_num"].width,
            "div": 1, "index": _ENTRY["dsc_index"].width, "bv": 1, "buf": _ENTRY["buf"].width,
        })


def found_fields(found, *, step, sub_step, err_class, function, cxt, index, buf, bv=None):
    """Assignments that make ``found`` (an ``ErrorFound`` view) describe an error: ``index``
    is the descriptor's read index or ``None``, ``buf`` its operand or ``None`` (or, where
    that is only known in the gateware, ``bv`` says whether ``buf`` names one)."""
    return [
        found.function.eq(function), found.step.eq(step), found.sub_step.eq(sub_step),
        found.err_class.eq(err_class), found.cxt.eq(cxt),
        found.div.eq(index is not None), found.index.eq(0 if index is None else index),
        found.bv.eq((buf is not None) if bv is None else bv),
        found.buf.eq(0 if buf is None else buf),
    ]


def entry_fields(entry, found):
    """Assignments that make ``entry`` (a ``layout_of(ERRLOG_HD_ENT)`` view) the error-log
    header entry of ``found`` (an ``ErrorFound`` view): every bit driven, reserved ones 0;
    the index and operand only where ``div`` and ``bv`` say they are known."""
    return [
        entry.eq(0),
        entry.vl.eq(1), entry.type.eq(ERRLOG_TYPE), entry.step.eq(found.step),
        entry.sub_step.eq(found.sub_step), entry.err_class.eq(found.err_class),
        entry.cv.eq(1),
        entry.re.eq(Mux(found.function, ErrReaction.FUNCTION_STOPPED,
                        ErrReaction.CONTEXT_STOPPED)),
        entry.cxt_num.eq(found.cxt),
        entry.div.eq(found.div), entry.dsc_index.eq(Mux(found.div, found.index, 0)),
        entry.bv.eq(found.bv), entry.buf.eq(Mux(found.bv, found.buf, 0)),
    ]


class LogRequest(data.StructLayout):
    """An error-log entry for the log of ``function``."""

    def __init__(self):
        super().__init__({"entry": _ENTRY, "function": FUNCTION_BITS})


class ErrorReport(data.StructLayout):
    """An error to complete: what was ``found``; with ``stop``, the context's CXT_STS (at
    ``sts``) says ERR_FN first; with ``cst``, the descriptor's CST (at ``csb``) gets er = 1;
    with ``notify``, function ``notify_function`` (an RKey's owner) logs it too."""

    def __init__(self):
        super().__init__({"found": ErrorFound(), "stop": 1, "sts": 64, "cst": 1, "csb": 64,
                          "notify": 1, "notify_function": FUNCTION_BITS})


class ErrorCompletion(wiring.Component):
    """Completes an error the way SDXI's error handling orders it (sdxi-spec.md 6,
    docs/spec-choices.md "Errors"): CXT_STS.state = ERR_FN written and confirmed, then the
    error-log entry handed to the log writer, then the CST's flags with er = 1 and its
    signal cleared, each confirmed before the next. A report is taken (``ready``) when all
    of it is done, so what its sender does next follows it. A report with ``notify`` ends with a
    second entry, for the log of ``notify_function``: the same step, sub-step and class,
    re = INFORMATIVE (nothing of that function stopped) and no context, descriptor or operand
    (they are the other function's). ``reports`` has two ports; port 0
    wins. The writes are best effort: a failed one does not hold up the rest, as the context
    is stopping anyway. A report's ``found.cxt`` numbers the contexts of all functions
    together: its bits from ``context_bits`` up are the function, whose requester ID the writes
    carry and whose log gets the entry (with the context's ID within the function).

    Members
    -------
    reports : In(stream.Signature(ErrorReport)).array(2)
    log : Out(stream.Signature(LogRequest))
    wr_req, wr_status : a write client
    """

    def __init__(self, *, ram_addr_bits, row_bytes, context_bits=_ENTRY["cxt_num"].width):
        self._lay = RamLayout(row_bytes)
        self._cxt_bits = context_bits
        super().__init__({
            "reports": In(stream.Signature(ErrorReport())).array(2),
            "log": Out(stream.Signature(LogRequest())),
            "wr_req": Out(stream.Signature(WriteRequest(ram_addr_bits))),
            "wr_status": In(stream.Signature(WriteStatus(), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        lay = self._lay
        report = Signal(ErrorReport())
        port = Signal()
        chosen = Signal(ErrorReport())
        m.d.comb += chosen.eq(Mux(self.reports[0].valid, self.reports[0].payload,
                                  self.reports[1].payload))
        wq = Signal.like(self.wr_req.payload)
        # The log entry is made here, once, from what the report says.
        function = report.found.cxt >> self._cxt_bits
        second = Signal()                   # the notified function's entry is out
        entry = self.log.payload.entry
        m.d.comb += [self.wr_req.payload.eq(wq), wq.function.eq(function),
                     *entry_fields(entry, report.found),
                     entry.cxt_num.eq(report.found.cxt[:self._cxt_bits]),
                     self.log.payload.function.eq(function)]
        with m.If(second):
            m.d.comb += [entry.re.eq(ErrReaction.INFORMATIVE), entry.cv.eq(0),
                         entry.cxt_num.eq(0), entry.div.eq(0), entry.dsc_index.eq(0),
                         entry.bv.eq(0), entry.buf.eq(0),
                         self.log.payload.function.eq(report.notify_function)]

        def write_cst_flags():
            with m.If(report.cst):
                m.d.sync += [wq.addr.eq(report.csb + 8), wq.length.eq(4),
                             wq.ram_addr.eq(lay.flags_err)]
                m.next = "FLAGS"
            with m.Else():
                m.next = "NOTIFY"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.reports[0].valid | self.reports[1].valid):
                    m.d.sync += [port.eq(~self.reports[0].valid), report.eq(chosen),
                                 wq.addr.eq(chosen.sts), wq.length.eq(1),
                                 wq.ram_addr.eq(lay.states + CxtState.ERR_FN)]
                    m.next = "STATE"
            with m.State("STATE"):
                with m.If(~report.stop):
                    m.next = "LOG"
                with m.Else():
                    m.next = "STATE_WRITE"
            request_states(m, "STATE_WRITE", self.wr_req, self.wr_status, goto(m, "LOG"))
            with m.State("LOG"):
                m.d.comb += self.log.valid.eq(1)
                with m.If(self.log.ready):
                    write_cst_flags()

            def clear_signal():
                m.d.sync += [wq.addr.eq(report.csb), wq.length.eq(8), wq.ram_addr.eq(lay.zero)]
                m.next = "SIGNAL"

            request_states(m, "FLAGS", self.wr_req, self.wr_status, clear_signal)
            request_states(m, "SIGNAL", self.wr_req, self.wr_status, goto(m, "NOTIFY"))
            with m.State("NOTIFY"):
                m.d.comb += [second.eq(1), self.log.valid.eq(report.notify)]
                with m.If(~report.notify | self.log.ready):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.reports[0].ready.eq(~port), self.reports[1].ready.eq(port)]
                m.next = "IDLE"
        return m
