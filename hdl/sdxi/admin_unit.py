"""Admin unit: the walk of an admin operation over its range of contexts."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["AdminAction", "AdminJob", "AdminStep", "AdminUnit"]


class AdminAction(enum.Enum, shape=2):
    """What an admin operation does to each context of its range."""
    START = 0       #: CXT_START_NM / CXT_START_RS: load and run it, unless it runs
    STOP = 1        #: CXT_STOP: stop it (STOP_SW), if it has been loaded since activation
    MARK = 2        #: CXT_UPD, SYNC over contexts: re-read its cached structures before use


class AdminJob(data.StructLayout):
    """An admin operation's ``action`` over contexts ``first`` to ``last`` (checked by the
    decoder: 1 <= first <= last <= CTL2.max_cxt)."""

    def __init__(self):
        super().__init__({"action": AdminAction, "first": 16, "last": 16})


class AdminStep(data.StructLayout):
    """``action`` on context ``cxt``."""

    def __init__(self):
        super().__init__({"action": AdminAction, "cxt": 16})


class AdminUnit(wiring.Component):
    """Walks an admin operation's range one context at a time (CXT_START, CXT_STOP, SYNC:
    SDXI Tables 6-14, 6-15, 6-22; docs/context-engine.md "Front end"): for each context it
    asks the context table about it (``query``), and hands a ``step`` to the engine where the
    action applies
    (START: the context does not run; STOP: it has an entry; MARK: always). The engine takes a
    step (``ready``) once it has done it, so steps never overlap and each sees the flags the one
    before left. ``busy`` from the clock after a job is taken until its last context is done.
    ``abort`` (activation) drops a walk that a function error cut short.

    Members
    -------
    job : In(stream.Signature(AdminJob))
    step : Out(stream.Signature(AdminStep))
    busy : Out(1)
    query : Out(16); query_running, query_known : In(1), the context table's flags of ``query``
    abort : In(1)
    """

    def __init__(self):
        super().__init__({
            "job": In(stream.Signature(AdminJob())),
            "step": Out(stream.Signature(AdminStep())),
            "busy": Out(1),
            "query": Out(16), "query_running": In(1), "query_known": In(1),
            "abort": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        walk = Signal(data.StructLayout({"action": AdminAction, "cxt": 16, "last": 16}))
        m.d.comb += [self.query.eq(walk.cxt), self.step.payload.action.eq(walk.action),
                     self.step.payload.cxt.eq(walk.cxt)]
        applies = Signal()
        with m.Switch(walk.action):
            with m.Case(AdminAction.START):
                m.d.comb += applies.eq(~self.query_running)
            with m.Case(AdminAction.STOP):
                m.d.comb += applies.eq(self.query_known)
            with m.Default():
                m.d.comb += applies.eq(1)

        def next_context():
            with m.If(walk.cxt == walk.last):
                m.next = "IDLE"
            with m.Else():
                m.d.sync += walk.cxt.eq(walk.cxt + 1)
                m.next = "LOOK"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.job.ready.eq(1)
                with m.If(self.job.valid):
                    j = self.job.payload
                    m.d.sync += [walk.action.eq(j.action), walk.cxt.eq(j.first),
                                 walk.last.eq(j.last)]
                    m.next = "LOOK"
            with m.State("LOOK"):
                m.d.comb += self.busy.eq(1)
                with m.If(self.abort):
                    m.next = "IDLE"
                with m.Elif(applies):
                    m.next = "STEP"
                with m.Else():
                    next_context()
            with m.State("STEP"):
                m.d.comb += [self.busy.eq(1), self.step.valid.eq(1)]
                with m.If(self.abort):
                    m.next = "IDLE"
                with m.Elif(self.step.ready):
                    next_context()
        return m
