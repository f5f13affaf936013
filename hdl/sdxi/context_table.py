"""Context table and scheduler: what the engine keeps of each context, and whose turn is next."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.priority import round_robin


__all__ = ["ContextTable", "CxtEntry", "FlagUpdate"]


class CxtEntry(data.StructLayout):
    """A context as the engine keeps it on chip."""

    def __init__(self):
        super().__init__({
            "ring": 64, "ring_sz": 32, "sts": 64, "wi_ptr": 64, "akey": 64, "akey_sz": 4,
            "max_buffer": 4, "opb": 32, "qos": 2, "read_index": 64, "slot": 32, "state": 4,
            # L1 pv, cxt_pasid and ~pr: the space of the ring, CXT_STS, write index and CSTs;
            # sts and wi_ptr hold bus addresses, translated when the context is loaded.
            "pv": 1, "pasid": 20, "user": 1,
            "wi_fault": 3,      # the write index's translation failed (a Fault): step 6
        })


class FlagUpdate(data.StructLayout):
    """What happened to context ``cur`` in this clock (and, for ``forget_all``, to all of its
    function's contexts)."""

    def __init__(self):
        super().__init__({
            "forget_all": 1,    # activation: no context of the function is known, runs or
                                # has work
            "stopped": 1,       # not running, no work
            "started": 1,       # running, with work
            "idle": 1,          # no work beyond its write index
            "more": 1,          # work left after its turn
            "fresh": 1,         # its cached structures are current
            "stale": 1,         # its cached structures are to be re-read before use
            "known": 1,         # it has a table entry
        })


class ContextTable(wiring.Component):
    """The context table (a RAM of ``CxtEntry``) and the per-context flags, with the
    round-robin choice of the next context to serve (docs/context-engine.md, "Front end").

    The entry of ``cur`` is read one clock after ``cur`` is set (``entry``) and written with
    ``save``. Per context, flip-flops updated once a clock from masks: ``running``, ``work``
    (may have descriptors beyond its last turn), ``stale`` (cached structures to re-read before
    use) and ``known`` (has a table entry since activation). ``update`` says what happened to
    ``cur``; ``failed`` stops ``failed_cxt`` (the retire unit ended it). Where updates meet in
    one clock, setting wins. Every per-context update goes through the one decoder of ``cur``
    (or of ``failed_cxt``): an operation on a range of contexts visits them one per clock.

    The next context to serve is the first after the last served (``served`` records ``next``)
    that runs and has a doorbell ``pending`` or work (``round_robin``: two priority encoders).

    Members
    -------
    cur : In(range(contexts)), entry : Out(CxtEntry), save : In(1), save_entry : In(CxtEntry)
    update : In(FlagUpdate), failed : In(1), failed_cxt : In(range(contexts))
    pending : In(contexts)
    next, next_valid : Out, served : In(1)
    cur_running, cur_stale, others_waiting : Out(1)
        ``cur`` runs; ``cur`` is stale; another running context has a doorbell or work.
    query : In(range(contexts)), query_running, query_known : Out(1)
    fn_running : Out(functions), a context of the function runs
    cur_function : Out(contexts), the contexts of ``cur``'s function, as a mask

    The contexts of all functions are numbered together: a context's function is its number's
    bits from ``context_bits`` up (all of them: one function).
    """

    def __init__(self, *, contexts, context_bits=None):
        self._n = contexts
        self._cbits = max(1, (contexts - 1).bit_length()) if context_bits is None \
            else context_bits
        self._fns = max(1, contexts >> self._cbits)
        n = range(contexts)
        super().__init__({
            "cur": In(n), "entry": Out(CxtEntry()), "save": In(1), "save_entry": In(CxtEntry()),
            "update": In(FlagUpdate()), "failed": In(1), "failed_cxt": In(n),
            "pending": In(contexts),
            "next": Out(n), "next_valid": Out(1), "served": In(1),
            "cur_running": Out(1), "cur_stale": Out(1), "others_waiting": Out(1),
            "query": In(n), "query_running": Out(1), "query_known": Out(1),
            "fn_running": Out(self._fns), "cur_function": Out(contexts),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        m.submodules.table = table = Memory(shape=CxtEntry(), depth=n, init=[])
        rd = table.read_port(domain="sync")
        wr = table.write_port()
        m.d.comb += [rd.addr.eq(self.cur), self.entry.eq(rd.data),
                     wr.addr.eq(self.cur), wr.data.eq(self.save_entry), wr.en.eq(self.save)]

        running, work, stale, known = Signal(n), Signal(n), Signal(n), Signal(n)
        cur_bit = Signal(n)
        m.d.comb += cur_bit.eq(Const(1, n) << self.cur)
        up = self.update
        per_function = min(n, 1 << self._cbits)
        # The contexts of ``cur``'s function (``forget_all`` keeps every other's).
        with m.Switch(self.cur >> self._cbits):
            for f in range(self._fns):
                with m.Case(f):
                    mine = ((1 << per_function) - 1) << (f * per_function)
                    m.d.comb += self.cur_function.eq(mine)
        other_functions = ~self.cur_function
        failed_bit = Mux(self.failed, Const(1, n) << self.failed_cxt, 0)
        stop_mask = Mux(up.stopped, cur_bit, 0) | failed_bit
        m.d.sync += [
            running.eq(Mux(up.forget_all, running & other_functions,
                           (running & ~stop_mask) | Mux(up.started, cur_bit, 0))),
            work.eq(Mux(up.forget_all, work & other_functions,
                        (work & ~stop_mask & ~Mux(up.idle, cur_bit, 0)) |
                        Mux(up.started | up.more, cur_bit, 0))),
            stale.eq(Mux(up.forget_all, stale & other_functions,
                         (stale & ~Mux(up.fresh, cur_bit, 0)) | Mux(up.stale, cur_bit, 0))),
            known.eq(Mux(up.forget_all, known & other_functions,
                         known | Mux(up.known, cur_bit, 0))),
        ]

        candidates = Signal(n)
        m.d.comb += candidates.eq(running & (self.pending | work))
        last_served = Signal(range(n))
        pick, any_ = round_robin(m, candidates, last_served, name="sched")
        with m.If(self.served):
            m.d.sync += last_served.eq(pick)
        m.d.comb += [
            self.next.eq(pick), self.next_valid.eq(any_),
            self.cur_running.eq(running.bit_select(self.cur, 1)),
            self.cur_stale.eq(stale.bit_select(self.cur, 1)),
            self.others_waiting.eq((candidates & ~cur_bit) != 0),
            self.query_running.eq(running.bit_select(self.query, 1)),
            self.query_known.eq(known.bit_select(self.query, 1)),
            *[self.fn_running[f].eq(running[f * per_function:(f + 1) * per_function].any())
              for f in range(self._fns)],
        ]
        return m
