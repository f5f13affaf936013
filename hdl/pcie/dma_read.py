"""DMA read engine: host memory reads into the DMA RAM, completions in any order."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sdxi_defs.errors import ReadError

from ..common.priority import lowest_set
from .dma_layouts import FUNCTION_BITS, cpl_chunk_stream, rq_tlp_stream
from .dma_ram import RamWriteSignature, ram_addr_bits
from .layouts import CplStatus, RcErrorCode, ReqType


__all__ = ["DmaReadEngine", "ReadRequest", "ReadStatus"]


class ReadRequest(data.StructLayout):
    """Read ``length`` bytes (1 to 2^24 - 1) from host ``addr`` into RAM byte ``ram_addr``.

    ``ram_addr`` must equal ``addr`` modulo the RAM row size (docs/dma.md). ``id`` comes back
    in the request's status. The reads go out with ``function``'s requester ID.
    """

    def __init__(self, ram_addr_bits, id_bits=8):
        super().__init__({"addr": 64, "length": 24, "ram_addr": ram_addr_bits, "id": id_bits,
                          "function": FUNCTION_BITS})


class ReadStatus(data.StructLayout):
    def __init__(self, id_bits=8):
        super().__init__({"id": id_bits, "error": 3})


class DmaReadEngine(wiring.Component):
    """Memory reads for requests that carry their requester's id (docs/dma.md, "Read engine").

    Requests come on one stream; clients share it through a ``ClientMux``, which makes each an
    id prefix. A request is taken when an operation entry is free (``ops`` requests in flight)
    and is cut into reads at Max_Read_Request_Size boundaries of the address, one read per
    clock, each with its own tag (32 tags until ``ext_tag`` is set, then ``tags``), while the
    completion data and headers outstanding stay within ``credit_bytes`` and
    ``credit_headers``; the first read leaves in the clock the request is taken. Completion
    chunks are written to the RAM as they come, in any order, from a register (one clock after
    the chunk); a request's status (one clock after the last of its data is written, never held
    back) carries its id and its first error.

    A read still outstanding after ``timeout`` clocks ends with TIMEOUT and its tag is retired
    for another ``timeout`` clocks: a late completion in that time is dropped, never taken for
    a reused tag's. Then the tag is used again, so reads that are never answered (the hard
    block drops them while bus mastering is off) cannot use up the tags.

    State lives in three tables with one write site each: the tag table (written when a read
    is issued), the operations' issue counts (written by the splitter) and their finish counts
    and first errors (written when a read finishes, fails or times out, or when the splitter
    gives up a request because bus mastering went off).

    Members
    -------
    req : In(stream.Signature(ReadRequest(id_bits)))
    status : Out(stream.Signature(ReadStatus(id_bits), always_ready=True))
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
    bus_master : In(1 << FUNCTION_BITS)
        Bus Master Enable of each function: a function's requests are refused while it is off.
    timeout : In(32)
        Completion time-out in clocks.
    outstanding_bytes : Out(16)
        Completion bytes requested and not yet received (for monitoring).
    idle : Out(1)
        No request is in the engine and no read is outstanding.
    """

    def __init__(self, *, data_width, ram_rows, id_bits=8, ops=32, tags=256,
                 credit_bytes=28672, credit_headers=256):
        if data_width not in (256, 512):
            raise ValueError(f"data_width must be 256 or 512, not {data_width}")
        if tags not in (32, 64, 128, 256):
            raise ValueError(f"tags must be 32, 64, 128 or 256, not {tags}")
        if not 4096 <= credit_bytes < 1 << 16:
            raise ValueError("credit_bytes must hold at least one 4 KiB read")
        if ops < 2 or ops & (ops - 1):
            raise ValueError(f"ops must be a power of two, not {ops}")
        self._w = data_width
        self._rows = ram_rows
        self._ops = ops
        self._tags = tags
        self._credit_bytes = credit_bytes
        self._credit_headers = credit_headers
        self._ram_bits = ram_addr_bits(data_width, ram_rows)
        self.id_bits = id_bits
        super().__init__({
            "req": In(stream.Signature(ReadRequest(self._ram_bits, id_bits))),
            "status": Out(stream.Signature(ReadStatus(id_bits), always_ready=True)),
            "tlp": Out(rq_tlp_stream(data_width)),
            "cpl": In(cpl_chunk_stream(data_width)),
            "ram": Out(RamWriteSignature(data_width, ram_rows)),
            "max_read_req": In(3),
            "read_size": In(4),
            "ext_tag": In(1),
            "bus_master": In(1 << FUNCTION_BITS),
            "timeout": In(32),
            "outstanding_bytes": Out(16),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        row_bytes = self._w // 8
        row_shift = row_bytes.bit_length() - 1
        win_bits = 12 - row_shift
        row_bits = (self._rows - 1).bit_length()
        tag_bits = (self._tags - 1).bit_length()
        op_bits = (self._ops - 1).bit_length()
        count_bits = tag_bits + 1          # reads of one request outstanding: at most the tags

        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        # ---- operations: one per request in flight --------------------------------------------
        op_busy = Signal(self._ops)
        op_take = Signal(self._ops)
        op_done = Signal(self._ops)
        m.d.sync += op_busy.eq((op_busy | op_take) & ~op_done)
        free_op, have_op = lowest_set(m, ~op_busy, name="free_op")
        issue_entry = data.StructLayout({"id": self.id_bits, "count": count_bits, "all": 1,
                                         "bus_master_off": 1})
        finish_entry = data.StructLayout({"count": count_bits, "error": 3})
        m.submodules.op_issue = op_issue = Memory(shape=issue_entry, depth=self._ops, init=[])
        m.submodules.op_finish = op_finish = Memory(shape=finish_entry, depth=self._ops, init=[])
        issue_wr = op_issue.write_port()
        issue_rd = op_issue.read_port(domain="comb")
        finish_wr = op_finish.write_port()
        finish_rd = op_finish.read_port(domain="comb")

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

        # Per tag, written once when its read is issued. Completions read what places their
        # data; the time-out scan reads what it releases. Two tables, so that neither read
        # port copies the fields only the other needs (a LUTRAM has one read port per copy).
        release = {"op": op_bits, "bytes": 13, "headers": 7}
        placing = data.StructLayout({**release, "row0": row_bits, "w0": win_bits,
                                     "w_last": win_bits, "first": 12, "end": 13})
        ageing = data.StructLayout({**release, "start": 32})
        t_entry = Signal(data.StructLayout({**placing.members, "start": 32}))
        m.submodules.tag_table = table = Memory(shape=placing, depth=self._tags, init=[])
        m.submodules.tag_age = age_table = Memory(shape=ageing, depth=self._tags, init=[])
        t_wr = table.write_port()
        age_wr = age_table.write_port()
        t_cpl = table.read_port(domain="comb")
        t_scan = age_table.read_port(domain="comb")
        m.d.comb += [age_wr.addr.eq(t_wr.addr), age_wr.en.eq(t_wr.en),
                     age_wr.data.start.eq(t_entry.start)]
        for name in placing.members:
            m.d.comb += getattr(t_wr.data, name).eq(getattr(t_entry, name))
        for name in release:
            m.d.comb += getattr(age_wr.data, name).eq(getattr(t_entry, name))

        # ---- splitter: the request being cut into reads ----------------------------------------
        active = Signal()                  # reads of the current request are left to issue
        cur_addr = Signal(64)
        cur_left = Signal(24)
        cur_ram = Signal(self._ram_bits)
        cur_id = Signal(self.id_bits)
        cur_function = Signal(FUNCTION_BITS)
        cur_op = Signal(op_bits)
        cur_count = Signal(count_bits)     # reads issued for it
        direct = Signal()                  # a refused request's status waits to go out
        direct_id = Signal(self.id_bits)

        req = self.req
        p = req.payload
        m.d.comb += req.ready.eq(~active & ~direct & have_op)
        accepted = req.valid & req.ready
        refused = accepted & (~self.bus_master.bit_select(p.function, 1) | (p.length == 0))
        fresh = Signal()                   # taken now, and split from this clock on
        m.d.comb += fresh.eq(accepted & ~refused)
        with m.If(refused):
            m.d.sync += [direct.eq(1), direct_id.eq(p.id)]
        m.d.comb += op_take.eq(Mux(fresh, 1 << free_op, 0))

        eff_addr = Mux(fresh, p.addr, cur_addr)
        eff_ram = Mux(fresh, p.ram_addr, cur_ram)
        eff_id = Mux(fresh, p.id, cur_id)
        eff_function = Mux(fresh, p.function, cur_function)
        eff_op = Mux(fresh, free_op, cur_op)
        eff_count = Mux(fresh, 0, cur_count)
        p_left = Signal(24)
        m.d.comb += p_left.eq(Mux(fresh, p.length, cur_left))

        mrrs = Signal(13)
        m.d.comb += mrrs.eq(Const(128, 13) << Mux(self.max_read_req > 5, 5, self.max_read_req))
        cap = Signal(13)
        with m.If((self.read_size >= 2) & (self.read_size <= 12)):
            m.d.comb += cap.eq(Const(1, 13) << self.read_size)
        limit = Signal(13)
        m.d.comb += limit.eq(Mux((cap != 0) & (cap < mrrs), cap, mrrs))
        p_addr = Signal(64)
        p_ram = Signal(self._ram_bits)
        m.d.comb += [p_addr.eq(eff_addr), p_ram.eq(eff_ram)]
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
            tlp.valid.eq((fresh | active) & have_tag & fits &
                         self.bus_master.bit_select(eff_function, 1)),
            tlp.payload.first.eq(1),
            tlp.payload.last.eq(1),
            tlp.payload.desc.address.eq(p_addr[2:]),
            tlp.payload.desc.dword_count.eq(p_dwords),
            tlp.payload.desc.req_type.eq(ReqType.MEM_READ),
            tlp.payload.desc.tag.eq(free_tag),
            tlp.payload.desc.requester_id.eq(eff_function),  # function number; bus from the core
            tlp.payload.seq_num.eq(32),   # reads: 32 and up, not counted by the write engine
            tlp.payload.first_be.eq(Mux(p_dwords == 1, first_be & last_be, first_be)),
            tlp.payload.last_be.eq(Mux(p_dwords == 1, 0, last_be)),
        ]
        issued = Signal()
        m.d.comb += issued.eq(tlp.valid & tlp.ready)
        issued_mask = Signal(self._tags)
        ends_request = Signal()
        m.d.comb += ends_request.eq(p_len == p_left)
        m.d.comb += [
            t_wr.addr.eq(free_tag),
            t_wr.en.eq(issued),
            t_entry.op.eq(eff_op),
            t_entry.row0.eq(p_ram[row_shift:]),
            t_entry.w0.eq(p_addr[row_shift:12]),
            t_entry.w_last.eq((p_addr[:12] + p_len - 1)[row_shift:12]),
            t_entry.first.eq(p_addr[:12]),
            t_entry.end.eq(p_addr[:12] + p_len),
            t_entry.bytes.eq(p_dwords << 2),
            t_entry.headers.eq(p_headers),
            t_entry.start.eq(now),
            issued_mask.eq(Mux(issued, 1 << free_tag, 0)),
        ]
        with m.If(fresh):
            m.d.sync += [active.eq(1), cur_addr.eq(p.addr), cur_left.eq(p.length),
                         cur_ram.eq(p.ram_addr), cur_id.eq(p.id), cur_op.eq(free_op),
                         cur_function.eq(p.function),
                         cur_count.eq(0)]
        with m.If(issued):
            m.d.sync += [cur_addr.eq(p_addr + p_len), cur_left.eq(p_left - p_len),
                         cur_ram.eq(p_ram + p_len), cur_count.eq(eff_count + 1)]
            with m.If(ends_request):
                m.d.sync += active.eq(0)
        # Bus mastering off: the rest of the request is given up (``give_up``, taken by the
        # finish stage below when no completion needs it).
        give_up = Signal()
        m.d.comb += give_up.eq(active & ~self.bus_master.bit_select(cur_function, 1))
        given_up = Signal()
        with m.If(given_up):
            m.d.sync += active.eq(0)
        m.d.comb += [
            issue_wr.en.eq(issued | given_up),
            issue_wr.addr.eq(eff_op),
            issue_wr.data.id.eq(eff_id),
            issue_wr.data.count.eq(Mux(issued, eff_count + 1, cur_count)),
            issue_wr.data.all.eq(given_up | ends_request),
            issue_wr.data.bus_master_off.eq(given_up),
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
        # From registers: the tag lookup and byte enables do not run on into the RAM's port
        # sharing; the statuses are a clock later for it too.
        m.d.sync += [
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
        reusable = retired.bit_select(scan, 1) & (age > Cat(Const(0, 1), self.timeout))
        reusable_mask = Signal(self._tags)
        m.d.comb += reusable_mask.eq(Mux(reusable, 1 << scan, 0))

        # ---- finish stage: one event per clock on an operation's finish entry ----------------
        # A completion chunk that ends a read or carries an error comes first; then a request
        # given up; then a time-out of the tag being examined (missed now, caught next round).
        chunk_event = Signal()
        m.d.comb += chunk_event.eq(take & (finished | (chunk_error != 0)))
        m.d.comb += given_up.eq(~chunk_event & give_up)
        expired = Signal()
        m.d.comb += expired.eq(~chunk_event & ~give_up & busy.bit_select(scan, 1) &
                               (age > self.timeout))
        expired_mask = Signal(self._tags)
        m.d.comb += expired_mask.eq(Mux(expired, 1 << scan, 0))
        ev_op = Signal(op_bits)
        m.d.comb += ev_op.eq(Mux(chunk_event, c_entry.op, Mux(given_up, cur_op, t_scan.data.op)))
        ev_error = Signal(3)
        m.d.comb += ev_error.eq(Mux(chunk_event, chunk_error,
                                    Mux(expired, ReadError.TIMEOUT, ReadError.OK)))
        m.d.comb += [issue_rd.addr.eq(ev_op), finish_rd.addr.eq(ev_op)]
        # What the splitter writes in this clock is not in its table yet: a request given up
        # now is taken from the splitter's registers.
        count = Signal(count_bits)
        error = Signal(3)
        m.d.comb += [count.eq(finish_rd.data.count + (finished | expired)),
                     error.eq(Mux(finish_rd.data.error != 0, finish_rd.data.error, ev_error))]
        all_issued = Mux(given_up, 1, issue_rd.data.all)
        issued_count = Mux(given_up, cur_count, issue_rd.data.count)
        bus_master_off = Mux(given_up, 1, issue_rd.data.bus_master_off)
        completes = Signal()
        m.d.comb += completes.eq((chunk_event | given_up | expired) & all_issued &
                                 (count == issued_count))
        # A request's finish entry goes back to zero with its status: a free entry is zero.
        m.d.comb += [
            finish_wr.en.eq(chunk_event | given_up | expired),
            finish_wr.addr.eq(ev_op),
            finish_wr.data.count.eq(Mux(completes, 0, count)),
            finish_wr.data.error.eq(Mux(completes, 0, error)),
            op_done.eq(Mux(completes, 1 << ev_op, 0)),
        ]

        # ---- status, two registers on: the request's last data is in the RAM by then ----------
        st = self.status
        stage = Signal(data.StructLayout({"valid": 1, "status": ReadStatus(self.id_bits)}))
        m.d.sync += [stage.valid.eq(completes | direct),
                     st.valid.eq(stage.valid), st.payload.eq(stage.status)]
        with m.If(completes):
            m.d.sync += [stage.status.id.eq(Mux(given_up, cur_id, issue_rd.data.id)),
                         stage.status.error.eq(Mux(error != 0, error,
                                                   Mux(bus_master_off, ReadError.BUS_MASTER_OFF,
                                                       ReadError.OK)))]
        with m.Elif(direct):
            m.d.sync += [direct.eq(0), stage.status.id.eq(direct_id),
                         stage.status.error.eq(ReadError.BUS_MASTER_OFF)]

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
        m.d.comb += self.idle.eq(~active & ~op_busy.any() & ~busy.any() & ~direct & ~stage.valid &
                                 ~st.valid)
        return m
