"""The page-table walker's reads of host memory, over a client of the DMA read engine."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ReadError

from ..pcie.dma_ram import RamWriteSignature
from ..pcie.dma_read import ReadRequest, ReadStatus
from .walker import TableAddress, TableRead


__all__ = ["TableReader"]


class TableReader(wiring.Component):
    """Serves the walker's ``read_addr`` / ``read_data`` with DMA reads, one at a time.

    A read fetches the whole RAM row's worth of table around the qword (a line: 8 entries on
    the 512-bit datapath, 4 on the 256-bit one) with the requester ID of the qword's
    ``function`` (``rd_req.payload.function``) into the row at byte address ``landing`` and
    takes it off the read engine's RAM write port as it is written (``ram_snoop``, a copy of
    that port), so no RAM read port is needed. The last ``LINES`` lines are kept: a qword in
    one of them, read for the same function, is answered at once with ``cached`` set (so
    consecutive pages of a walk cost one read per line; the functions' views of host memory
    may differ, so a line is never shared between them). ``flush`` forgets them. The read's
    status follows its data, so a line is complete when the status comes; a status with an
    error answers ``error`` and keeps nothing.

    Members
    -------
    read_addr : In(stream.Signature(TableAddress)), an 8-byte-aligned physical address and
        the function whose view of host memory it is in
    read_data : Out(stream.Signature(TableRead))
    rd_req : Out(stream.Signature(ReadRequest)), rd_status : In(stream.Signature(ReadStatus))
    ram_snoop : In(RamWriteSignature)
    flush : In(1)
    """

    LINES = 2

    def __init__(self, *, data_width, ram_rows, ram_addr_bits, landing):
        row_bytes = data_width // 8
        if landing % row_bytes:
            raise ValueError("the landing row must be row-aligned")
        self._row_bytes = row_bytes
        self._width = data_width
        self._landing = landing
        super().__init__({
            "read_addr": In(stream.Signature(TableAddress())),
            "read_data": Out(stream.Signature(TableRead())),
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))),
            "rd_status": In(stream.Signature(ReadStatus(), always_ready=True)),
            "ram_snoop": In(RamWriteSignature(data_width, ram_rows)),
            "flush": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        row_shift = (self._row_bytes - 1).bit_length()
        lines = self.LINES
        addr = Signal(TableAddress())
        line_tag = addr.addr[row_shift:]
        l_valid = Signal(lines)
        l_function = [Signal.like(addr.function, name=f"line_function{i}") for i in range(lines)]
        l_tag = [Signal(64 - row_shift, name=f"line_tag{i}") for i in range(lines)]
        l_data = [Signal(self._width, name=f"line_data{i}") for i in range(lines)]
        l_next = Signal(range(lines))
        fetched = Signal(self._width)
        answer = Signal(TableRead())
        lane = addr.addr[3:row_shift]
        m.d.comb += [
            self.rd_req.payload.addr.eq(Cat(Const(0, row_shift), line_tag)),
            self.rd_req.payload.length.eq(self._row_bytes),
            self.rd_req.payload.ram_addr.eq(self._landing),
            self.rd_req.payload.function.eq(addr.function),
            self.read_data.payload.eq(answer),
        ]
        with m.If(self.flush):
            m.d.sync += l_valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.read_addr.ready.eq(1)
                with m.If(self.read_addr.valid):
                    m.d.sync += addr.eq(self.read_addr.payload)
                    m.next = "LOOKUP"
            with m.State("LOOKUP"):
                m.next = "REQUEST"
                for i in range(lines):
                    with m.If(l_valid[i] & (l_function[i] == addr.function) &
                              (l_tag[i] == line_tag) & ~self.flush):
                        m.d.sync += [answer.data.eq(l_data[i].word_select(lane, 64)),
                                     answer.error.eq(0), answer.cached.eq(1)]
                        m.next = "ANSWER"
            with m.State("REQUEST"):
                m.d.comb += self.rd_req.valid.eq(1)
                with m.If(self.rd_req.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                snoop = self.ram_snoop
                with m.If(snoop.row == self._landing // self._row_bytes):
                    for b in range(self._row_bytes):
                        with m.If(snoop.en[b]):
                            m.d.sync += fetched[8 * b:8 * b + 8].eq(snoop.data[8 * b:8 * b + 8])
                with m.If(self.rd_status.valid):
                    m.next = "FETCHED"
                    with m.If(self.rd_status.payload.error != ReadError.OK):
                        m.d.sync += [answer.error.eq(1), answer.cached.eq(0)]
                        m.next = "ANSWER"
            with m.State("FETCHED"):
                m.d.sync += [answer.data.eq(fetched.word_select(lane, 64)), answer.error.eq(0),
                             answer.cached.eq(0)]
                with m.If(~self.flush):
                    for i in range(lines):
                        with m.If(l_next == i):
                            m.d.sync += [l_valid[i].eq(1), l_function[i].eq(addr.function),
                                         l_tag[i].eq(line_tag), l_data[i].eq(fetched)]
                    m.d.sync += l_next.eq(Mux(l_next == lines - 1, 0, l_next + 1))
                m.next = "ANSWER"
            with m.State("ANSWER"):
                m.d.comb += self.read_data.valid.eq(1)
                with m.If(self.read_data.ready):
                    m.next = "IDLE"
        return m
