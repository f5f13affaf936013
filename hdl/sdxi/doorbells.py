"""BAR2 doorbells: one monotonic 64-bit write-index hint per context."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.regbus import RegisterBus


__all__ = ["DoorbellArray"]


class DoorbellArray(wiring.Component):
    """Doorbells of ``contexts`` contexts at BAR2 + id * (4 KiB << db_stride) (sdxi-spec.md 1.9).

    The doorbell is the first qword of each context's page. A write proposes a new value:

    * a 64-bit write proposes the written value;
    * a 32-bit write of the low dword proposes {current high dword, written low dword} and
      remembers the low dword for this context;
    * a 32-bit write of the high dword proposes {written high dword, last low dword written}.

    The proposal replaces the latched value only if it is larger, so out-of-order and duplicate
    doorbells never move it backwards, and Linux's low-then-high 32-bit pair lands correctly
    even when it carries into the high dword. Every accepted write sets the context's
    ``pending`` bit, a smaller or equal value included: the context engine reads the write index
    from memory, and a producer that makes an earlier slot valid after a later one's doorbell
    (sdxi-spec.md 5.1) rings with a smaller value that must still wake it. Writes with partial
    dwords are dropped (``dropped``), as are writes to the rest of a doorbell page.
    A read of the doorbell returns the latched value; the rest of the page reads 0.

    Members
    -------
    bus : In(RegisterBus)
        BAR2 accesses.
    pending : Out(contexts)
        Context has a doorbell write not yet taken by ``take``.
    take_valid, take_cxt : In(1), In(range(contexts))
        The context engine takes context ``take_cxt``'s doorbell: clears its ``pending`` bit
        (a raise in the same clock keeps it set).
    peek_cxt : In(range(contexts))
    peek_value : Out(64)
        Latched doorbell of ``peek_cxt`` (combinational).
    dropped : Out(1)
        One-clock strobe for each doorbell write dropped for partial dwords (writes elsewhere
        in the page miss ``w_hit`` and are counted by the bus owner).
    """

    def __init__(self, *, contexts, db_stride, bar_log2_size):
        page_log2 = 12 + db_stride
        if contexts << page_log2 > 1 << bar_log2_size:
            raise ValueError(f"{contexts} doorbell pages of {1 << page_log2} bytes do not fit "
                             f"a BAR of {1 << bar_log2_size} bytes")
        self._contexts = contexts
        self._page_qword_bits = page_log2 - 3
        super().__init__({
            "bus": In(RegisterBus(bar_log2_size - 3)),
            "pending": Out(contexts),
            "take_valid": In(1),
            "take_cxt": In(range(contexts)),
            "peek_cxt": In(range(contexts)),
            "peek_value": Out(64),
            "dropped": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        m.submodules.values = values = Memory(shape=64, depth=self._contexts, init=[])
        m.submodules.low_words = low_words = Memory(shape=32, depth=self._contexts, init=[])
        rmw = values.read_port(domain="comb")
        low = low_words.read_port(domain="comb")
        peek = values.read_port(domain="comb")
        value_w = values.write_port()
        low_w = low_words.write_port()

        cxt_bits = (self._contexts - 1).bit_length()
        in_page = bus.addr[:self._page_qword_bits]
        cxt = bus.addr[self._page_qword_bits:self._page_qword_bits + cxt_bits]
        above = bus.addr[self._page_qword_bits + cxt_bits:]
        is_doorbell = (in_page == 0) & (above == 0) if len(above) else (in_page == 0)

        m.d.comb += [
            rmw.addr.eq(cxt), low.addr.eq(cxt), value_w.addr.eq(cxt), low_w.addr.eq(cxt),
            peek.addr.eq(self.peek_cxt), self.peek_value.eq(peek.data),
            bus.w_hit.eq(is_doorbell),
        ]

        be_lo, be_hi = bus.w_be[:4], bus.w_be[4:]
        whole_dwords = ((be_lo == 0) | (be_lo == 0xF)) & ((be_hi == 0) | (be_hi == 0xF))
        proposal = Cat(Mux(be_lo.any(), bus.w_data[:32], low.data),
                       Mux(be_hi.any(), bus.w_data[32:], rmw.data[32:]))
        accept = bus.w_stb & is_doorbell & whole_dwords & bus.w_be.any()
        raise_ = accept & (proposal > rmw.data)

        m.d.comb += [
            value_w.data.eq(proposal),
            value_w.en.eq(raise_),
            low_w.data.eq(bus.w_data[:32]),
            low_w.en.eq(accept & be_lo.any()),
            self.dropped.eq(bus.w_stb & bus.w_be.any() & is_doorbell & ~whole_dwords),
        ]

        raised = Signal(self._contexts)
        taken = Signal(self._contexts)
        m.d.comb += [
            raised.eq(Mux(accept, 1 << cxt, 0)),
            taken.eq(Mux(self.take_valid, 1 << self.take_cxt, 0)),
        ]
        m.d.sync += self.pending.eq((self.pending & ~taken) | raised)

        with m.If(bus.r_stb):
            m.d.sync += bus.r_data.eq(Mux(is_doorbell, rmw.data, 0))
        return m
