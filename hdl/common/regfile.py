"""A register file built from a table of ``sdxi_defs.fields.Register`` definitions."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.fields import Access

from .regbus import RegisterBus


__all__ = ["RegisterFile"]


class RegisterFile(wiring.Component):
    """64-bit registers at fixed qword addresses, behaving as their field table says.

    Reads return stored (``RW``, ``RW1C``) bits and the ``ro`` inputs' ``RO`` bits; reserved and
    ``WO`` bits read 0. Writes update enabled byte lanes of ``RW`` bits and clear ``RW1C`` bits
    written 1; a ``set`` input bit wins over a clear in the same clock, so no event is lost.
    A field with a bound (``Field.at_most``, ``Field.within``) stores the written value clamped
    to it; ``limits`` gives the values of the "REGISTER.field" names bounds refer to.

    Members
    -------
    bus : In(RegisterBus)
        Accesses; ``w_hit`` marks the addresses of this table.
    stored : Out(...)
        For each register with ``RW``/``RW1C`` fields, its stored value (other bits 0).
    ro : In(...)
        For each register with ``RO`` fields, the value those fields read.
    set : In(...)
        For each register with ``RW1C`` fields, bits to set in this clock.
    load, load_value : In(...)
        For each register named in ``loadable``: replace its ``RW`` bits with ``load_value``
        in this clock (hardware-advanced registers such as an index); wins over a bus write.
    written : Out(...)
        For each register, a one-clock strobe when a write with any byte enable reaches it,
        from a register: in the clock after the write, when ``stored`` holds its result.
    write_data, write_be : Out(64), Out(8)
        Data and byte enables of that write, with the strobe.
    """

    def __init__(self, registers, *, addr_width, loadable=(), limits=None):
        self._registers = tuple(registers)
        self._loadable = tuple(loadable)
        self._limits = dict(limits or {})
        for r in self._registers:
            if r.offset >> 3 >= 1 << addr_width:
                raise ValueError(f"{r.name} at {r.offset:#x} is outside a {addr_width}-bit "
                                 f"qword address space")

        def names(*accesses):
            return [r.name for r in self._registers if r.mask(*accesses)]

        super().__init__({
            "bus": In(RegisterBus(addr_width)),
            "stored": Out(wiring.Signature({n: Out(64) for n in names(Access.RW, Access.RW1C)})),
            "ro": In(wiring.Signature({n: Out(64) for n in names(Access.RO)})),
            "set": In(wiring.Signature({n: Out(64) for n in names(Access.RW1C)})),
            "load": In(wiring.Signature({n: Out(1) for n in self._loadable})),
            "load_value": In(wiring.Signature({n: Out(64) for n in self._loadable})),
            "written": Out(wiring.Signature({r.name: Out(1) for r in self._registers})),
            "write_data": Out(64),
            "write_be": Out(8),
        })

    def _limit(self, name):
        if name not in self._limits:
            raise ValueError(f"a register bound names {name}, which ``limits`` does not give")
        return self._limits[name]

    def _bound(self, m, register, update):
        """``update`` with each bounded field of ``register`` clamped to its bound."""
        bounded = [f for f in register.fields if f.at_most is not None or f.within is not None]
        if not bounded:
            return update
        out = Signal(64, name=f"bounded_{register.name}")
        m.d.comb += out.eq(update)
        for f in bounded:
            value = f.bits(update)
            if f.at_most is not None:
                top = f.bounded((1 << f.width) - 1, self._limit)
                value = Mux(value > top, top, value)
            if f.within is not None:
                value = value & f.bounded((1 << f.width) - 1, self._limit)
            m.d.comb += f.bits(out).eq(value)
        return out

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        lane_mask = Signal(64)
        for i in range(8):
            m.d.comb += lane_mask[8 * i:8 * i + 8].eq(bus.w_be[i].replicate(8))
        # Registered, so that what reacts to a write does not extend the path from the bus.
        with m.If(bus.w_stb):
            m.d.sync += [self.write_data.eq(bus.w_data), self.write_be.eq(bus.w_be)]

        read_value = 0
        any_hit = 0
        for r in self._registers:
            rw = r.mask(Access.RW)
            rw1c = r.mask(Access.RW1C)
            ro = r.mask(Access.RO)
            hit = Signal(name=f"hit_{r.name}")
            m.d.comb += [
                hit.eq(bus.addr == r.offset >> 3),
            ]
            m.d.sync += getattr(self.written, r.name).eq(hit & bus.w_stb & bus.w_be.any())
            value = 0
            if rw | rw1c:
                stored = getattr(self.stored, r.name)
                update = stored
                if rw:
                    update = (update & ~(lane_mask & rw)) | (bus.w_data & lane_mask & rw)
                if rw1c:
                    update = update & ~(bus.w_data & lane_mask & rw1c)
                update = self._bound(m, r, update)
                sets = getattr(self.set, r.name) & rw1c if rw1c else 0
                with m.If(hit & bus.w_stb):
                    m.d.sync += stored.eq(update | sets)
                if rw1c:
                    with m.Else():
                        m.d.sync += stored.eq(stored | sets)
                if r.name in self._loadable:
                    with m.If(getattr(self.load, r.name)):
                        m.d.sync += stored.eq(getattr(self.load_value, r.name) & rw)
                value = stored
            if ro:
                value = value | (getattr(self.ro, r.name) & ro)
            read_value = read_value | hit.replicate(64) & value
            any_hit = any_hit | hit

        m.d.comb += bus.w_hit.eq(any_hit)
        with m.If(bus.r_stb):
            m.d.sync += bus.r_data.eq(read_value)
        return m

