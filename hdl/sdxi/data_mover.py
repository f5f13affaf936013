"""Data mover: the copy, fill and replicate datapath of the context engine.

It moves bytes between host buffers through the DMA RAM with several read and write clients of
the DMA engines in flight at once, so a long copy keeps both the read and the write direction of
the link busy.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..pcie.dma_read import ReadRequest, ReadStatus
from ..pcie.dma_write import WriteRequest, WriteStatus
from .descriptors import ErrClass


__all__ = ["DataMover", "MoverOp", "MoverCommand", "MoverResult", "READ_SLOTS", "WRITE_CLIENTS",
           "CHUNK", "IMAGE", "SLOT_BYTES", "ram_bytes"]

CHUNK = 2048              #: bytes per COPY read (and its write)
IMAGE = 4096              #: bytes of a FROM_RAM image: a fill's pattern run, a REPCOPY block
READ_SLOTS = 4            #: chunks in flight on the read side, one read client each
WRITE_CLIENTS = 2         #: writes in flight, so one's status latency hides behind the other
SLOT_BYTES = CHUNK + 64   #: a chunk at any offset within a row


def ram_bytes():
    """RAM the slots take; a REPCOPY block lands in slots 0 and 1."""
    assert 2 * SLOT_BYTES >= IMAGE + 64
    return READ_SLOTS * SLOT_BYTES


class MoverOp(enum.Enum, shape=2):
    COPY = 0        #: ``src`` to ``dst``
    FROM_RAM = 1    #: ``dst`` from RAM at ``ram``, restarting there every IMAGE bytes (fill)
    REPCOPY = 2     #: IMAGE bytes of ``src`` read once, then written over and over to ``dst``


class MoverCommand(data.StructLayout):
    """Move ``last + 1`` bytes (1 to 2^32). For FROM_RAM, RAM at ``ram`` holds an IMAGE-byte
    image (or all of a shorter transfer) of what each IMAGE bytes of ``dst`` get."""

    def __init__(self, ram_addr_bits):
        super().__init__({"op": MoverOp, "src": 64, "dst": 64, "last": 32, "ram": ram_addr_bits})


class MoverResult(data.StructLayout):
    """``error`` is 0 or an ``ErrClass``; ``buffer`` 0 is the source, 1 the destination."""

    def __init__(self):
        super().__init__({"error": 8, "buffer": 1, "aborted": 1})


class DataMover(wiring.Component):
    """Executes one command at a time (docs/context-engine.md, "Data mover").

    COPY: the source is read in CHUNK-aligned pieces into ``READ_SLOTS`` RAM slots, each with its
    own read client, and every piece is written out, in order, as soon as its read has completed,
    alternating between two write clients. A slot is reused once its write has been confirmed.
    FROM_RAM writes the destination in IMAGE pieces from one RAM image (the pattern of a fill,
    the data of a write-immediate); REPCOPY first reads its IMAGE-byte source block into slot 0
    (running on into slot 1).

    The result comes after every write has been confirmed by the hard block, so whatever the
    context engine writes next (a completion status) follows the data. On a DMA error nothing
    new is issued, the requests in flight are drained and the first error is reported;
    ``abort`` (a hard stop) does the same and reports ``aborted``.

    Members
    -------
    cmd : In(stream.Signature(MoverCommand))
    result : Out(stream.Signature(MoverResult))
    rd_req, rd_status : read clients (READ_SLOTS)
    wr_req, wr_status : write clients (WRITE_CLIENTS)
    abort : In(1)
    slot_base : the RAM byte address of read slot 0 (slots follow every SLOT_BYTES)
    """

    def __init__(self, *, ram_addr_bits, row_bytes, slot_base):
        self._ram_bits = ram_addr_bits
        self._row = row_bytes
        self._slot_base = slot_base
        if slot_base % row_bytes:
            raise ValueError("the slots must start on a RAM row")
        super().__init__({
            "cmd": In(stream.Signature(MoverCommand(ram_addr_bits))),
            "result": Out(stream.Signature(MoverResult())),
            "rd_req": Out(stream.Signature(ReadRequest(ram_addr_bits))).array(READ_SLOTS),
            "rd_status": In(stream.Signature(ReadStatus())).array(READ_SLOTS),
            "wr_req": Out(stream.Signature(WriteRequest(ram_addr_bits))).array(WRITE_CLIENTS),
            "wr_status": In(stream.Signature(WriteStatus())).array(WRITE_CLIENTS),
            "abort": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        row_mask = self._row - 1
        slot_ram = [self._slot_base + s * SLOT_BYTES for s in range(READ_SLOTS)]

        busy = Signal()
        op = Signal(MoverOp)
        src = Signal(64)
        dst = Signal(64)
        total = Signal(33)
        ram = Signal(self._ram_bits)
        rd_pos = Signal(33)          # source bytes whose read has been issued
        wr_pos = Signal(33)          # destination bytes whose write has been issued
        rd_slot = Signal(range(READ_SLOTS))
        wr_slot = Signal(range(READ_SLOTS))
        wr_client = Signal(range(WRITE_CLIENTS))
        error = Signal(8)
        buffer = Signal()
        aborted = Signal()
        preloaded = Signal()         # REPCOPY: the source block is in slot 0

        # Per slot: read in flight, data ready to write, and what the chunk is.
        reading = Signal(READ_SLOTS)
        ready = Signal(READ_SLOTS)
        held = Signal(READ_SLOTS)    # read issued and not yet written back
        chunk_len = [Signal(13, name=f"chunk_len{s}") for s in range(READ_SLOTS)]
        chunk_off = [Signal(33, name=f"chunk_off{s}") for s in range(READ_SLOTS)]
        chunk_ram = [Signal(self._ram_bits, name=f"chunk_ram{s}") for s in range(READ_SLOTS)]
        writing = Signal(WRITE_CLIENTS)
        write_slot = [Signal(range(READ_SLOTS), name=f"write_slot{c}")
                      for c in range(WRITE_CLIENTS)]

        stopping = Signal()
        m.d.comb += stopping.eq((error != 0) | aborted)
        with m.If(busy & self.abort):
            m.d.sync += aborted.eq(1)

        # ---- accept a command -------------------------------------------------------------------
        m.d.comb += self.cmd.ready.eq(~busy)
        with m.If(self.cmd.valid & ~busy):
            p = self.cmd.payload
            m.d.sync += [busy.eq(1), op.eq(p.op), src.eq(p.src), dst.eq(p.dst),
                         total.eq(p.last + 1), ram.eq(p.ram), rd_pos.eq(0), wr_pos.eq(0),
                         rd_slot.eq(0), wr_slot.eq(0), wr_client.eq(0), error.eq(0),
                         buffer.eq(0), aborted.eq(0), preloaded.eq(0)]

        # ---- reads: the next source chunk into the next free slot ------------------------------
        read_addr = Signal(64)
        read_len = Signal(13)
        left = Signal(33)
        m.d.comb += [read_addr.eq(src + rd_pos), left.eq(total - rd_pos)]
        to_boundary = Signal(13)
        m.d.comb += to_boundary.eq(CHUNK - read_addr[:(CHUNK - 1).bit_length()])
        with m.If(op == MoverOp.REPCOPY):
            m.d.comb += read_len.eq(IMAGE)
        with m.Elif(left < to_boundary):
            m.d.comb += read_len.eq(left)
        with m.Else():
            m.d.comb += read_len.eq(to_boundary)
        want_read = Signal()
        m.d.comb += want_read.eq(busy & ~stopping & (
            ((op == MoverOp.COPY) & (rd_pos < total)) |
            ((op == MoverOp.REPCOPY) & ~preloaded & (rd_pos == 0))))
        for s in range(READ_SLOTS):
            req = self.rd_req[s]
            here = Signal(self._ram_bits, name=f"read_ram{s}")
            m.d.comb += [
                here.eq(slot_ram[s] + (read_addr & row_mask)),
                req.valid.eq(want_read & (rd_slot == s) & ~held[s]),
                req.payload.addr.eq(read_addr),
                req.payload.length.eq(read_len),
                req.payload.ram_addr.eq(here),
                req.payload.id.eq(s),
                self.rd_status[s].ready.eq(1),
            ]
            with m.If(req.valid & req.ready):
                m.d.sync += [reading[s].eq(1), held[s].eq(1), chunk_len[s].eq(read_len),
                             chunk_off[s].eq(rd_pos), chunk_ram[s].eq(here),
                             rd_pos.eq(rd_pos + read_len), rd_slot.eq(rd_slot + 1)]
            with m.If(self.rd_status[s].valid):
                m.d.sync += reading[s].eq(0)
                with m.If(self.rd_status[s].payload.error != 0):
                    with m.If(error == 0):
                        m.d.sync += [error.eq(ErrClass.READ_UR - 1 +
                                              self.rd_status[s].payload.error), buffer.eq(0)]
                with m.Elif(op == MoverOp.REPCOPY):
                    m.d.sync += [preloaded.eq(1), ram.eq(chunk_ram[s]), held[s].eq(0)]
                with m.Else():
                    m.d.sync += ready[s].eq(1)

        # ---- writes: in order, alternating clients --------------------------------------------
        from_ram = Signal()
        m.d.comb += from_ram.eq((op == MoverOp.FROM_RAM) | ((op == MoverOp.REPCOPY) & preloaded))
        ram_left = Signal(33)
        m.d.comb += ram_left.eq(total - wr_pos)
        w_addr = Signal(64)
        w_len = Signal(13)
        w_ram = Signal(self._ram_bits)
        w_ok = Signal()
        with m.If(from_ram):
            m.d.comb += [w_addr.eq(dst + wr_pos), w_ram.eq(ram),
                         w_len.eq(Mux(ram_left < IMAGE, ram_left, IMAGE)),
                         w_ok.eq(wr_pos < total)]
        with m.Else():
            for s in range(READ_SLOTS):
                with m.If(wr_slot == s):
                    m.d.comb += [w_addr.eq(dst + chunk_off[s]), w_len.eq(chunk_len[s]),
                                 w_ram.eq(chunk_ram[s]), w_ok.eq(ready[s])]
        for c in range(WRITE_CLIENTS):
            req = self.wr_req[c]
            m.d.comb += [
                req.valid.eq(busy & ~stopping & w_ok & (wr_client == c) & ~writing[c]),
                req.payload.addr.eq(w_addr),
                req.payload.length.eq(w_len),
                req.payload.ram_addr.eq(w_ram),
                req.payload.id.eq(c),
                self.wr_status[c].ready.eq(1),
            ]
            with m.If(req.valid & req.ready):
                m.d.sync += [writing[c].eq(1), write_slot[c].eq(wr_slot),
                             wr_pos.eq(wr_pos + w_len), wr_client.eq(wr_client + 1)]
                with m.If(~from_ram):
                    m.d.sync += [ready.bit_select(wr_slot, 1).eq(0), wr_slot.eq(wr_slot + 1)]
            with m.If(self.wr_status[c].valid):
                m.d.sync += writing[c].eq(0)
                with m.If(~from_ram):
                    m.d.sync += held.bit_select(write_slot[c], 1).eq(0)
                with m.If((self.wr_status[c].payload.error != 0) & (error == 0)):
                    m.d.sync += [error.eq(ErrClass.BUS_MASTER_OFF), buffer.eq(1)]

        # ---- result ---------------------------------------------------------------------------------
        finished = Signal()
        m.d.comb += finished.eq(busy & (reading == 0) & (writing == 0) &
                                (stopping | (wr_pos == total)))
        m.d.comb += [
            self.result.valid.eq(finished),
            self.result.payload.error.eq(error),
            self.result.payload.buffer.eq(buffer),
            self.result.payload.aborted.eq(aborted & (error == 0)),
        ]
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += [busy.eq(0), held.eq(0), ready.eq(0)]
        return m
