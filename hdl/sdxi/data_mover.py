"""Data mover: the copy, fill and replicate datapath of the context engine.

Commands are cut into chunks; the chunks of many commands are in flight at once over several
read and write clients of the DMA engines, and results come back in command order. So a long
copy keeps both directions of the link busy, and a stream of small copies overlaps.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..common.priority import lowest_set
from ..pcie.dma_read import ReadRequest, ReadStatus
from ..pcie.dma_write import WriteRequest, WriteStatus
from .descriptors import ErrClass


__all__ = ["DataMover", "MoverOp", "MoverCommand", "MoverResult", "READ_SLOTS", "WRITE_CLIENTS",
           "CHUNK", "IMAGE", "SLOT_BYTES", "ram_bytes"]

CHUNK = 256               #: bytes per COPY read (and its write)
IMAGE = 4096              #: bytes of a FROM_RAM image: a fill's pattern run, a REPCOPY block
READ_SLOTS = 16           #: chunks in flight on the read side, one read client each
WRITE_CLIENTS = 8         #: writes in flight, so confirmation latency hides behind other data
SLOT_BYTES = CHUNK + 64   #: a chunk at any offset within a row
CHUNKS = 32               #: chunks tracked in flight (a power of two)
REPCOPY_SLOTS = (IMAGE + 64 + SLOT_BYTES - 1) // SLOT_BYTES


def ram_bytes():
    """RAM the slots take; a REPCOPY block lands in the first REPCOPY_SLOTS slots."""
    return READ_SLOTS * SLOT_BYTES


class MoverOp(enum.Enum, shape=2):
    COPY = 0        #: ``src`` to ``dst``
    FROM_RAM = 1    #: ``dst`` from RAM at ``ram``, restarting there every IMAGE bytes
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
    """Executes commands with their chunks overlapped (docs/context-engine.md, "Data mover").

    A command is cut into chunks as fast as there is room: COPY chunks (CHUNK bytes, aligned to
    CHUNK of the source) each take a free RAM slot and its read client; FROM_RAM chunks (IMAGE
    bytes) need no read. Chunks are written in order over ``WRITE_CLIENTS`` write clients, a
    COPY chunk as soon as its read has completed. A command's result comes once all its chunks
    and all earlier ones have been written and confirmed by the hard block, so whatever the
    context engine writes after it (a completion status) follows the data. REPCOPY waits for an
    empty mover, reads its block into the first slots and holds them until its last chunk.

    A DMA error is reported in the result of the command it hit (the first one, with its
    operand); the command's other chunks still run. ``abort`` (a hard stop) ends the command
    being cut and every later one at once with ``aborted``; chunks in flight finish.

    Members
    -------
    cmd : In(stream.Signature(MoverCommand))
    result : Out(stream.Signature(MoverResult))
    rd_req, rd_status : read clients (READ_SLOTS)
    wr_req, wr_status, wr_released : write clients (WRITE_CLIENTS); a slot is free again once
        the write engine has read it (``released``), before the write is confirmed
    abort : In(1)
    idle : Out(1)
        Nothing in flight: RAM images may be rewritten.
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
            "wr_released": In(WRITE_CLIENTS),
            "abort": In(1),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        row_mask = self._row - 1
        slot_ram = [self._slot_base + s * SLOT_BYTES for s in range(READ_SLOTS)]
        seq_bits = (CHUNKS - 1).bit_length()

        # ---- chunks in flight: created at head, written at wr, retired at tail -------------------
        head = Signal(seq_bits + 1)
        wr = Signal(seq_bits + 1)
        tail = Signal(seq_bits + 1)
        room = Signal()
        m.d.comb += room.eq((head - tail)[:seq_bits + 1] < CHUNKS)     # modulo the counters
        c_len = [Signal(13, name=f"c_len{i}") for i in range(CHUNKS)]
        c_dst = [Signal(64, name=f"c_dst{i}") for i in range(CHUNKS)]
        c_ram = [Signal(self._ram_bits, name=f"c_ram{i}") for i in range(CHUNKS)]
        c_slot = [Signal(range(READ_SLOTS), name=f"c_slot{i}") for i in range(CHUNKS)]
        c_err = [Signal(8, name=f"c_err{i}") for i in range(CHUNKS)]
        c_buf = Signal(CHUNKS)
        c_last = Signal(CHUNKS)       # ends its command
        c_copy = Signal(CHUNKS)       # holds a slot until written
        c_write = Signal(CHUNKS)      # has data to write
        c_ready = Signal(CHUNKS)      # data in place (or nothing to wait for)
        c_done = Signal(CHUNKS)
        c_release = Signal(CHUNKS)    # frees the REPCOPY slots when done
        c_abort = Signal(CHUNKS)

        slot_busy = Signal(READ_SLOTS)
        free_slot, have_slot = lowest_set(m, ~slot_busy, name="free_slot")
        rd_pending = Signal(READ_SLOTS)
        rd_seq = [Signal(seq_bits, name=f"rd_seq{s}") for s in range(READ_SLOTS)]
        rq = [Signal(ReadRequest(self._ram_bits), name=f"rq{s}") for s in range(READ_SLOTS)]

        def new_chunk(*, length, dst, ram, last, copy=0, write=1, ready=1, done=0, slot=0,
                      release=0, abort=0):
            i = head[:seq_bits]
            stmts = [head.eq(head + 1)]
            for k in range(CHUNKS):
                with m.If(i == k):
                    m.d.sync += [c_len[k].eq(length), c_dst[k].eq(dst), c_ram[k].eq(ram),
                                 c_slot[k].eq(slot), c_err[k].eq(0), c_buf[k].eq(0),
                                 c_last[k].eq(last), c_copy[k].eq(copy), c_write[k].eq(write),
                                 c_ready[k].eq(ready), c_done[k].eq(done),
                                 c_release[k].eq(release), c_abort[k].eq(abort)]
            m.d.sync += stmts

        def start_read(slot, addr, length, ram):
            for s in range(READ_SLOTS):
                with m.If(slot == s):
                    m.d.sync += [rd_pending[s].eq(1), slot_busy[s].eq(1),
                                 rd_seq[s].eq(head[:seq_bits]), rq[s].addr.eq(addr),
                                 rq[s].length.eq(length), rq[s].ram_addr.eq(ram),
                                 rq[s].id.eq(s)]

        # ---- cutting commands into chunks ------------------------------------------------------
        p = self.cmd.payload
        pos = Signal(33)
        total = Signal(33)
        m.d.comb += total.eq(p.last + 1)
        left = Signal(33)
        m.d.comb += left.eq(total - pos)
        src_here = Signal(64)
        m.d.comb += src_here.eq(p.src + pos)
        copy_len = Signal(13)
        to_boundary = Signal(13)
        m.d.comb += to_boundary.eq(CHUNK - src_here[:(CHUNK - 1).bit_length()])
        m.d.comb += copy_len.eq(Mux(left < to_boundary, left, to_boundary))
        image_len = Signal(13)
        m.d.comb += image_len.eq(Mux(left < IMAGE, left, IMAGE))
        rep_ram = Signal(self._ram_bits)
        rep_seq = Signal(seq_bits)
        aborting = Signal()
        m.d.comb += aborting.eq(self.abort)

        with m.FSM(init="CUT"):
            with m.State("CUT"):
                with m.If(self.cmd.valid & room):
                    with m.If(aborting):
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1, abort=1)
                        m.d.comb += self.cmd.ready.eq(1)
                        m.d.sync += pos.eq(0)
                    with m.Elif(p.op == MoverOp.COPY):
                        with m.If(have_slot):
                            ram_of_slot = Signal(self._ram_bits)
                            for s in range(READ_SLOTS):
                                with m.If(free_slot == s):
                                    m.d.comb += ram_of_slot.eq(slot_ram[s] + (src_here & row_mask))
                            last = copy_len == left
                            new_chunk(length=copy_len, dst=p.dst + pos, ram=ram_of_slot,
                                      last=last, copy=1, ready=0, slot=free_slot)
                            start_read(free_slot, src_here, copy_len, ram_of_slot)
                            with m.If(last):
                                m.d.comb += self.cmd.ready.eq(1)
                                m.d.sync += pos.eq(0)
                            with m.Else():
                                m.d.sync += pos.eq(pos + copy_len)
                    with m.Elif(p.op == MoverOp.FROM_RAM):
                        last = image_len == left
                        new_chunk(length=image_len, dst=p.dst + pos, ram=p.ram, last=last)
                        with m.If(last):
                            m.d.comb += self.cmd.ready.eq(1)
                            m.d.sync += pos.eq(0)
                        with m.Else():
                            m.d.sync += pos.eq(pos + image_len)
                    with m.Else():
                        m.next = "REP_DRAIN"

            with m.State("REP_DRAIN"):
                # The block needs the first slots: wait until nothing is in flight.
                with m.If((head == tail) & (slot_busy == 0)):
                    ram = slot_ram[0] + (p.src & row_mask)
                    m.d.sync += [rep_ram.eq(ram), rep_seq.eq(head[:seq_bits])]
                    new_chunk(length=0, dst=0, ram=ram, last=0, write=0, ready=0)
                    start_read(0, p.src, IMAGE, ram)
                    for s in range(1, REPCOPY_SLOTS):
                        m.d.sync += slot_busy[s].eq(1)
                    m.next = "REP_WAIT"
            with m.State("REP_WAIT"):
                done = c_done.bit_select(rep_seq, 1)
                err = Signal(8)
                for k in range(CHUNKS):
                    with m.If(rep_seq == k):
                        m.d.comb += err.eq(c_err[k])
                with m.If(done & room):
                    with m.If((err != 0) | aborting):
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1,
                                  release=1, abort=aborting)
                        m.d.comb += self.cmd.ready.eq(1)
                        m.d.sync += pos.eq(0)
                        m.next = "CUT"
                    with m.Else():
                        m.next = "REP_WRITE"
            with m.State("REP_WRITE"):
                with m.If(room):
                    last = image_len == left
                    with m.If(aborting):
                        new_chunk(length=0, dst=0, ram=0, last=1, write=0, done=1, release=1,
                                  abort=1)
                    with m.Else():
                        new_chunk(length=image_len, dst=p.dst + pos, ram=rep_ram, last=last,
                                  release=last)
                    with m.If(last | aborting):
                        m.d.comb += self.cmd.ready.eq(1)
                        m.d.sync += pos.eq(0)
                        m.next = "CUT"
                    with m.Else():
                        m.d.sync += pos.eq(pos + image_len)

        # ---- reads ---------------------------------------------------------------------------------
        for s in range(READ_SLOTS):
            req = self.rd_req[s]
            st = self.rd_status[s]
            m.d.comb += [req.valid.eq(rd_pending[s]), req.payload.eq(rq[s]), st.ready.eq(1)]
            with m.If(req.valid & req.ready):
                m.d.sync += rd_pending[s].eq(0)
            with m.If(st.valid):
                for k in range(CHUNKS):
                    with m.If(rd_seq[s] == k):
                        m.d.sync += c_ready[k].eq(1)
                        with m.If(st.payload.error != 0):
                            m.d.sync += [c_err[k].eq(ErrClass.READ_UR - 1 + st.payload.error),
                                         c_buf[k].eq(0), c_write[k].eq(0), c_done[k].eq(1)]
                            with m.If(c_copy[k]):
                                m.d.sync += slot_busy[s].eq(0)
                        with m.Elif(~c_write[k]):
                            m.d.sync += c_done[k].eq(1)      # the REPCOPY block is in

        # ---- writes, in chunk order ----------------------------------------------------------------
        w = wr[:seq_bits]
        w_client = wr[:(WRITE_CLIENTS - 1).bit_length()]
        writing = Signal(WRITE_CLIENTS)
        w_seq = [Signal(seq_bits, name=f"w_seq{c}") for c in range(WRITE_CLIENTS)]
        w_ready = Signal()
        w_needs = Signal()
        m.d.comb += [w_ready.eq((wr != head) & c_ready.bit_select(w, 1)),
                     w_needs.eq(c_write.bit_select(w, 1))]
        w_addr = Signal(64)
        w_len = Signal(13)
        w_ram = Signal(self._ram_bits)
        for k in range(CHUNKS):
            with m.If(w == k):
                m.d.comb += [w_addr.eq(c_dst[k]), w_len.eq(c_len[k]), w_ram.eq(c_ram[k])]
        with m.If(w_ready & ~w_needs):
            m.d.sync += wr.eq(wr + 1)                 # nothing to write (error, block, end)
            with m.If(c_release.bit_select(w, 1)):
                for s in range(REPCOPY_SLOTS):
                    m.d.sync += slot_busy[s].eq(0)
        def free_slots(k):
            """Chunk ``k``'s data has left the RAM: its slot (or the REPCOPY block) is free."""
            with m.If(c_copy[k]):
                for s in range(READ_SLOTS):
                    with m.If(c_slot[k] == s):
                        m.d.sync += slot_busy[s].eq(0)
            with m.If(c_release[k]):
                for s in range(REPCOPY_SLOTS):
                    m.d.sync += slot_busy[s].eq(0)

        for c in range(WRITE_CLIENTS):
            req = self.wr_req[c]
            st = self.wr_status[c]
            m.d.comb += [
                req.valid.eq(w_ready & w_needs & (w_client == c) & ~writing[c]),
                req.payload.addr.eq(w_addr),
                req.payload.length.eq(w_len),
                req.payload.ram_addr.eq(w_ram),
                req.payload.id.eq(c),
                st.ready.eq(1),
            ]
            with m.If(req.valid & req.ready):
                m.d.sync += [writing[c].eq(1), w_seq[c].eq(w), wr.eq(wr + 1)]
            with m.If(self.wr_released[c]):
                for k in range(CHUNKS):
                    with m.If(w_seq[c] == k):
                        free_slots(k)
            with m.If(st.valid):
                m.d.sync += writing[c].eq(0)
                for k in range(CHUNKS):
                    with m.If(w_seq[c] == k):
                        m.d.sync += c_done[k].eq(1)
                        with m.If(st.payload.error != 0):
                            # Nothing was sent (bus mastering off), so nothing was released.
                            m.d.sync += [c_err[k].eq(ErrClass.BUS_MASTER_OFF), c_buf[k].eq(1)]
                            free_slots(k)

        # ---- results, in command order -----------------------------------------------------------
        t = tail[:seq_bits]
        acc_err = Signal(8)
        acc_buf = Signal()
        t_err = Signal(8)
        t_buf = Signal()
        for k in range(CHUNKS):
            with m.If(t == k):
                m.d.comb += [t_err.eq(c_err[k]), t_buf.eq(c_buf[k])]
        t_done = Signal()
        m.d.comb += t_done.eq((tail != head) & c_done.bit_select(t, 1))
        first_err = Mux(acc_err != 0, acc_err, t_err)
        m.d.comb += [
            self.result.valid.eq(t_done & c_last.bit_select(t, 1)),
            self.result.payload.error.eq(first_err),
            self.result.payload.buffer.eq(Mux(acc_err != 0, acc_buf, t_buf)),
            self.result.payload.aborted.eq(c_abort.bit_select(t, 1) & (first_err == 0)),
        ]
        with m.If(t_done & ~c_last.bit_select(t, 1)):
            m.d.sync += tail.eq(tail + 1)
            with m.If((acc_err == 0) & (t_err != 0)):
                m.d.sync += [acc_err.eq(t_err), acc_buf.eq(t_buf)]
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += [tail.eq(tail + 1), acc_err.eq(0), acc_buf.eq(0)]

        m.d.comb += self.idle.eq((head == tail) & (slot_busy == 0))
        return m
