"""A minimal 64-bit register access bus with fixed timing."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


__all__ = ["RegisterBus"]


class RegisterBus(wiring.Signature):
    """Qword-wide register accesses, one per clock, from an initiator to a target.

    Members
    -------
    addr : Out(addr_width)
        Qword address (byte address >> 3).
    w_stb : Out(1)
        Write strobe: ``w_data`` lanes enabled by ``w_be`` are written at this clock edge.
    w_data : Out(64)
    w_be : Out(8)
        Byte enables of the write.
    r_stb : Out(1)
        Read strobe. Reads have no side effects.
    r_data : In(64)
        Read data, valid in the clock after ``r_stb``.
    w_hit : In(1)
        Combinational: ``addr`` names an implemented register (writes elsewhere are dropped).
    """

    def __init__(self, addr_width):
        if addr_width < 1:
            raise ValueError(f"address width must be at least 1, not {addr_width}")
        self._addr_width = addr_width
        super().__init__({
            "addr": Out(addr_width),
            "w_stb": Out(1),
            "w_data": Out(64),
            "w_be": Out(8),
            "r_stb": Out(1),
            "r_data": In(64),
            "w_hit": In(1),
        })

    @property
    def addr_width(self):
        return self._addr_width

    def __eq__(self, other):
        return isinstance(other, RegisterBus) and other.addr_width == self.addr_width

    def __repr__(self):
        return f"RegisterBus({self.addr_width})"
