"""A stream register slice: a full-rate stream cut by registers in both directions."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["RegisterSlice"]


class RegisterSlice(wiring.Component):
    """``i`` to ``o`` through an output register and a skid register.

    ``o.valid``, ``o.payload`` and ``i.ready`` all come from flip-flops, so no combinational
    path crosses the slice in either direction. A payload offered while ``o`` stalls waits in
    the skid register; a stream that is always ready moves one payload per clock through it,
    one clock later than without it, in order.

    Members
    -------
    i : In(stream.Signature(payload))
    o : Out(stream.Signature(payload))
    busy : Out(1)
        A payload is in the slice (for idle tests of what lies behind it).
    """

    def __init__(self, payload):
        self._payload = payload
        super().__init__({
            "i": In(stream.Signature(payload)),
            "o": Out(stream.Signature(payload)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        skid = Signal(self._payload)
        skid_valid = Signal()
        m.d.comb += [self.i.ready.eq(~skid_valid), self.busy.eq(self.o.valid)]
        with m.If(~self.o.valid | self.o.ready):
            # The output register takes the waiting payload first, else the offered one.
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
