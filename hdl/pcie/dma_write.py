"""DMA write engine: host memory writes from the DMA RAM, at any byte alignment."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import WriteError

from ..common.priority import round_robin, select
from .dma_layouts import RqTlpBeat, rq_tlp_stream
from .dma_ram import RamReadPairSignature, ram_addr_bits
from .layouts import ReqType


__all__ = ["DmaWriteEngine", "WriteRequest", "WriteStatus"]


class WriteRequest(data.StructLayout):
    """Write ``length`` bytes (1 to 2^24 - 1) from RAM byte ``ram_addr`` to host ``addr``."""

    def __init__(self, ram_addr_bits):
        super().__init__({"addr": 64, "length": 24, "ram_addr": ram_addr_bits, "id": 8})


class WriteStatus(data.StructLayout):
    def __init__(self):
        super().__init__({"id": 8, "error": 2})


class DmaWriteEngine(wiring.Component):
    """Memory writes for ``clients`` clients (docs/dma.md, "Write engine").

    Each request is cut into TLPs at Max_Payload_Size boundaries of the host address, so none
    crosses 4 KiB. Clients with work are served round-robin, one TLP per turn. Payload comes
    from the RAM two rows at a time through a byte shifter, so source and destination
    alignments are independent and TLPs follow each other without idle beats. A request's
    status is sent once the hard block has reported its last TLP sent (``pcie_rq_seq_num``):
    only then is the data ahead of anything the function sends later on any interface, a
    completion on CC included. Write TLPs carry sequence numbers 0 to 31 in order; reads carry
    32 and up (docs/dma.md). Each client has its own status stream and at most one request in
    the engine.

    A hard block may discard TLPs it has accepted without reporting them (the UltraScale+
    model does when bus mastering is cleared). When writes are outstanding and no report has
    come for ``timeout`` clocks, every write TLP that has left the engine is taken as lost: the
    requests waiting for them end with TIMEOUT, and the count of reports is brought up to the
    TLPs sent, so later requests are confirmed by their own reports. Reports beyond the TLPs
    sent (a lost one reported late) are ignored.

    Members
    -------
    req : In(stream.Signature(WriteRequest)).array(clients)
    status : Out(stream.Signature(WriteStatus)).array(clients)
    released : Out(clients)
        One-clock strobe per client when the last RAM row of its request has been read: the
        client may reuse that RAM while the request waits for its confirmation.
    tlp : Out(rq_tlp_stream)
        To the RQ framer.
    ram : Out(RamReadPairSignature)
    max_payload : In(2)
        Max_Payload_Size, 128 << n bytes (``cfg_max_payload``).
    bus_master : In(1)
        Bus Master Enable of the function.
    seq_num0, seq_num_vld0, seq_num1, seq_num_vld1 : In
        The hard block's reports of requester TLPs sent (``pcie_rq_seq_num*``), in order.
    timeout : In(32)
        Confirmation time-out in clocks (the read engine's completion time-out).
    idle : Out(1)
        No request is in the engine: nothing is being sent or waits for its report.
    """

    def __init__(self, *, data_width, ram_rows, clients):
        if data_width not in (256, 512):
            raise ValueError(f"data_width must be 256 or 512, not {data_width}")
        if clients < 1:
            raise ValueError("at least one client")
        self._w = data_width
        self._rows = ram_rows
        self._clients = clients
        self._ram_bits = ram_addr_bits(data_width, ram_rows)
        super().__init__({
            "req": In(stream.Signature(WriteRequest(self._ram_bits))).array(clients),
            "status": Out(stream.Signature(WriteStatus())).array(clients),
            "released": Out(clients),
            "tlp": Out(rq_tlp_stream(data_width)),
            "ram": Out(RamReadPairSignature(data_width, ram_rows)),
            "max_payload": In(2),
            "bus_master": In(1),
            "seq_num0": In(6),
            "seq_num_vld0": In(1),
            "seq_num1": In(6),
            "seq_num_vld1": In(1),
            "timeout": In(32),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._clients
        lanes = self._w // 32
        row_bytes = self._w // 8
        row_shift = row_bytes.bit_length() - 1
        ram_bits = self._ram_bits

        # ---- per-client state ----------------------------------------------------------------
        active = Signal(n)            # a request is being cut into TLPs
        cur_addr = [Signal(64, name=f"cur_addr{i}") for i in range(n)]
        left = [Signal(24, name=f"left{i}") for i in range(n)]
        cur_ram = [Signal(ram_bits, name=f"cur_ram{i}") for i in range(n)]
        req_id = [Signal(8, name=f"req_id{i}") for i in range(n)]
        done = Signal(n)              # all TLPs built, waiting for them to leave
        awaiting = Signal(n)          # all TLPs left, waiting for the hard block's report
        status_valid = Signal(n)
        status_err = [Signal(2, name=f"status_err{i}") for i in range(n)]

        for i in range(n):
            m.d.comb += [
                self.status[i].valid.eq(status_valid[i]),
                self.status[i].payload.id.eq(req_id[i]),
                self.status[i].payload.error.eq(status_err[i]),
                # Accept a request when the client's previous one is fully reported.
                self.req[i].ready.eq(~active[i] & ~done[i] & ~awaiting[i] & ~status_valid[i]),
            ]
            with m.If(self.status[i].valid & self.status[i].ready):
                m.d.sync += status_valid[i].eq(0)
            with m.If(self.req[i].valid & self.req[i].ready):
                p = self.req[i].payload
                m.d.sync += [req_id[i].eq(p.id), cur_addr[i].eq(p.addr),
                             left[i].eq(p.length), cur_ram[i].eq(p.ram_addr)]
                with m.If(~self.bus_master | (p.length == 0)):
                    m.d.sync += [status_valid[i].eq(1),
                                 status_err[i].eq(WriteError.BUS_MASTER_OFF)]
                with m.Else():
                    m.d.sync += [active[i].eq(1), status_err[i].eq(WriteError.OK)]

        # ---- output FIFO: beats, tagged with their client and end of request ---------------
        entry = data.StructLayout({"beat": RqTlpBeat(self._w), "client": range(max(n, 2)),
                                   "end": 1})
        depth = 4
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=entry.size, depth=depth)
        out = entry(fifo.r_data)
        m.d.comb += [
            self.tlp.valid.eq(fifo.r_rdy),
            self.tlp.payload.eq(out.beat),
            fifo.r_en.eq(self.tlp.ready),
        ]
        ending = Signal(n)
        with m.If(fifo.r_rdy & fifo.r_en & out.end):
            m.d.comb += ending.eq(1 << out.client)

        # ---- TLP builder ---------------------------------------------------------------------
        building = Signal()
        client = Signal(range(max(n, 2)))
        last_client = Signal(range(max(n, 2)))
        tlp_addr = Signal(64)
        tlp_len = Signal(13)          # bytes of this TLP, at most 4096
        tlp_ram = Signal(ram_bits)    # RAM byte address of payload byte 0 (dword aligned dest)
        beat = Signal(9)              # beat index within the TLP
        beats = Signal(9)
        dwords = Signal(11)
        ends_request = Signal()
        seq_num = Signal(6)
        desc_first_be = Signal(4)
        desc_last_be = Signal(4)

        # Round-robin among the clients with TLPs still to build.
        pick, pick_valid = round_robin(m, active & ~done, last_client, name="client")

        mps = Signal(11)
        m.d.comb += mps.eq(Const(128, 11) << self.max_payload)

        def pick_value(signals):
            return select(pick, signals)

        p_addr = Signal(64)
        p_left = Signal(24)
        p_ram = Signal(ram_bits)
        m.d.comb += [p_addr.eq(pick_value(cur_addr)), p_left.eq(pick_value(left)),
                     p_ram.eq(pick_value(cur_ram))]
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
        with m.If((~building | last_issue) & pick_valid):
            m.d.sync += [
                building.eq(1),
                client.eq(pick),
                last_client.eq(pick),
                tlp_addr.eq(p_addr),
                tlp_len.eq(p_len),
                tlp_ram.eq(p_ram - p_off),
                dwords.eq(p_dwords),
                beats.eq((p_dwords + lanes - 1) >> (lanes.bit_length() - 1)),
                beat.eq(0),
                ends_request.eq(p_len == p_left),
                desc_first_be.eq(Mux(p_dwords == 1, first_be & last_be, first_be)),
                desc_last_be.eq(Mux(p_dwords == 1, 0, last_be)),
            ]
            # Advance the client past this TLP now; its beats follow.
            for i in range(n):
                with m.If(pick == i):
                    m.d.sync += [cur_addr[i].eq(p_addr + p_len), left[i].eq(p_left - p_len),
                                 cur_ram[i].eq(p_ram + p_len)]
                    with m.If(p_len == p_left):
                        m.d.sync += [active[i].eq(0), done[i].eq(1)]

        # RAM read of the two rows this beat needs.
        beat_ram = Signal(ram_bits)
        m.d.comb += [
            beat_ram.eq(tlp_ram + (beat << row_shift)),
            self.ram.en.eq(issue),
            self.ram.row.eq(beat_ram[row_shift:]),
        ]

        # Read stage: the beat's fields wait one clock for the RAM data.
        r_beat = Signal(RqTlpBeat(self._w))
        r_shift = Signal(range(row_bytes))
        r_client = Signal(range(max(n, 2)))
        r_end = Signal()
        m.d.sync += in_read.eq(issue)
        with m.If(issue):
            last_beat = beat + 1 == beats
            rest = Signal(range(lanes + 1))
            m.d.comb += rest.eq(dwords - (beat << (lanes.bit_length() - 1)))
            m.d.sync += [
                r_shift.eq(beat_ram[:row_shift]),
                r_client.eq(client),
                r_end.eq(last_beat & ends_request),
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
            ]

        shifted = Signal(self._w)
        m.d.comb += shifted.eq(Cat(self.ram.lo, self.ram.hi).bit_select(r_shift * 8, self._w))
        w = entry(fifo.w_data)
        m.d.comb += [
            fifo.w_en.eq(in_read),
            w.beat.eq(r_beat),
            w.beat.data.eq(shifted),
            w.client.eq(r_client),
            w.end.eq(r_end),
        ]

        # Write TLPs are counted as built, as sent (their last beat has left) and as reported
        # sent; reports of reads (sequence numbers 32 and up) do not count. A client's status
        # goes out once the report of its request's last TLP has come back, or with TIMEOUT
        # once the reports have stalled (see the class docstring).
        built = Signal(16)
        left_engine = Signal(16)
        sent = Signal(16)
        with m.If(last_issue):
            m.d.sync += built.eq(built + 1)
        with m.If(fifo.r_rdy & fifo.r_en & out.beat.last):
            m.d.sync += left_engine.eq(left_engine + 1)
        reports = Signal(2)
        m.d.comb += reports.eq((self.seq_num_vld0 & ~self.seq_num0[5]).as_unsigned() +
                               (self.seq_num_vld1 & ~self.seq_num1[5]).as_unsigned())
        unreported = Signal(16)
        m.d.comb += unreported.eq(left_engine - sent)
        stalled = Signal(32)                 # clocks without a report while writes wait
        lost = Signal()
        m.d.comb += lost.eq(awaiting.any() & (stalled > self.timeout))
        with m.If(lost):
            m.d.sync += [sent.eq(left_engine), stalled.eq(0)]
        with m.Else():
            m.d.sync += sent.eq(sent + Mux(reports > unreported, unreported, reports))
            with m.If(awaiting.any() & (reports == 0)):
                m.d.sync += stalled.eq(stalled + 1)
            with m.Else():
                m.d.sync += stalled.eq(0)
        last_tlp = [Signal(16, name=f"last_tlp{i}") for i in range(n)]
        for i in range(n):
            with m.If(last_issue & ends_request & (client == i)):
                m.d.sync += last_tlp[i].eq(built)
                m.d.comb += self.released[i].eq(1)
            with m.If(ending[i]):
                m.d.sync += [done[i].eq(0), awaiting[i].eq(1)]
            confirmed = ~(sent - last_tlp[i] - 1)[15]      # sent > last_tlp, modulo 2^16
            with m.If(awaiting[i] & (confirmed | lost)):
                m.d.sync += [awaiting[i].eq(0), status_valid[i].eq(1)]
                with m.If(~confirmed):
                    m.d.sync += status_err[i].eq(WriteError.TIMEOUT)
        m.d.comb += self.idle.eq(~(active | done | awaiting | status_valid).any())
        return m
