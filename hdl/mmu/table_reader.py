"""The page-table walker's reads of host memory, over a client of the DMA read engine."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..pcie.dma_ram import RamWriteSignature
from ..pcie.dma_read import ReadError, ReadRequest, ReadStatus
from .walker import TableRead


__all__ = ["TableReader"]


class TableReader(wiring.Component):
    """Serves the walker's ``read_addr`` / ``read_data`` with 8-byte DMA reads, one at a time.

    Each qword is read into the RAM row at byte address ``landing`` (set aside for it) and
    taken off the read engine's RAM write port as it is written (``ram_snoop``, a copy of that
    port), so the walker needs no RAM read port. The read's status follows its data, so the
    qword is complete when the status comes; a status with an error answers ``error``.

    Members
    -------
    read_addr : In(stream.Signature(64)), an 8-byte-aligned physical address
    read_data : Out(stream.Signature(TableRead))
    rd_req : Out(stream.Signature(ReadRequest)), rd_status : In(stream.Signature(ReadStatus))
    ram_snoop : In(RamWriteSignature)
    """

    def __init__(self, *, data_width, ram_rows, ram_addr_bits, landing):
        row_bytes = data_width // 8
        if landing % row_bytes:
            raise ValueError("the landing row must be row-aligned")
        self._row_bytes = row_bytes
        self._landing = landing
        self._ram_bits = ram_addr_bits
        super().__init__({
            "read_addr": In(stream.Signature(64)),
            "read_data": Out(stream.Signature(TableRead())),
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))),
            "rd_status": In(stream.Signature(ReadStatus())),
            "ram_snoop": In(RamWriteSignature(data_width, ram_rows)),
        })

    def elaborate(self, platform):
        m = Module()
        row_shift = (self._row_bytes - 1).bit_length()
        addr = Signal(64)
        qword = Signal(64)
        error = Signal()
        lane = addr[3:row_shift]
        m.d.comb += [
            self.rd_req.payload.addr.eq(addr),
            self.rd_req.payload.length.eq(8),
            self.rd_req.payload.ram_addr.eq(self._landing + addr[:row_shift]),
            self.read_data.payload.data.eq(qword),
            self.read_data.payload.error.eq(error),
            self.rd_status.ready.eq(1),
        ]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.read_addr.ready.eq(1)
                with m.If(self.read_addr.valid):
                    m.d.sync += addr.eq(self.read_addr.payload)
                    m.next = "REQUEST"
            with m.State("REQUEST"):
                m.d.comb += self.rd_req.valid.eq(1)
                with m.If(self.rd_req.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                snoop = self.ram_snoop
                with m.If(snoop.row == self._landing // self._row_bytes):
                    data = snoop.data.word_select(lane, 64)
                    enables = snoop.en.word_select(lane, 8)
                    for b in range(8):
                        with m.If(enables[b]):
                            m.d.sync += qword[8 * b:8 * b + 8].eq(data[8 * b:8 * b + 8])
                with m.If(self.rd_status.valid):
                    m.d.sync += error.eq(self.rd_status.payload.error != ReadError.OK)
                    m.next = "ANSWER"
            with m.State("ANSWER"):
                m.d.comb += self.read_data.valid.eq(1)
                with m.If(self.read_data.ready):
                    m.next = "IDLE"
        return m
