"""DMA write engine: host memory writes from the DMA RAM, at any byte alignment."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import WriteError

from .dma_layouts import FUNCTION_BITS, RqTlpBeat, rq_tlp_stream
from .dma_ram import RamReadLanesSignature, ram_addr_bits
from .layouts import ReqType


__all__ = ["DmaWriteEngine", "WriteRequest", "WriteStatus"]


class WriteRequest(data.StructLayout):
    """Write ``length`` bytes (1 to 2^24 - 1) from RAM byte ``ram_addr`` to host ``addr``.
    ``id`` comes back in the request's release notice and status. The writes go out with
    ``function``'s requester ID."""

    def __init__(self, ram_addr_bits, id_bits=8):
        super().__init__({"addr": 64, "length": 24, "ram_addr": ram_addr_bits, "id": id_bits,
                          "function": FUNCTION_BITS})


class WriteStatus(data.StructLayout):
    def __init__(self, id_bits=8):
        super().__init__({"id": id_bits, "error": 2})


class WriteRelease(data.StructLayout):
    """The RAM bytes of request ``id`` have been read: they may be reused."""

    def __init__(self, id_bits=8):
        super().__init__({"id": id_bits})


class DmaWriteEngine(wiring.Component):
    """Memory writes for requests that carry their requester's id (docs/dma.md, "Write
    engine").

    Requests come on one stream (clients share it through a ``ClientMux``) and are written in
    the order they come. Each is cut into TLPs at Max_Payload_Size boundaries of the host
    address, so none crosses 4 KiB; TLPs follow each other without idle beats, across
    requests too. Payload comes from the RAM two rows at a time through a byte shifter, so
    source and destination alignments are independent. When the last RAM row of a request has
    been read, ``released`` carries its id (a refused request is released when it is taken).
    A request's status is sent once the hard block has reported its last TLP sent
    (``pcie_rq_seq_num``): only then is the data ahead of anything the function sends later on
    any interface, a completion on CC included. Reports come in order, so statuses do too; up
    to ``in_flight`` requests wait for theirs. Write TLPs carry sequence numbers 0 to 31 in
    order; reads carry 32 and up (docs/dma.md).

    A hard block may discard TLPs it has accepted without reporting them (the UltraScale+
    model does when bus mastering is cleared). When TLPs are unreported and no report has come
    for ``timeout`` clocks, every write TLP that has left the engine is taken as lost: the
    requests waiting for them end with TIMEOUT, and the count of reports is brought up to the
    TLPs sent, so later requests are confirmed by their own reports. Reports beyond the TLPs
    sent (a lost one reported late) are ignored. ``timeout`` must be at least ``in_flight``.

    Members
    -------
    req : In(stream.Signature(WriteRequest(id_bits)))
    status : Out(stream.Signature(WriteStatus(id_bits), always_ready=True))
    released : Out(stream.Signature(WriteRelease(id_bits), always_ready=True))
    tlp : Out(rq_tlp_stream)
        To the RQ framer.
    ram : Out(RamReadLanesSignature)
    max_payload : In(2)
        Max_Payload_Size, 128 << n bytes (``cfg_max_payload``).
    bus_master : In(1 << FUNCTION_BITS)
        Bus Master Enable of each function: a function's requests are refused while it is off.
    seq_num0, seq_num_vld0, seq_num1, seq_num_vld1 : In
        The hard block's reports of requester TLPs sent (``pcie_rq_seq_num*``), in order.
    timeout : In(32)
        Confirmation time-out in clocks (the read engine's completion time-out).
    idle : Out(1)
        No request is in the engine: nothing is being sent or waits for its report.
    """

    def __init__(self, *, data_width, ram_rows, id_bits=8, in_flight=16):
        if data_width not in (256, 512):
            raise ValueError(f"data_width must be 256 or 512, not {data_width}")
        self._w = data_width
        self._rows = ram_rows
        self._in_flight = in_flight
        self._ram_bits = ram_addr_bits(data_width, ram_rows)
        self.id_bits = id_bits
        super().__init__({
            "req": In(stream.Signature(WriteRequest(self._ram_bits, id_bits))),
            "status": Out(stream.Signature(WriteStatus(id_bits), always_ready=True)),
            "released": Out(stream.Signature(WriteRelease(id_bits), always_ready=True)),
            "tlp": Out(rq_tlp_stream(data_width)),
            "ram": Out(RamReadLanesSignature(data_width, ram_rows)),
            "max_payload": In(2),
            "bus_master": In(1 << FUNCTION_BITS),
            "seq_num0": In(6),
            "seq_num_vld0": In(1),
            "seq_num1": In(6),
            "seq_num_vld1": In(1),
            "timeout": In(32),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self._w // 32
        row_bytes = self._w // 8
        row_shift = row_bytes.bit_length() - 1
        ram_bits = self._ram_bits

        # ---- requests waiting for their report, in order ------------------------------------
        waiting = data.StructLayout({"id": self.id_bits, "last_tlp": 16, "refused": 1})
        m.submodules.waiting = waiting_fifo = SyncFIFOBuffered(width=waiting.size,
                                                               depth=self._in_flight)
        to_wait = waiting(waiting_fifo.w_data)
        head = waiting(waiting_fifo.r_data)

        # ---- the request being cut into TLPs ---------------------------------------------------
        cur_valid = Signal()
        cur_addr = Signal(64)
        cur_left = Signal(24)
        cur_ram = Signal(ram_bits)
        cur_id = Signal(self.id_bits)
        cur_function = Signal(FUNCTION_BITS)
        cur_refused = Signal()
        req = self.req
        # A request is taken once there is room for it among those waiting for reports, and
        # the current one is gone or leaves the register in this clock (``cur_leaves``).
        queued = Signal(range(self._in_flight + 2))
        cur_leaves = Signal()
        m.d.comb += req.ready.eq((~cur_valid | cur_leaves) & (queued < self._in_flight))
        m.d.sync += queued.eq(queued + (req.valid & req.ready) -
                              (waiting_fifo.r_rdy & waiting_fifo.r_en))

        # ---- output FIFO: beats on their way to the framer -----------------------------------
        # The FIFO in LUT RAM, then one output register that starts at 0 (the read port's own
        # register would start undefined), so the data lanes a read request borrows (top.py)
        # are never X in simulation. A beat moves on whenever the register is empty or leaves.
        depth = 4
        m.submodules.fifo = fifo = SyncFIFO(width=RqTlpBeat(self._w).size, depth=depth)
        out = RqTlpBeat(self._w)(fifo.r_data)
        o_valid = Signal()
        o_beat = Signal(RqTlpBeat(self._w))
        m.d.comb += [fifo.r_en.eq(~o_valid | self.tlp.ready),
                     self.tlp.valid.eq(o_valid), self.tlp.payload.eq(o_beat)]
        with m.If(~o_valid | self.tlp.ready):
            m.d.sync += [o_valid.eq(fifo.r_rdy), o_beat.eq(out)]

        # ---- TLP builder ---------------------------------------------------------------------
        building = Signal()
        tlp_id = Signal(self.id_bits)
        tlp_function = Signal(FUNCTION_BITS)
        tlp_addr = Signal(64)
        tlp_ram = Signal(ram_bits)    # RAM byte address of payload byte 0 (dword aligned dest)
        beat = Signal(9)              # beat index within the TLP
        beats = Signal(9)
        dwords = Signal(11)
        ends_request = Signal()
        seq_num = Signal(6)
        desc_first_be = Signal(4)
        desc_last_be = Signal(4)
        p_addr, p_left, p_ram = cur_addr, cur_left, cur_ram

        mps = Signal(11)
        m.d.comb += mps.eq(Const(128, 11) << self.max_payload)
        to_boundary = Signal(12)
        m.d.comb += to_boundary.eq(mps - (p_addr[:11] & (mps - 1)))
        p_len = Signal(13)
        m.d.comb += p_len.eq(Mux(p_left < to_boundary, p_left, to_boundary))
        p_off = p_addr[:2]
        p_dwords = Signal(11)
        m.d.comb += p_dwords.eq((p_off + p_len + 3) >> 2)
        end_off = Signal(2)
        m.d.comb += end_off.eq(p_off + p_len - 1)
        first_be = Signal(4)
        last_be = Signal(4)
        m.d.comb += [
            first_be.eq((Const(0xF, 4) << p_off)[:4]),
            last_be.eq(Const(0xF, 4) >> (~end_off)[:2]),      # ~x = 3 - x on 2 bits
        ]

        # Issue only if the FIFO can take this beat even if nothing leaves it meanwhile: it
        # holds w_level beats, one may be in the RAM read stage, and this one follows.
        in_read = Signal()
        room = Signal()
        m.d.comb += room.eq(fifo.w_level + in_read < depth)

        # One beat per clock while there is room; the next TLP is taken in the clock of the
        # previous TLP's last beat, so TLPs follow each other without a gap.
        issue = Signal()
        last_issue = Signal()
        with m.If(building):
            m.d.comb += [issue.eq(room), last_issue.eq(room & (beat + 1 == beats))]
            with m.If(issue):
                m.d.sync += beat.eq(beat + 1)
            with m.If(last_issue):
                m.d.sync += [building.eq(0), seq_num.eq(seq_num + 1)]
        # A refused request is passed on by an idle builder: it sends nothing.
        pass_refused = Signal()
        m.d.comb += pass_refused.eq(~building & cur_valid & cur_refused)
        taking = Signal()                   # the next TLP is taken from the request now
        m.d.comb += [taking.eq((~building | last_issue) & cur_valid & ~cur_refused),
                     cur_leaves.eq(pass_refused | (taking & (p_len == p_left)))]
        with m.If(pass_refused):
            m.d.sync += cur_valid.eq(0)
        with m.If(taking):
            m.d.sync += [
                building.eq(1),
                tlp_id.eq(cur_id),
                tlp_function.eq(cur_function),
                tlp_addr.eq(p_addr),
                tlp_ram.eq(p_ram - p_off),
                dwords.eq(p_dwords),
                beats.eq((p_dwords + lanes - 1) >> (lanes.bit_length() - 1)),
                beat.eq(0),
                ends_request.eq(p_len == p_left),
                desc_first_be.eq(Mux(p_dwords == 1, first_be & last_be, first_be)),
                desc_last_be.eq(Mux(p_dwords == 1, 0, last_be)),
                # Advance the request past this TLP now; its beats follow.
                cur_addr.eq(p_addr + p_len),
                cur_left.eq(p_left - p_len),
                cur_ram.eq(p_ram + p_len),
            ]
            with m.If(p_len == p_left):
                m.d.sync += cur_valid.eq(0)

        # A request taken now replaces the one leaving (its statements come last, so they win).
        with m.If(req.valid & req.ready):
            p = req.payload
            m.d.sync += [cur_valid.eq(1), cur_addr.eq(p.addr), cur_left.eq(p.length),
                         cur_ram.eq(p.ram_addr), cur_id.eq(p.id), cur_function.eq(p.function),
                         cur_refused.eq(~self.bus_master.bit_select(p.function, 1) |
                                        (p.length == 0))]

        # RAM read of the two rows this beat needs.
        beat_ram = Signal(ram_bits)
        m.d.comb += [
            beat_ram.eq(tlp_ram + (beat << row_shift)),
            self.ram.en.eq(issue),
            self.ram.addr.eq(beat_ram),
        ]

        # Read stage: the beat's fields wait one clock for the RAM data.
        r_beat = Signal(RqTlpBeat(self._w))
        r_shift = Signal(range(row_bytes))
        m.d.sync += in_read.eq(issue)
        with m.If(issue):
            last_beat = beat + 1 == beats
            rest = Signal(range(lanes + 1))
            m.d.comb += rest.eq(dwords - (beat << (lanes.bit_length() - 1)))
            m.d.sync += [
                r_shift.eq(beat_ram[:row_shift]),
                r_beat.first.eq(beat == 0),
                r_beat.last.eq(last_beat),
                r_beat.keep.eq(Mux(last_beat, (Const(1, lanes + 1) << rest) - 1,
                                   (1 << lanes) - 1)),
                r_beat.first_be.eq(desc_first_be),
                r_beat.last_be.eq(desc_last_be),
                r_beat.seq_num.eq(seq_num[:5]),
                r_beat.desc.address.eq(tlp_addr[2:]),
                r_beat.desc.dword_count.eq(dwords),
                r_beat.desc.req_type.eq(ReqType.MEM_WRITE),
                r_beat.desc.requester_id.eq(tlp_function),   # function number; bus from the core
            ]

        shifted = Signal(self._w)
        # The RAM gives the beat's bytes by lane (RamReadLanesSignature): rotate them into order.
        m.d.comb += shifted.eq(Cat(self.ram.data, self.ram.data).bit_select(r_shift * 8, self._w))
        w_beat = RqTlpBeat(self._w)(fifo.w_data)
        m.d.comb += [fifo.w_en.eq(in_read), w_beat.eq(r_beat), w_beat.data.eq(shifted)]

        # A request leaves the builder when its last TLP is built or when it is refused: its
        # RAM is released then, and it waits for its report.
        leaving = Signal()
        m.d.comb += leaving.eq((last_issue & ends_request) | pass_refused)
        built = Signal(16)
        m.d.comb += [
            self.released.valid.eq(leaving),
            self.released.payload.id.eq(Mux(pass_refused, cur_id, tlp_id)),
            waiting_fifo.w_en.eq(leaving),
            to_wait.id.eq(Mux(pass_refused, cur_id, tlp_id)),
            to_wait.last_tlp.eq(built),
            to_wait.refused.eq(pass_refused),
        ]

        # Write TLPs are counted as built, as sent (their last beat has left) and as reported
        # sent; reports of reads (sequence numbers 32 and up) do not count.
        left_engine = Signal(16)
        sent = Signal(16)
        with m.If(last_issue):
            m.d.sync += built.eq(built + 1)
        with m.If(self.tlp.valid & self.tlp.ready & self.tlp.payload.last):
            m.d.sync += left_engine.eq(left_engine + 1)
        reports = Signal(2)
        m.d.comb += reports.eq((self.seq_num_vld0 & ~self.seq_num0[5]).as_unsigned() +
                               (self.seq_num_vld1 & ~self.seq_num1[5]).as_unsigned())
        unreported = Signal(16)
        m.d.comb += unreported.eq(left_engine - sent)
        stalled = Signal(32)                 # clocks without a report while TLPs are unreported
        lost = Signal()
        m.d.comb += lost.eq((unreported != 0) & (stalled > self.timeout))
        # TLPs [lost_from, lost_to) were taken as lost by the last time-out.
        lost_from = Signal(16)
        lost_to = Signal(16)
        with m.If(lost):
            m.d.sync += [sent.eq(left_engine), stalled.eq(0), lost_from.eq(sent),
                         lost_to.eq(left_engine)]
        with m.Else():
            m.d.sync += sent.eq(sent + Mux(reports > unreported, unreported, reports))
            with m.If((unreported != 0) & (reports == 0)):
                m.d.sync += stalled.eq(stalled + 1)
            with m.Else():
                m.d.sync += stalled.eq(0)

        # The oldest waiting request is confirmed once its last TLP is counted as sent.
        confirmed = ~(sent - head.last_tlp - 1)[15]      # sent > last_tlp, modulo 2^16
        timed_out = (head.last_tlp - lost_from) < (lost_to - lost_from)
        done = Signal()
        m.d.comb += [done.eq(waiting_fifo.r_rdy & (head.refused | confirmed)),
                     waiting_fifo.r_en.eq(done)]
        st = self.status
        m.d.sync += st.valid.eq(done)
        with m.If(done):
            m.d.sync += [st.payload.id.eq(head.id),
                         st.payload.error.eq(Mux(head.refused, WriteError.BUS_MASTER_OFF,
                                                 Mux(timed_out, WriteError.TIMEOUT,
                                                     WriteError.OK)))]
        m.d.comb += self.idle.eq(~cur_valid & ~building & ~in_read & ~fifo.r_rdy & ~o_valid &
                                 ~waiting_fifo.r_rdy & ~st.valid)
        return m
