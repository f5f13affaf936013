"""Round-robin merge of packet streams, whole packets at a time."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .priority import round_robin


__all__ = ["PacketArbiter"]


class PacketArbiter(wiring.Component):
    """Merge ``count`` streams of a payload with ``first`` and ``last`` fields.

    Inputs with a packet waiting are served in turn; once a packet's first beat is through,
    its input keeps the output until the beat with ``last``. No beat is delayed when only one
    input is busy.

    Members
    -------
    i : In(stream.Signature(layout)).array(count)
    o : Out(stream.Signature(layout))
    """

    def __init__(self, layout, count):
        if count < 1:
            raise ValueError("at least one input")
        self._count = count
        super().__init__({
            "i": In(stream.Signature(layout)).array(count),
            "o": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._count
        locked = Signal()
        owner = Signal(range(max(n, 2)))
        last = Signal(range(max(n, 2)))
        valids = Signal(n)
        for k in range(n):
            m.d.comb += valids[k].eq(self.i[k].valid)
        choice, _ = round_robin(m, valids, last, name="input")
        sel = Signal(range(max(n, 2)))
        m.d.comb += sel.eq(choice)
        with m.If(locked):
            m.d.comb += sel.eq(owner)
        for k in range(n):
            with m.If(sel == k):
                m.d.comb += [
                    self.o.valid.eq(self.i[k].valid),
                    self.o.payload.eq(self.i[k].payload),
                    self.i[k].ready.eq(self.o.ready),
                ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [last.eq(sel), owner.eq(sel), locked.eq(~self.o.payload.last)]
        return m

