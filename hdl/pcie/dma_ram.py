"""The DMA engines' data RAM: rows of ``data_width`` bits in an even and an odd bank."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


__all__ = ["DmaRam", "RamWriteSignature", "RamReadPairSignature", "ram_addr_bits"]


def ram_addr_bits(data_width, rows):
    """Width of a byte address into a RAM of ``rows`` rows of ``data_width`` bits."""
    return (rows * data_width // 8 - 1).bit_length()


class RamWriteSignature(wiring.Signature):
    """Write one row with byte enables in this clock."""

    def __init__(self, data_width, rows):
        self._args = (data_width, rows)
        super().__init__({
            "row": Out(range(rows)),
            "data": Out(data_width),
            "en": Out(data_width // 8),
        })

    def __eq__(self, other):
        return isinstance(other, RamWriteSignature) and other._args == self._args


class RamReadPairSignature(wiring.Signature):
    """Read rows ``row`` and ``row + 1`` (wrapping); ``lo``/``hi`` hold them one clock later."""

    def __init__(self, data_width, rows):
        self._args = (data_width, rows)
        super().__init__({
            "en": Out(1),
            "row": Out(range(rows)),
            "lo": In(data_width),
            "hi": In(data_width),
        })

    def __eq__(self, other):
        return isinstance(other, RamReadPairSignature) and other._args == self._args


class DmaRam(wiring.Component):
    """``rows`` rows of ``data_width`` bits (an even number of rows, a power of two).

    Even and odd rows sit in separate banks, so a read of any two consecutive rows costs one
    clock. Read data is registered and held while ``rd.en`` is low.

    Members
    -------
    wr : In(RamWriteSignature)
    rd : In(RamReadPairSignature)
    """

    def __init__(self, *, data_width, rows):
        if rows < 2 or rows & (rows - 1):
            raise ValueError(f"rows must be a power of two of at least 2, not {rows}")
        self._data_width = data_width
        self._rows = rows
        super().__init__({
            "wr": In(RamWriteSignature(data_width, rows)),
            "rd": In(RamReadPairSignature(data_width, rows)),
        })

    def elaborate(self, platform):
        m = Module()
        half = self._rows // 2
        banks = []
        for parity in (0, 1):
            bank = Memory(shape=self._data_width, depth=half, init=[])
            m.submodules[f"bank{parity}"] = bank
            wp = bank.write_port(granularity=8)
            rp = bank.read_port(domain="sync")
            m.d.comb += [
                wp.addr.eq(self.wr.row >> 1),
                wp.data.eq(self.wr.data),
                wp.en.eq(Mux(self.wr.row[0] == parity, self.wr.en, 0)),
                rp.en.eq(self.rd.en),
            ]
            banks.append(rp)

        nxt = Signal(range(self._rows))
        m.d.comb += nxt.eq(self.rd.row + 1)
        # The even bank serves whichever of the two rows is even.
        m.d.comb += [
            banks[0].addr.eq(Mux(self.rd.row[0], nxt >> 1, self.rd.row >> 1)),
            banks[1].addr.eq(Mux(self.rd.row[0], self.rd.row >> 1, nxt >> 1)),
        ]
        odd_first = Signal()
        with m.If(self.rd.en):
            m.d.sync += odd_first.eq(self.rd.row[0])
        m.d.comb += [
            self.rd.lo.eq(Mux(odd_first, banks[1].data, banks[0].data)),
            self.rd.hi.eq(Mux(odd_first, banks[0].data, banks[1].data)),
        ]
        return m
