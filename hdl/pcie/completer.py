"""MMIO completer: serves host reads and writes of the BARs from the hard block's CQ/CC pair."""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..common.axis import axi_stream
from ..common.regbus import RegisterBus
from ..config import FUNCTION_BITS
from .layouts import (CcDescriptor, CplStatus, CqDescriptor, ReqType,
                      CC_DESCRIPTOR_DWORDS, CQ_DESCRIPTOR_DWORDS)


__all__ = ["MmioCompleter"]


def _lowest_set(value, width):
    """Index of the lowest set bit of ``value`` (0 if none)."""
    out = Const(0, range(width))
    for i in reversed(range(width)):
        out = Mux(value[i], i, out)
    return out


def _highest_set(value, width):
    out = Const(0, range(width))
    for i in range(width):
        out = Mux(value[i], i, out)
    return out


class MmioCompleter(wiring.Component):
    """Completer for memory requests to BAR0 and BAR2 (PG213 CQ/CC, dword-aligned, not straddled).

    Memory writes of any length become qword writes on ``bar0`` or ``bar2`` with the TLP's byte
    enables (a 64-bit aligned write is one qword write, so 64-bit registers and doorbells update
    atomically). Memory reads of 1 to 1024 dwords, including zero-length reads, are answered with
    successful completions split at boundaries of the Max_Payload_Size the host programmed
    (``cfg_max_payload``), which are also 128-byte read completion boundaries. I/O, atomic and
    locked requests are answered Unsupported Request; messages are dropped; both pulse
    ``unsupported``. Truncated TLPs (``tlast`` or ``tkeep`` ending before the payload does) are
    dropped and pulse ``unsupported``; as the payload goes to the bus while it arrives, a write
    truncated after its first beat has had the dwords of its earlier beats written. One request is
    handled at a time: CQ back-pressure is the only flow control, so the hard block's non-posted
    request credit is left continuous (``pcie_cq_np_req`` = 0b11 at the top level).

    Members
    -------
    cq : In(axi_stream)
        Completer request interface (the hard block's ``m_axis_cq_*``).
    cc : Out(axi_stream)
        Completer completion interface (the hard block's ``s_axis_cc_*``).
    cfg_max_payload : In(2)
        Max_Payload_Size from Device Control: 128 << n bytes.
    bar0, bar2 : Out(RegisterBus)
        Register accesses, at qword addresses within each BAR.
    function : Out(FUNCTION_BITS)
        The function whose BAR the access on ``bar0``/``bar2`` is to (the request's target
        function), driven with the bus; completions carry it as the completer's function.
    unsupported : Out(1)
        One-clock pulse for each request answered UR or dropped.
    """

    def __init__(self, *, data_width, cq_user_width, cc_user_width, bar0_log2_size, bar2_log2_size):
        if data_width not in (256, 512):
            raise ValueError(f"data_width must be 256 or 512, not {data_width}")
        self._data_width = data_width
        self._bar_log2 = {0: bar0_log2_size, 2: bar2_log2_size}
        super().__init__({
            "cq": In(axi_stream(data_width, cq_user_width)),
            "cc": Out(axi_stream(data_width, cc_user_width)),
            "cfg_max_payload": In(2),
            "bar0": Out(RegisterBus(bar0_log2_size - 3)),
            "bar2": Out(RegisterBus(bar2_log2_size - 3)),
            "function": Out(FUNCTION_BITS),
            "unsupported": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self._data_width // 32
        addr_bits = max(self._bar_log2.values())

        # tuser positions of the first/last dword byte enables (PG213 CQ tuser tables).
        last_be_lsb = 8 if self._data_width == 512 else 4

        desc = Signal(CqDescriptor)
        first_be = Signal(4)
        last_be = Signal(4)
        beat = Signal(self._data_width)     # payload beat being consumed
        beat_last = Signal()                # that beat carried tlast
        beat_keep = Signal(lanes)           # and its per-dword tkeep
        lane = Signal(range(lanes + 1))     # next dword lane of ``beat``

        req_type = desc.req_type
        bar_offset_dw = Signal(addr_bits - 2)   # dword address within the BAR
        dw_total = Signal(11)

        # ---- CQ: accept the descriptor beat --------------------------------------------------
        cq_desc = CqDescriptor(self.cq.payload.data[:128])

        # ---- register-bus routing: one access per clock to the BAR of the request --------------
        bus_addr = Signal(addr_bits - 3)
        w_stb = Signal()
        w_data = Signal(64)
        w_be = Signal(8)
        r_stb = Signal()
        is_bar2 = Signal()
        r_from_bar2 = Signal()
        m.d.comb += is_bar2.eq(desc.bar_id == 2)
        # The buses are driven from registers: an access reaches the targets (and whatever
        # decodes their addresses) in the clock after the state machine chose it, so no path
        # runs from this block's logic through the address decode into a target's registers.
        for bar_id, bus in ((0, self.bar0), (2, self.bar2)):
            selected = desc.bar_id == bar_id
            m.d.sync += [
                bus.addr.eq(bus_addr),
                bus.w_data.eq(w_data),
                bus.w_be.eq(w_be),
                bus.w_stb.eq(w_stb & selected),
                bus.r_stb.eq(r_stb & selected),
            ]
        m.d.sync += [r_from_bar2.eq(is_bar2), self.function.eq(desc.target_function)]
        r_data = Mux(r_from_bar2, self.bar2.r_data, self.bar0.r_data)

        # ---- write path: payload dwords packed into qword writes ---------------------------
        dw_remaining = Signal(11)
        dw_index = Signal(11)
        held = Signal()
        held_data = Signal(32)
        held_be = Signal(4)
        cur_dw = beat.word_select(lane, 32)
        cur_be = Signal(4)
        m.d.comb += cur_be.eq(Mux(dw_index == 0, first_be,
                                  Mux(dw_remaining == 1, last_be, 0xF)))

        # ---- read path: completions assembled one beat at a time ---------------------------
        rd_next_dw = Signal(addr_bits - 2)    # next dword to read
        rd_left_dw = Signal(11)               # dwords of the request not yet put in a completion
        cpl_left_dw = Signal(11)              # dwords of this completion not yet issued
        bytes_left = Signal(13)               # byte count of the remaining request
        first_cpl = Signal()
        out_beat = Signal(self._data_width)
        out_lane = Signal(range(lanes + 1))
        out_first = Signal()                  # this beat starts a TLP
        out_last = Signal()
        # A read dword on its way: ``asked`` while the bus carries its strobe, ``cap`` in the
        # clock its data returns.
        read_slot = data.StructLayout({"valid": 1, "lane": range(lanes), "half": 1})
        asked = Signal(read_slot)
        cap = Signal(read_slot)
        status = Signal(3)
        locked = Signal()
        cpl_bytes = Signal(13)                # bytes of byte_count this completion carries

        # Byte count and lower address of the whole request (PCIe Base Spec 2.3.1.1).
        fb_lo = _lowest_set(first_be, 4)
        fb_hi = _highest_set(first_be, 4)
        lb_hi = _highest_set(last_be, 4)
        req_bytes = Signal(13)
        with m.If(desc.dword_count == 1):
            m.d.comb += req_bytes.eq(Mux(first_be == 0, 1, fb_hi - fb_lo + 1))
        with m.Else():
            m.d.comb += req_bytes.eq((desc.dword_count << 2) - fb_lo - (3 - lb_hi))
        # Byte Count of a UR completion (PCIe Base Spec 2.2.9): a locked read reports its
        # request's bytes, an AtomicOp its operand size (CAS carries two operands), I/O 4.
        ur_byte_count = Signal(13)
        with m.Switch(req_type):
            with m.Case(ReqType.MEM_READ_LOCKED):
                m.d.comb += ur_byte_count.eq(req_bytes)
            with m.Case(ReqType.MEM_FETCH_ADD, ReqType.MEM_SWAP):
                m.d.comb += ur_byte_count.eq(desc.dword_count << 2)
            with m.Case(ReqType.MEM_CAS):
                m.d.comb += ur_byte_count.eq(desc.dword_count << 1)
            with m.Default():
                m.d.comb += ur_byte_count.eq(4)
        is_mem_read = (req_type == ReqType.MEM_READ)
        # Memory reads (and the locked reads answered UR) report a lower address; others 0.
        reports_address = is_mem_read | locked

        # dwords from rd_next_dw to the next Max_Payload_Size boundary
        to_boundary = Signal(11)
        mps_dw_mask = Signal(9)
        m.d.comb += [
            mps_dw_mask.eq((Const(32, 9) << self.cfg_max_payload) - 1),
            to_boundary.eq((mps_dw_mask & ~rd_next_dw[:9]) + 1),
        ]
        this_cpl_dw = Mux(rd_left_dw < to_boundary, rd_left_dw, to_boundary)

        cc_desc = Signal(CcDescriptor)
        m.d.comb += [
            cc_desc.lower_address.eq(Mux(reports_address,
                                         Cat(Mux(first_cpl, fb_lo, 0), rd_next_dw[:5]),
                                         0)),
            cc_desc.at.eq(desc.at),
            cc_desc.byte_count.eq(bytes_left),
            cc_desc.locked_read_completion.eq(locked),
            cc_desc.dword_count.eq(Mux(status == CplStatus.SC, this_cpl_dw, 0)),
            cc_desc.completion_status.eq(status),
            cc_desc.requester_id.eq(desc.requester_id),
            cc_desc.tag.eq(desc.tag),
            cc_desc.completer_id.eq(desc.target_function),  # function number; bus from the core
            cc_desc.tc.eq(desc.tc),
            cc_desc.attr.eq(desc.attr),
        ]

        # CC beat: data, per-dword keep, and for 512 bits the is_sop/is_eop side band.
        keep = Signal(lanes)
        for i in range(lanes):
            m.d.comb += keep[i].eq(out_lane > i)
        m.d.comb += [
            self.cc.payload.data.eq(out_beat),
            self.cc.payload.keep.eq(keep),
            self.cc.payload.last.eq(out_last),
        ]
        if self._data_width == 512:
            # is_sop[0] (bit 0, pointer 0) and is_eop[0] (bit 6, pointer in bits 11:8)
            m.d.comb += [
                self.cc.payload.user[0].eq(out_first),
                self.cc.payload.user[6].eq(out_last),
                self.cc.payload.user[8:12].eq(Mux(out_last, out_lane - 1, 0)),
            ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cq.ready.eq(1)
                with m.If(self.cq.valid):
                    user = self.cq.payload.user
                    m.d.sync += [
                        desc.eq(cq_desc),
                        first_be.eq(user[0:4]),
                        last_be.eq(user[last_be_lsb:last_be_lsb + 4]),
                        beat.eq(self.cq.payload.data),
                        beat_last.eq(self.cq.payload.last),
                        beat_keep.eq(self.cq.payload.keep),
                        lane.eq(CQ_DESCRIPTOR_DWORDS),
                        dw_index.eq(0),
                        dw_remaining.eq(cq_desc.dword_count),
                        held.eq(0),
                        first_cpl.eq(1),
                        status.eq(CplStatus.SC),
                        locked.eq(0),
                    ]
                    # Offset within the BAR; each BAR decodes only its own size.
                    with m.Switch(cq_desc.bar_id):
                        for bar_id, log2 in self._bar_log2.items():
                            with m.Case(bar_id):
                                m.d.sync += bar_offset_dw.eq(cq_desc.address[:log2 - 2])
                                m.d.sync += rd_next_dw.eq(cq_desc.address[:log2 - 2])
                    known_bar = (cq_desc.bar_id == 0) | (cq_desc.bar_id == 2)
                    # A write that ends in its descriptor beat before its payload does is
                    # dropped before any of it is written.
                    payload_lanes = lanes - CQ_DESCRIPTOR_DWORDS
                    end_lane = Mux(cq_desc.dword_count >= payload_lanes, lanes - 1,
                                   cq_desc.dword_count + (CQ_DESCRIPTOR_DWORDS - 1))
                    truncated = self.cq.payload.last & ~self.cq.payload.keep.bit_select(end_lane, 1)
                    with m.Switch(cq_desc.req_type):
                        with m.Case(ReqType.MEM_WRITE):
                            with m.If(known_bar & ~truncated):
                                m.next = "WRITE"
                            with m.Else():
                                m.next = "DROP"
                        with m.Case(ReqType.MEM_READ):
                            m.d.sync += rd_left_dw.eq(cq_desc.dword_count)
                            with m.If(known_bar):
                                m.next = "READ_DRAIN"
                            with m.Else():
                                m.d.sync += status.eq(CplStatus.UR)
                                m.next = "UR_DRAIN"
                        with m.Case(ReqType.IO_READ, ReqType.IO_WRITE, ReqType.MEM_FETCH_ADD,
                                    ReqType.MEM_SWAP, ReqType.MEM_CAS):
                            m.d.sync += status.eq(CplStatus.UR)
                            m.next = "UR_DRAIN"
                        with m.Case(ReqType.MEM_READ_LOCKED):
                            m.d.sync += [status.eq(CplStatus.UR), locked.eq(1)]
                            m.next = "UR_DRAIN"
                        with m.Default():
                            m.next = "DROP"

            with m.State("WRITE"):
                with m.If(dw_remaining == 0):
                    with m.If(beat_last):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DRAIN"
                with m.Elif(lane == lanes):
                    # Beat used up: take the next one (a TLP that ends early is dropped).
                    with m.If(beat_last):
                        m.d.comb += self.unsupported.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.cq.ready.eq(1)
                        with m.If(self.cq.valid):
                            m.d.sync += [
                                beat.eq(self.cq.payload.data),
                                beat_last.eq(self.cq.payload.last),
                                beat_keep.eq(self.cq.payload.keep),
                                lane.eq(0),
                            ]
                with m.Elif(~beat_keep.bit_select(lane, 1)):
                    # The TLP ended early (tkeep): write nothing more, drop the rest.
                    m.d.comb += self.unsupported.eq(1)
                    with m.If(beat_last):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DRAIN"
                with m.Else():
                    m.d.sync += [
                        lane.eq(lane + 1),
                        dw_index.eq(dw_index + 1),
                        dw_remaining.eq(dw_remaining - 1),
                        bar_offset_dw.eq(bar_offset_dw + 1),
                    ]
                    m.d.comb += bus_addr.eq(bar_offset_dw >> 1)
                    with m.If(~bar_offset_dw[0] & (dw_remaining != 1)):
                        # Low dword of a qword with more to come: hold it for its pair.
                        m.d.sync += [held.eq(1), held_data.eq(cur_dw), held_be.eq(cur_be)]
                    with m.Elif(~bar_offset_dw[0]):
                        m.d.comb += [w_stb.eq(1), w_data.eq(cur_dw), w_be.eq(cur_be)]
                    with m.Else():
                        m.d.comb += [
                            w_stb.eq(1),
                            w_data.eq(Cat(Mux(held, held_data, 0), cur_dw)),
                            w_be.eq(Cat(Mux(held, held_be, 0), cur_be)),
                        ]
                        m.d.sync += held.eq(0)

            with m.State("DRAIN"):
                # Discard beats up to tlast, then go idle.
                m.d.comb += self.cq.ready.eq(1)
                with m.If(self.cq.valid & self.cq.payload.last):
                    m.next = "IDLE"

            with m.State("DROP"):
                m.d.comb += self.unsupported.eq(1)
                with m.If(beat_last):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "DRAIN"

            with m.State("READ_DRAIN"):
                # A read has no payload; a malformed one that does is discarded first.
                with m.If(beat_last):
                    m.d.sync += bytes_left.eq(req_bytes)
                    m.next = "CPL_START"
                with m.Else():
                    m.d.comb += self.cq.ready.eq(1)
                    m.d.sync += beat_last.eq(self.cq.valid & self.cq.payload.last)

            with m.State("UR_DRAIN"):
                with m.If(beat_last):
                    m.d.comb += self.unsupported.eq(1)
                    m.d.sync += [
                        bytes_left.eq(ur_byte_count),
                        rd_left_dw.eq(0),
                    ]
                    m.next = "CPL_START"
                with m.Else():
                    m.d.comb += self.cq.ready.eq(1)
                    m.d.sync += beat_last.eq(self.cq.valid & self.cq.payload.last)

            with m.State("CPL_START"):
                # Header of the next completion into lanes 0-2 of a fresh beat.
                m.d.sync += [
                    out_beat.eq(cc_desc.as_value()),
                    out_lane.eq(CC_DESCRIPTOR_DWORDS),
                    out_first.eq(1),
                    cpl_left_dw.eq(Mux(status == CplStatus.SC, this_cpl_dw, 0)),
                    cpl_bytes.eq((this_cpl_dw << 2) - Mux(first_cpl & reports_address, fb_lo, 0)),
                    asked.valid.eq(0), cap.valid.eq(0),
                ]
                m.next = "CPL_FILL"

            with m.State("CPL_FILL"):
                # Read one dword per clock into the beat; data returns in the next clock.
                issue = (cpl_left_dw != 0) & (out_lane != lanes)
                m.d.comb += [r_stb.eq(issue), bus_addr.eq(rd_next_dw >> 1)]
                m.d.sync += [
                    asked.valid.eq(issue), asked.lane.eq(out_lane), asked.half.eq(rd_next_dw[0]),
                    cap.eq(asked),
                ]
                with m.If(issue):
                    m.d.sync += [
                        rd_next_dw.eq(rd_next_dw + 1),
                        rd_left_dw.eq(rd_left_dw - 1),
                        cpl_left_dw.eq(cpl_left_dw - 1),
                        out_lane.eq(out_lane + 1),
                    ]
                with m.If(cap.valid):
                    m.d.sync += out_beat.word_select(cap.lane, 32).eq(
                        r_data.word_select(cap.half, 32))
                with m.If(~issue & ~asked.valid & ~cap.valid):
                    m.d.sync += out_last.eq(cpl_left_dw == 0)
                    m.next = "CPL_SEND"

            with m.State("CPL_SEND"):
                m.d.comb += self.cc.valid.eq(1)
                with m.If(self.cc.ready):
                    m.d.sync += [out_beat.eq(0), out_lane.eq(0), out_first.eq(0)]
                    with m.If(~out_last):
                        m.next = "CPL_FILL"
                    with m.Elif(rd_left_dw != 0):
                        # Next completion of the same request.
                        m.d.sync += [first_cpl.eq(0), bytes_left.eq(bytes_left - cpl_bytes)]
                        m.next = "CPL_START"
                    with m.Else():
                        m.next = "IDLE"

        return m
