"""The DMA engines' data RAM: rows of ``data_width`` bits in an even and an odd bank."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.priority import lowest_set


__all__ = ["DmaRam", "RamWriteSignature", "RamReadPairSignature", "RamReadLanesSignature",
           "ram_addr_bits"]


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


class RamReadLanesSignature(wiring.Signature):
    """Read the row's worth of bytes that starts at byte ``addr`` (wrapping at the RAM's size),
    by byte lane: one clock later, byte lane *j* of ``data`` holds the one byte of
    ``[addr, addr + row)`` whose address is *j* modulo the row size, and it is held while ``en``
    is low. The bytes in address order are ``data`` rotated right by ``addr % row`` bytes,
    which the reader does (the write engine, which rotates by its own offset)."""

    def __init__(self, data_width, rows):
        self._args = (data_width, rows)
        super().__init__({
            "en": Out(1),
            "addr": Out(ram_addr_bits(data_width, rows)),
            "data": In(data_width),
        })

    def __eq__(self, other):
        return isinstance(other, RamReadLanesSignature) and other._args == self._args


def _mux_tree(select, sources):
    """``sources[select]`` as a tree of 2-to-1 choices on the bits of ``select`` (a shift by
    ``select`` times the width, as ``word_select`` gives, maps to far more LUTs)."""
    level = list(sources)
    for bit in range(len(select)):
        level += level[-1:] * (len(level) % 2)
        level = [Mux(select[bit], level[i + 1], level[i]) for i in range(0, len(level), 2)]
    return level[0]


class DmaRam(wiring.Component):
    """``rows`` rows of ``data_width`` bits (an even number of rows, a power of two).

    Even and odd rows sit in separate banks, so a read of any two consecutive rows costs one
    clock: ``rd`` reads the bytes of a row's size from any byte address, by lane. Read data is
    registered and held while ``en`` is low.

    A second write port and a second read port serve control accesses: the engine's units
    (``side_wr``: the error log, the retire unit and the context engine, in that priority;
    ``side_rd``: the context engine's structures) or, while ``host_owns`` is set, the host's RAM
    window (``host_wr``, ``host_rd``). A side write is applied in a clock where ``wr`` writes
    nothing. Its writer holds the row until ``side_wr_taken`` says it is written; the writer
    served is chosen a clock ahead, from a register, so no path runs from one writer's logic
    through the choice into another's. A host write is applied as it comes (the window is used
    only while the engines are idle). With ``side_pair=False``, the second read port reads one
    row: ``hi`` is 0 (for rows of 64 bytes and more, which hold any control structure whole:
    none is larger, each is aligned to its size).

    Some writers write one qword at a time: the host window, and the side writers named in
    ``qword_writers``, whose ``data`` must be one qword repeated across the row (the RAM takes
    its first 64 bits; the byte enables say which lanes get it). Their data shares one 64-bit
    choice, so each bit of the banks' write data chooses from the main port, each full-row
    side writer and that qword: one LUT per bit for up to two full-row side writers.

    Members
    -------
    wr : In(RamWriteSignature)
    rd : In(RamReadLanesSignature)
    side_wr : In(RamWriteSignature).array(side_writers)
    side_wr_taken : Out(side_writers)
    side_rd : In(RamReadPairSignature)
    host_owns : In(1)
        The host's window has the second ports (the function is stopped).
    host_wr : In(RamWriteSignature)
    host_rd : In(RamReadPairSignature)
    """

    def __init__(self, *, data_width, rows, side_writers=1, side_pair=True, qword_writers=()):
        if rows < 2 or rows & (rows - 1):
            raise ValueError(f"rows must be a power of two of at least 2, not {rows}")
        self._data_width = data_width
        self._rows = rows
        self._side_pair = side_pair
        self._side_writers = side_writers
        if not set(qword_writers) <= set(range(side_writers)):
            raise ValueError(f"qword_writers {qword_writers} name no side writer")
        self._qword_writers = tuple(sorted(set(qword_writers)))
        super().__init__({
            "wr": In(RamWriteSignature(data_width, rows)),
            "rd": In(RamReadLanesSignature(data_width, rows)),
            "side_wr": In(RamWriteSignature(data_width, rows)).array(side_writers),
            "side_wr_taken": Out(side_writers),
            "side_rd": In(RamReadPairSignature(data_width, rows)),
            "host_owns": In(1),
            "host_wr": In(RamWriteSignature(data_width, rows)),
            "host_rd": In(RamReadPairSignature(data_width, rows)),
        })

    def elaborate(self, platform):
        m = Module()
        half = self._rows // 2
        write_row, write_data, write_en = self._write(m)
        banks = []
        for parity in (0, 1):
            bank = Memory(shape=self._data_width, depth=half, init=[])
            m.submodules[f"bank{parity}"] = bank
            wp = bank.write_port(granularity=8)
            m.d.comb += [
                wp.addr.eq(write_row >> 1),
                wp.data.eq(write_data),
                wp.en.eq(Mux(write_row[0] == parity, write_en, 0)),
            ]
            banks.append(bank)
        self._read_lanes(m, banks, self.rd)
        second_rd = RamReadPairSignature(self._data_width, self._rows).create(
            path=("second_rd",))
        m.d.comb += [
            second_rd.en.eq(Mux(self.host_owns, self.host_rd.en, self.side_rd.en)),
            second_rd.row.eq(Mux(self.host_owns, self.host_rd.row, self.side_rd.row)),
        ]
        self._read_pair(m, banks, second_rd, pair=self._side_pair)
        for port in (self.side_rd, self.host_rd):
            m.d.comb += [port.lo.eq(second_rd.lo), port.hi.eq(second_rd.hi)]
        return m

    def _write(self, m):
        """The row, data and byte enables the banks write in this clock: the main port's when
        it writes, else the host's while it owns the second port, else the granted unit's. The
        grant is the first unit asking, registered; it is written when the main port is idle
        and the unit still asks."""
        n = self._side_writers
        w = self._data_width
        main_idle = Signal()
        m.d.comb += main_idle.eq(self.wr.en == 0)
        asking = Signal(n)
        m.d.comb += asking.eq(Cat(*(port.en.any() for port in self.side_wr)))
        first, any_ = lowest_set(m, asking, name="side_first")
        grant = Signal(range(max(n, 2)))
        granted = Signal()
        m.d.sync += [grant.eq(first), granted.eq(any_ & ~self.host_owns)]
        chosen = Signal(n)
        m.d.comb += [
            chosen.eq(Mux(granted, Const(1, n) << grant, 0) & asking),
            self.side_wr_taken.eq(Mux(main_idle, chosen, 0)),
        ]

        # Row and byte enables: 0 the main port, 1 the host, 2 + i side writer i, else none.
        # The choices are kept as nets of their own: folded into each bit's LUT, the decode
        # would be repeated for every bit (standalone Yosys: 3,391 instead of 2,413 LUTs).
        source = Signal(range(n + 3), attrs={"keep": 1})
        with m.If(~main_idle):
            m.d.comb += source.eq(0)
        with m.Elif(self.host_owns):
            m.d.comb += source.eq(1)
        with m.Elif(chosen.any()):
            m.d.comb += source.eq(2 + grant)
        with m.Else():
            m.d.comb += source.eq(n + 2)
        writers = [self.wr, self.host_wr, *self.side_wr]
        row = Signal(range(self._rows))
        en = Signal(w // 8)
        m.d.comb += [
            row.eq(_mux_tree(source, [p.row for p in writers] + [Const(0, len(row))])),
            en.eq(_mux_tree(source, [p.en for p in writers] + [Const(0, w // 8)])),
        ]

        # Data: the main port's, a full-row side writer's, or the one qword of the host or a
        # qword writer, repeated.
        wide = [i for i in range(n) if i not in self._qword_writers]
        qword = Signal(64)
        qword_data = self.host_wr.data[:64]
        for i in self._qword_writers:
            qword_data = Mux(~self.host_owns & (grant == i), self.side_wr[i].data[:64],
                             qword_data)
        m.d.comb += qword.eq(qword_data)
        data_source = Signal(range(len(wide) + 2), attrs={"keep": 1})
        with m.If(~main_idle):
            m.d.comb += data_source.eq(0)
        for k, i in enumerate(wide):
            with m.Elif(~self.host_owns & (grant == i)):
                m.d.comb += data_source.eq(1 + k)
        with m.Else():
            m.d.comb += data_source.eq(len(wide) + 1)
        data = Signal(w)
        sources = [self.wr.data, *(self.side_wr[i].data for i in wide), qword.replicate(w // 64)]
        m.d.comb += data.eq(_mux_tree(data_source, sources))
        return row, data, en

    @staticmethod
    def _bank_reads(m, banks, en, row):
        """Read rows ``row`` and ``row + 1`` (the even bank serves whichever is even); return
        the read ports and whether ``row`` was odd, as of the last read."""
        rps = [bank.read_port(domain="sync") for bank in banks]
        nxt = Signal.like(row)
        m.d.comb += [nxt.eq(row + 1), rps[0].en.eq(en), rps[1].en.eq(en),
                     rps[0].addr.eq(Mux(row[0], nxt >> 1, row >> 1)),
                     rps[1].addr.eq(Mux(row[0], row >> 1, nxt >> 1))]
        odd_first = Signal()
        with m.If(en):
            m.d.sync += odd_first.eq(row[0])
        return rps, odd_first

    def _read_pair(self, m, banks, port, *, pair=True):
        """Rows ``port.row`` and ``port.row + 1`` (only ``port.row`` unless ``pair``)."""
        rps, odd_first = self._bank_reads(m, banks, port.en, port.row)
        m.d.comb += port.lo.eq(Mux(odd_first, rps[1].data, rps[0].data))
        if pair:
            m.d.comb += port.hi.eq(Mux(odd_first, rps[0].data, rps[1].data))

    def _read_lanes(self, m, banks, port):
        """Lane *j* from the first row if *j* is at or above the offset, else from the second:
        one 2-to-1 choice per byte, where a pair of rows in address order would need a swap of
        both rows and a shifter twice as wide in the reader."""
        row_bytes = self._data_width // 8
        row_shift = row_bytes.bit_length() - 1
        rps, odd_first = self._bank_reads(m, banks, port.en, port.addr[row_shift:])
        offset = Signal(range(row_bytes))
        with m.If(port.en):
            m.d.sync += offset.eq(port.addr[:row_shift])
        from_second = Signal(row_bytes)      # the lanes below the offset
        m.d.comb += from_second.eq((Const(1, row_bytes + 1) << offset) - 1)
        for j in range(row_bytes):
            m.d.comb += port.data.word_select(j, 8).eq(
                Mux(odd_first ^ from_second[j], rps[1].data.word_select(j, 8),
                    rps[0].data.word_select(j, 8)))
