"""DMA read engine: host memory reads into the DMA RAM, completions in any order."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ReadError

from ..common.priority import lowest_set, round_robin, select
from .dma_layouts import cpl_chunk_stream, rq_tlp_stream
from .dma_ram import RamWriteSignature, ram_addr_bits
from .layouts import CplStatus, RcErrorCode, ReqType


__all__ = ["DmaReadEngine", "ReadRequest", "ReadStatus"]


class ReadRequest(data.StructLayout):
    """Read ``length`` bytes (1 to 2^24 - 1) from host ``addr`` into RAM byte ``ram_addr``.

    ``ram_addr`` must equal ``addr`` modulo the RAM row size (docs/dma.md).
    """

    def __init__(self, ram_addr_bits):
        super().__init__({"addr": 64, "length": 24, "ram_addr": ram_addr_bits, "id": 8})


class ReadStatus(data.StructLayout):
    def __init__(self):
        super().__init__({"id": 8, "error": 3})


class DmaReadEngine(wiring.Component):
    """Memory reads for ``clients`` clients (docs/dma.md, "Read engine").

    A request is cut into reads at Max_Read_Request_Size boundaries of the address, each with
    its own tag (32 tags until ``ext_tag`` is set, then ``tags``), while the completion data
    and headers outstanding stay within ``credit_bytes`` and ``credit_headers``. Clients with
    work take turns, one read per turn. Completion chunks are written to the RAM as they come,
    in any order; a request's status follows the last of its data. A read still outstanding
    after ``timeout`` clocks ends its request with TIMEOUT and its tag is retired for another
    ``timeout`` clocks: a late completion in that time is dropped, never taken for a reused
    tag's. Then the tag is used again, so reads that are never answered (the hard block drops
    them while bus mastering is off) cannot use up the tags.

    Members
    -------
    req : In(stream.Signature(ReadRequest)).array(clients)
    status : Out(stream.Signature(ReadStatus)).array(clients)
    tlp : Out(rq_tlp_stream)
        Read requests, to the RQ framer.
    cpl : In(cpl_chunk_stream)
        Completion chunks from the RC parser; always accepted.
    ram : Out(RamWriteSignature)
    max_read_req : In(3)
        Max_Read_Request_Size, 128 << n bytes (``cfg_max_read_req``).
    read_size : In(4)
        If not 0, reads are also cut at 1 << read_size byte boundaries (2 to 12): smaller reads
        for lower latency, or to exercise the completion path.
    ext_tag : In(1)
        Extended Tag Field Enable.
    bus_master : In(1)
    timeout : In(32)
        Completion time-out in clocks.
    outstanding_bytes : Out(16)
        Completion bytes requested and not yet received (for monitoring).
    idle : Out(1)
        No request is in the engine and no read is outstanding.
    """

    def __init__(self, *, data_width, ram_rows, clients, tags=256, credit_bytes=28672,
                 credit_headers=256):
        if data_width not in (256, 512):
            raise ValueError(f"data_width must be 256 or 512, not {data_width}")
        if tags not in (32, 64, 128, 256):
            raise ValueError(f"tags must be 32, 64, 128 or 256, not {tags}")
        if not 4096 <= credit_bytes < 1 << 16:
            raise ValueError("credit_bytes must hold at least one 4 KiB read")
        self._w = data_width
        self._rows = ram_rows
        self._clients = clients
        self._tags = tags
        self._credit_bytes = credit_bytes
        self._credit_headers = credit_headers
        self._ram_bits = ram_addr_bits(data_width, ram_rows)
        super().__init__({
            "req": In(stream.Signature(ReadRequest(self._ram_bits))).array(clients),
            "status": Out(stream.Signature(ReadStatus())).array(clients),
            "tlp": Out(rq_tlp_stream(data_width)),
            "cpl": In(cpl_chunk_stream(data_width)),
            "ram": Out(RamWriteSignature(data_width, ram_rows)),
            "max_read_req": In(3),
            "read_size": In(4),
            "ext_tag": In(1),
            "bus_master": In(1),
            "timeout": In(32),
            "outstanding_bytes": Out(16),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._clients
        row_bytes = self._w // 8
        row_shift = row_bytes.bit_length() - 1
        win_bits = 12 - row_shift
        row_bits = (self._rows - 1).bit_length()
        tag_bits = (self._tags - 1).bit_length()

        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        # ---- per-client request state -------------------------------------------------------
        active = Signal(n)
        addr = [Signal(64, name=f"addr{i}") for i in range(n)]
        left = [Signal(24, name=f"left{i}") for i in range(n)]
        ram = [Signal(self._ram_bits, name=f"ram{i}") for i in range(n)]
        ident = [Signal(8, name=f"id{i}") for i in range(n)]
        reads = [Signal(tag_bits + 1, name=f"reads{i}") for i in range(n)]  # outstanding
        error = [Signal(3, name=f"error{i}") for i in range(n)]

        # ---- tags and credits ---------------------------------------------------------------
        busy = Signal(self._tags)          # read outstanding
        retired = Signal(self._tags)       # timed out: not reused for another time-out
        usable = Signal(self._tags)
        m.d.comb += usable.eq(~busy & ~retired & Mux(self.ext_tag, (1 << self._tags) - 1,
                                                     (1 << 32) - 1))
        free_tag, have_tag = lowest_set(m, usable, name="free_tag")
        credit_b = Signal(16)              # completion bytes outstanding (dword multiples)
        credit_h = Signal(10)              # completion headers outstanding (worst case)
        m.d.comb += self.outstanding_bytes.eq(credit_b)

        entry = data.StructLayout({"client": range(max(n, 2)), "row0": row_bits, "w0": win_bits,
                                   "w_last": win_bits, "first": 12, "end": 13, "bytes": 13,
                                   "headers": 7, "start": 32})
        m.submodules.tag_table = table = Memory(shape=entry, depth=self._tags, init=[])
        t_wr = table.write_port()
        t_cpl = table.read_port(domain="comb")
        t_scan = table.read_port(domain="comb")

        # ---- intake ---------------------------------------------------------------------------
        status_valid = Signal(n)
        for i in range(n):
            m.d.comb += [
                self.req[i].ready.eq(~active[i] & ~status_valid[i]),
                self.status[i].valid.eq(status_valid[i]),
                self.status[i].payload.id.eq(ident[i]),
                self.status[i].payload.error.eq(error[i]),
            ]
            with m.If(self.status[i].valid & self.status[i].ready):
                m.d.sync += status_valid[i].eq(0)

        # ---- issue: round-robin over clients with bytes left to request ----------------------
        mrrs = Signal(13)
        m.d.comb += mrrs.eq(Const(128, 13) << Mux(self.max_read_req > 5, 5, self.max_read_req))
        cap = Signal(13)
        with m.If((self.read_size >= 2) & (self.read_size <= 12)):
            m.d.comb += cap.eq(Const(1, 13) << self.read_size)
        limit = Signal(13)
        m.d.comb += limit.eq(Mux((cap != 0) & (cap < mrrs), cap, mrrs))
        # A request accepted now is split now: its first read leaves in the same clock.
        accepting = Signal(n)
        eff_addr = [Signal(64, name=f"eff_addr{i}") for i in range(n)]
        eff_left = [Signal(24, name=f"eff_left{i}") for i in range(n)]
        eff_ram = [Signal(self._ram_bits, name=f"eff_ram{i}") for i in range(n)]
        for i in range(n):
            p = self.req[i].payload
            m.d.comb += [
                accepting[i].eq(self.req[i].valid & self.req[i].ready & self.bus_master &
                                (p.length != 0)),
                eff_addr[i].eq(Mux(accepting[i], p.addr, addr[i])),
                eff_left[i].eq(Mux(accepting[i], p.length, left[i])),
                eff_ram[i].eq(Mux(accepting[i], p.ram_addr, ram[i])),
            ]
        wants = Signal(n)
        for i in range(n):
            m.d.comb += wants[i].eq((active[i] & (left[i] != 0)) | accepting[i])
        last = Signal(range(max(n, 2)))
        pick, pick_valid = round_robin(m, wants, last, name="client")
        picked = lambda signals: select(pick, signals)  # noqa: E731

        p_addr = Signal(64)
        p_left = Signal(24)
        p_ram = Signal(self._ram_bits)
        m.d.comb += [p_addr.eq(picked(eff_addr)), p_left.eq(picked(eff_left)),
                     p_ram.eq(picked(eff_ram))]
        to_boundary = Signal(13)
        m.d.comb += to_boundary.eq(limit - (p_addr[:12] & (limit - 1)))
        p_len = Signal(13)
        m.d.comb += p_len.eq(Mux(p_left < to_boundary, p_left, to_boundary))
        p_off = p_addr[:2]
        p_dwords = Signal(11)
        m.d.comb += p_dwords.eq((p_off + p_len + 3) >> 2)
        end_off = Signal(2)
        m.d.comb += end_off.eq(p_off + p_len - 1)
        first_be = (Const(0xF, 4) << p_off)[:4]
        last_be = Const(0xF, 4) >> (~end_off)[:2]
        p_headers = Signal(7)              # one completion per 64-byte boundary crossed, + 1
        m.d.comb += p_headers.eq((p_addr[:6] + p_len + 63) >> 6)
        fits = ((credit_b + (p_dwords << 2) <= self._credit_bytes) &
                (credit_h + p_headers <= self._credit_headers))

        tlp = self.tlp
        m.d.comb += [
            tlp.valid.eq(pick_valid & have_tag & fits & self.bus_master),
            tlp.payload.first.eq(1),
            tlp.payload.last.eq(1),
            tlp.payload.desc.address.eq(p_addr[2:]),
            tlp.payload.desc.dword_count.eq(p_dwords),
            tlp.payload.desc.req_type.eq(ReqType.MEM_READ),
            tlp.payload.desc.tag.eq(free_tag),
            tlp.payload.seq_num.eq(32),   # reads: 32 and up, not counted by the write engine
            tlp.payload.first_be.eq(Mux(p_dwords == 1, first_be & last_be, first_be)),
            tlp.payload.last_be.eq(Mux(p_dwords == 1, 0, last_be)),
        ]
        issued = Signal()
        m.d.comb += issued.eq(tlp.valid & tlp.ready)
        issued_mask = Signal(self._tags)
        m.d.comb += [
            t_wr.addr.eq(free_tag),
            t_wr.en.eq(issued),
            t_wr.data.client.eq(pick),
            t_wr.data.row0.eq(p_ram[row_shift:]),
            t_wr.data.w0.eq(p_addr[row_shift:12]),
            t_wr.data.w_last.eq((p_addr[:12] + p_len - 1)[row_shift:12]),
            t_wr.data.first.eq(p_addr[:12]),
            t_wr.data.end.eq(p_addr[:12] + p_len),
            t_wr.data.bytes.eq(p_dwords << 2),
            t_wr.data.headers.eq(p_headers),
            t_wr.data.start.eq(now),
            issued_mask.eq(Mux(issued, 1 << free_tag, 0)),
        ]

        # ---- completion chunks ---------------------------------------------------------------
        cpl = self.cpl
        chunk = cpl.payload
        m.d.comb += [cpl.ready.eq(1), t_cpl.addr.eq(chunk.desc.tag)]
        tag_live = busy.bit_select(chunk.desc.tag, 1)
        c_entry = t_cpl.data
        in_range = (chunk.window >= c_entry.w0) & (chunk.window <= c_entry.w_last)
        chunk_error = Signal(3)
        with m.Switch(chunk.desc.error_code):
            with m.Case(RcErrorCode.NORMAL):
                with m.If(chunk.desc.completion_status == CplStatus.UR):
                    m.d.comb += chunk_error.eq(ReadError.UR)
                with m.Elif(chunk.desc.completion_status == CplStatus.CA):
                    m.d.comb += chunk_error.eq(ReadError.CA)
                with m.Elif(chunk.desc.completion_status != CplStatus.SC):
                    m.d.comb += chunk_error.eq(ReadError.MALFORMED)
                with m.Elif((chunk.keep != 0) & ~in_range):
                    m.d.comb += chunk_error.eq(ReadError.MALFORMED)
            with m.Case(RcErrorCode.POISONED):
                m.d.comb += chunk_error.eq(ReadError.POISONED)
            with m.Case(RcErrorCode.BAD_STATUS):
                m.d.comb += chunk_error.eq(Mux(chunk.desc.completion_status == CplStatus.CA,
                                               ReadError.CA, ReadError.UR))
            with m.Case(RcErrorCode.TIMEOUT):
                m.d.comb += chunk_error.eq(ReadError.TIMEOUT)
            with m.Default():
                m.d.comb += chunk_error.eq(ReadError.MALFORMED)
        take = cpl.valid & tag_live
        # Exactly the bytes of the read: completions carry whole dwords, and the RAM bytes
        # around a request belong to others.
        base = Signal(13)
        lo = Signal(range(row_bytes + 1))
        hi = Signal(range(row_bytes + 1))
        m.d.comb += [
            base.eq(chunk.window << row_shift),
            lo.eq(Mux(c_entry.first > base, c_entry.first - base, 0)),
            hi.eq(Mux(c_entry.end < base + row_bytes, c_entry.end - base, row_bytes)),
        ]
        bytes_en = Signal(row_bytes)
        keep_bytes = Cat(*(k.replicate(4) for k in chunk.keep))
        m.d.comb += bytes_en.eq(((Const(1, row_bytes + 1) << hi) - 1) &
                                ~((Const(1, row_bytes + 1) << lo) - 1) & keep_bytes)
        m.d.comb += [
            self.ram.row.eq(c_entry.row0 + (chunk.window - c_entry.w0)),
            self.ram.data.eq(chunk.data),
            self.ram.en.eq(Mux(take & (chunk_error == ReadError.OK), bytes_en, 0)),
        ]
        # The hard block marks the last completion of a read; an error ends the read too.
        finished = take & chunk.last & (chunk.desc.request_completed | (chunk_error != 0))
        finished_mask = Signal(self._tags)
        m.d.comb += finished_mask.eq(Mux(finished, 1 << chunk.desc.tag, 0))

        # ---- time-outs: one tag examined per clock -------------------------------------------
        scan = Signal(tag_bits)
        m.d.sync += scan.eq(scan + 1)
        m.d.comb += t_scan.addr.eq(scan)
        age = Signal(32)
        m.d.comb += age.eq(now - t_scan.data.start)
        expired = (busy.bit_select(scan, 1) & ~finished_mask.bit_select(scan, 1) &
                   (age > self.timeout))
        expired_mask = Signal(self._tags)
        m.d.comb += expired_mask.eq(Mux(expired, 1 << scan, 0))
        reusable = retired.bit_select(scan, 1) & (age > Cat(Const(0, 1), self.timeout))
        reusable_mask = Signal(self._tags)
        m.d.comb += reusable_mask.eq(Mux(reusable, 1 << scan, 0))

        m.d.sync += [
            busy.eq((busy | issued_mask) & ~finished_mask & ~expired_mask),
            retired.eq((retired | expired_mask) & ~reusable_mask),
        ]

        # Credits: taken at issue, given back when a read finishes or times out.
        release_b = Mux(finished, c_entry.bytes, 0) + Mux(expired, t_scan.data.bytes, 0)
        release_h = Mux(finished, c_entry.headers, 0) + Mux(expired, t_scan.data.headers, 0)
        m.d.sync += [
            credit_b.eq(credit_b + Mux(issued, p_dwords << 2, 0) - release_b),
            credit_h.eq(credit_h + Mux(issued, p_headers, 0) - release_h),
        ]

        # ---- per-client bookkeeping ----------------------------------------------------------
        with m.If(issued):
            m.d.sync += last.eq(pick)
        for i in range(n):
            inc = issued & (pick == i)
            dec_cpl = finished & (c_entry.client == i)
            dec_timeout = expired & (t_scan.data.client == i)
            m.d.sync += reads[i].eq(reads[i] + inc - dec_cpl - dec_timeout)
            with m.If(self.req[i].valid & self.req[i].ready):
                p = self.req[i].payload
                m.d.sync += [ident[i].eq(p.id), addr[i].eq(p.addr), left[i].eq(p.length),
                             ram[i].eq(p.ram_addr), error[i].eq(ReadError.OK)]
                with m.If(~self.bus_master | (p.length == 0)):
                    m.d.sync += [status_valid[i].eq(1),
                                 error[i].eq(ReadError.BUS_MASTER_OFF)]
                with m.Else():
                    m.d.sync += active[i].eq(1)
            # Issuing a read (possibly of the request accepted in this clock) advances it.
            with m.If(inc):
                m.d.sync += [addr[i].eq(p_addr + p_len), left[i].eq(p_left - p_len),
                             ram[i].eq(p_ram + p_len)]
            # The first error of a request sticks.
            with m.If(dec_timeout & (error[i] == ReadError.OK)):
                m.d.sync += error[i].eq(ReadError.TIMEOUT)
            with m.Elif(take & (c_entry.client == i) & (chunk_error != 0) &
                        (error[i] == ReadError.OK)):
                m.d.sync += error[i].eq(chunk_error)
            with m.If(active[i] & ~self.bus_master & (left[i] != 0)):
                m.d.sync += left[i].eq(0)
                with m.If(error[i] == ReadError.OK):
                    m.d.sync += error[i].eq(ReadError.BUS_MASTER_OFF)
            # Done: everything requested and nothing outstanding (no read finishing now).
            with m.If(active[i] & (left[i] == 0) & (reads[i] == 0) & ~inc):
                m.d.sync += [active[i].eq(0), status_valid[i].eq(1)]
        m.d.comb += self.idle.eq(~active.any() & ~busy.any() & ~status_valid.any())
        return m
