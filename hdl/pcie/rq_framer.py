"""RQ framer: requester TLPs onto the UltraScale+ PCIe Requester Request interface (PG213)."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.axis import axi_stream
from ..config import TUSER_WIDTHS
from .dma_layouts import rq_tlp_stream
from .layouts import RQ_DESCRIPTOR_DWORDS


__all__ = ["RqFramer", "RQ_TUSER_512", "RQ_TUSER_256"]


# s_axis_rq_tuser fields (PG213 "Requester Request Interface", dword-aligned mode): LSB, width.
RQ_TUSER_512 = {
    "first_be": (0, 8),        # [3:0] first TLP starting in the beat, [7:4] second
    "last_be": (8, 8),
    "addr_offset": (16, 4),    # address-aligned mode only: 0
    "is_sop": (20, 2),
    "is_sop0_ptr": (22, 2),    # 0: dword 0, 2: dword 8
    "is_sop1_ptr": (24, 2),
    "is_eop": (26, 2),
    "is_eop0_ptr": (28, 4),    # last dword of the first TLP ending in the beat
    "is_eop1_ptr": (32, 4),
    "discontinue": (36, 1),
    "tph": (37, 24),           # tph_present, tph_type, tph_indirect_tag_en, tph_st_tag: 0
    "seq_num0": (61, 6),
    "seq_num1": (67, 6),
    "parity": (73, 64),
}
RQ_TUSER_256 = {
    "first_be": (0, 4),
    "last_be": (4, 4),
    "addr_offset": (8, 3),
    "discontinue": (11, 1),
    "tph": (12, 12),
    "seq_num_lo": (24, 4),     # seq_num[3:0]
    "parity": (28, 32),
    "seq_num_hi": (60, 2),     # seq_num[5:4]
}

_DESC = RQ_DESCRIPTOR_DWORDS   # dwords of descriptor in front of the payload
_HALF = 8                      # with straddle, the second TLP of a beat starts at dword 8
_DEPTH = 32                    # buffered beats behind the two-beat window


class _Entry(data.StructLayout):
    """A buffered input beat: what the framer needs of an ``RqTlpBeat``."""

    def __init__(self, data_width):
        lanes = data_width // 32
        super().__init__({
            "data": data_width,
            "desc": 32 * _DESC,
            "first_be": 4,
            "last_be": 4,
            "seq_num": 6,
            "n": range(lanes + 1),     # payload dwords in the beat
            "fit_lo": 1,               # n <= lanes - 4: fits after a descriptor at dword 0
            "fit_hi": 1,               # n <= 4: fits after a descriptor at dword 8
            "last": 1,
        })


class RqFramer(wiring.Component):
    """Puts requester TLPs on the hard block's RQ interface (PG213, dword-aligned).

    Input contract (``RqTlpBeat``): a TLP is the beats from ``first`` to ``last``; ``desc``,
    ``first_be``, ``last_be`` and ``seq_num`` are taken from its first beat; ``data`` carries
    payload dwords packed from lane 0, the ones ``keep`` marks (all lanes on every beat but the
    last, which has its dwords from lane 0 up). A read request is one beat with ``keep`` 0.
    The framer delimits TLPs by ``last`` (the beat after a ``last`` starts the next TLP).

    Output: each TLP leaves as its 4-dword descriptor followed by its payload dwords. ``tkeep``
    marks the dwords of the beat that belong to a TLP. ``first_be``, ``last_be`` and
    ``seq_num`` go in the tuser fields of the TLP's slot (the first or second TLP starting in the
    beat); at 512 bits ``is_sop``/``is_sop_ptr``/``is_eop``/``is_eop_ptr`` are set (also
    without straddle). ``tlast`` marks the beat where a TLP ends; with straddle (where the hard
    block ignores it) it marks the beats where no TLP continues into the next beat.
    ``discontinue``, TPH, ``addr_offset`` and parity are 0.

    Without straddle every TLP starts at dword 0 of a new beat. With ``straddle`` (512 bits) a
    TLP starts at dword 8 of a beat when the TLP before it ends in dwords 0 to 7 of that beat
    and it has been received completely, so two read requests share a beat and back-to-back
    256-byte writes take 4.5 beats each instead of 5.

    The hard block nullifies a TLP whose ``tvalid`` drops before its last beat (PG213,
    "Requester Memory Write Operation"), so a TLP is sent only once its last beat has arrived
    (store and forward; a read request is a single beat, so it is never held for this). The
    input may pause anywhere in a TLP; ``rq.valid`` never drops inside one. The buffer holds
    34 beats (32 in LUT RAM, 2 in registers), more than a 1024-byte write at 256 bits
    (32 beats); a longer TLP is started once the buffer is full and is then cut through, so
    pauses of the input inside it would reach RQ.

    Timing (clock *t* is the one in which the input beat is transferred): a TLP whose last
    beat is accepted in clock *t* is on RQ (``rq.valid`` high with it) in clock *t* + 2 when
    the framer is idle, *t* + 1 when it goes in slot 2 next to another TLP. RQ is never idle in
    a clock while a TLP received by clock *t* - 2 waits: the next TLP starts in the clock after
    the previous one's last beat. With straddle, a single-beat TLP (a read request) arriving
    while the TLP before it ends in dwords 0 to 7 joins that beat, so a stream of read requests
    leaves two per beat; a multi-beat TLP joins it only if it is complete by then, which a
    waiting backlog always is (when writes stream in exactly as fast as RQ takes them, a write
    still arriving starts in the next beat: RQ then runs at the input's rate either way).
    ``tlp.ready`` is a register, low only while the buffer is full. ``rq.valid`` does not wait
    for ``rq.ready``; a beat stays unchanged until it is transferred. The RQ beat is
    registered.

    Members
    -------
    tlp : In(rq_tlp_stream(data_width))
        Requester TLP beats from the DMA engines.
    rq : Out(axi_stream(data_width, rq_user_width))
        To the hard block's ``s_axis_rq_*`` (tuser: 137 bits at 512, 62 at 256).
    """

    def __init__(self, *, data_width, straddle):
        if data_width not in (256, 512):
            raise ValueError(f"data_width must be 256 or 512, not {data_width}")
        if straddle and data_width != 512:
            raise ValueError("RQ straddle needs the 512-bit interface (PG213: two TLPs per beat "
                             f"only at 512 bits), not {data_width}")
        self._w = data_width
        self._straddle = bool(straddle)
        self._user_width = TUSER_WIDTHS[data_width]["rq"]
        super().__init__({
            "tlp": In(rq_tlp_stream(data_width)),
            "rq": Out(axi_stream(data_width, self._user_width)),
        })

    @property
    def data_width(self):
        return self._w

    @property
    def straddle(self):
        return self._straddle

    def elaborate(self, platform):
        m = Module()
        w = self._w
        lanes = w // 32
        straddle = self._straddle
        entry = _Entry(w)
        # Payload dwords a TLP carries into its next beat: its shift (4, or 12 from dword 8).
        carry_lanes = lanes - _DESC if straddle else _DESC
        room_lo = lanes - _DESC             # payload dwords in a beat that starts at dword 0
        room_hi = lanes - _DESC - _HALF     # ... that starts at dword 8 (4)

        def dw(value, i):
            return value[32 * i:32 * (i + 1)]

        # ---- buffer: two registered window slots, then a FIFO in two banks -----------------
        # Beats are numbered as they arrive; beat g lives in window slot g % 2 or at row g // 2
        # of bank g % 2. The window holds the oldest beats (w0 then w1, at most two), the
        # memory the ones after them: the memory holds beats only when both slots are full,
        # so the packer always finds the next beats in w0 and w1. A slot is refilled only from
        # its own bank or the input, so no entry is ever moved from one slot to the other.
        half_depth = _DEPTH // 2
        m.submodules.bank0 = bank0 = Memory(shape=entry, depth=half_depth, init=[])
        m.submodules.bank1 = bank1 = Memory(shape=entry, depth=half_depth, init=[])
        wp = [bank0.write_port(), bank1.write_port()]
        rp = [bank0.read_port(domain="comb"), bank1.read_port(domain="comb")]

        rd = Signal(range(_DEPTH))          # number of the oldest beat not in the window
        wr = Signal(range(_DEPTH))          # number of the next input beat
        mn = Signal(range(_DEPTH + 1))      # beats in memory
        slot = [Signal(entry, name="slot0"), Signal(entry, name="slot1")]
        slot_v = Signal(2)
        head = Signal()                     # slot of the oldest beat (w0)
        w0 = Signal(entry)
        w1 = Signal(entry)
        w0v = Signal()
        w1v = Signal()                      # implies w0v
        m.d.comb += [
            w0.eq(Mux(head, slot[1], slot[0])),
            w1.eq(Mux(head, slot[0], slot[1])),
            w0v.eq(Mux(head, slot_v[1], slot_v[0])),
            w1v.eq(Mux(head, slot_v[0], slot_v[1])),
        ]
        cc = Signal(range(_DEPTH + 3))      # last beats in window and memory: complete TLPs
        in_ready = Signal(init=1)

        rd_plus1 = Signal(range(_DEPTH))
        m.d.comb += [
            rd_plus1.eq(rd + 1),
            rp[0].addr.eq(rd_plus1[1:]),     # bank 0 holds rd (even rd) or rd + 1 (odd rd)
            rp[1].addr.eq(rd[1:]),
        ]

        mn0 = Signal()
        mn1 = Signal()
        mn_full = Signal()
        mn_almost = Signal()
        cc1 = Signal()
        cc2 = Signal()
        m.d.comb += [
            mn0.eq(mn == 0),
            mn1.eq(mn == 1),
            mn_full.eq(mn == _DEPTH),
            mn_almost.eq(mn == _DEPTH - 1),
            cc1.eq(cc != 0),
            cc2.eq(cc >= 2),
        ]

        # The beat on the input, as an entry.
        live = Signal(entry)
        live_n = Signal(range(lanes + 1))   # not read back from ``live``: no false loop
        p = self.tlp.payload
        m.d.comb += [
            live_n.eq(sum(p.keep[i] for i in range(lanes))),
            live.data.eq(p.data),
            live.desc.eq(p.desc.as_value()),
            live.first_be.eq(p.first_be),
            live.last_be.eq(p.last_be),
            live.seq_num.eq(p.seq_num),
            live.n.eq(live_n),
            live.fit_lo.eq(live_n <= room_lo),
            live.fit_hi.eq(live_n <= room_hi),
            live.last.eq(p.last),
            self.tlp.ready.eq(in_ready),
        ]

        # ---- packer state ----------------------------------------------------------------------
        busy = Signal()                   # a TLP has started on RQ and not ended
        more = Signal()                   # ... and has input beats left (else a tail is due)
        hi = Signal()                     # ... and started at dword 8: payload shifted by 12
        tail_n = Signal(range(carry_lanes + 1))
        carry = Signal(32 * carry_lanes)  # payload dwords already taken, at their output lanes

        o_valid = Signal()
        o = Signal(self.rq.payload.shape())   # the RQ beat register
        m.d.comb += [
            self.rq.valid.eq(o_valid),
            self.rq.payload.eq(o),
        ]

        # ---- slot 1: the TLP at dword 0 (a tail, the next beat of one, or a new one) --------
        s1_tail = Signal()
        s1_mid = Signal()
        s1_start = Signal()
        m.d.comb += [
            s1_tail.eq(busy & ~more),
            s1_mid.eq(busy & more & w0v),
            # Store and forward: a TLP starts once its last beat is in (or the buffer is full).
            s1_start.eq(~busy & w0v & (cc1 | mn_full)),
        ]
        s1_any = Signal()
        eat0 = Signal()                   # slot 1 takes w0
        m.d.comb += [
            s1_any.eq(s1_tail | s1_mid | s1_start),
            eat0.eq(s1_mid | s1_start),
        ]
        shift12 = Signal()                # slot 1's payload sits 12 dwords up (started at 8)
        if straddle:
            m.d.comb += shift12.eq(busy & more & hi)
        w0_fits = Signal()                # w0 is its TLP's last beat and ends in this beat
        m.d.comb += w0_fits.eq(w0.last & Mux(shift12, w0.fit_hi, w0.fit_lo))
        s1_ends = Signal()
        end1 = Signal(range(lanes))
        m.d.comb += [
            s1_ends.eq(s1_tail | (eat0 & w0_fits)),
            end1.eq(Mux(s1_tail, tail_n - 1,
                        Mux(shift12, _DESC + _HALF, _DESC) + w0.n - 1)),
        ]

        go = Signal()                     # a beat goes into the RQ register
        m.d.comb += go.eq((~o_valid | self.rq.ready) & s1_any)

        # ---- slot 2 (straddle): a TLP starting at dword 8 -----------------------------------
        s2 = Signal()
        x = Signal(entry)
        x_w0 = Signal()                   # slot 2 takes w0 (after a tail)
        x_w1 = Signal()                   # slot 2 takes w1 (after slot 1 took w0)
        x_live = Signal()                 # slot 2 takes the input beat
        open_tail = Signal()
        open_eat = Signal()
        x_ends = Signal()
        end2 = Signal(range(lanes))
        if straddle:
            # Slot 1 ends in dwords 0-7: a tail of up to 8 dwords, or a TLP started at dword 0
            # with at most 4 payload dwords in this beat.
            m.d.comb += [
                open_tail.eq(s1_tail & (tail_n <= _HALF)),
                open_eat.eq(eat0 & w0.last & ~shift12 & w0.fit_hi),
            ]
            # The next TLP must be complete: w0 after a tail, w1 after slot 1 took w0. If the
            # window has no such beat the buffer is empty, and a single-beat TLP arriving now
            # can go (in_ready is high then).
            live_single = self.tlp.valid & p.last
            m.d.comb += [
                x_w0.eq(s1_tail & w0v & (cc1 | mn_full)),
                x_w1.eq(eat0 & w1v & (w1.last | cc2)),
                x_live.eq(live_single & Mux(s1_tail, ~w0v, eat0 & ~w1v)),
                s2.eq((open_tail & (x_w0 | x_live)) | (open_eat & (x_w1 | x_live))),
                # w0 or w1 named by its slot: one choice of three, not two chained.
                x.eq(Mux((x_w0 & ~head) | (x_w1 & head), slot[0],
                         Mux(x_w0 | x_w1, slot[1], live))),
                x_ends.eq(x.last & x.fit_hi),
                end2.eq(_HALF + _DESC + x.n - 1),
            ]

        # ---- the beat ----------------------------------------------------------------------
        beat_data = [Signal(32, name=f"lane{j}") for j in range(lanes)]
        for j in range(lanes):
            if j < _DESC:
                v = Mux(s1_start, dw(w0.desc, j), dw(carry, j))
            elif j < carry_lanes:
                v = Mux(s1_tail | shift12, dw(carry, j), dw(w0.data, j - _DESC))
            else:
                v = dw(w0.data, j - _DESC)
            if straddle:
                if j >= _HALF + _DESC:
                    v = Mux(shift12, dw(w0.data, j - _DESC - _HALF), v)
                if j >= _HALF:
                    xv = (dw(x.desc, j - _HALF) if j < _HALF + _DESC
                          else dw(x.data, j - _HALF - _DESC))
                    v = Mux(s2, xv, v)
            m.d.comb += beat_data[j].eq(v)

        keep = Signal(lanes)
        for j in range(lanes):
            used = ~s1_ends | (end1 >= j)
            if straddle and j >= _HALF:
                used = used | (s2 & (~x_ends | (end2 >= j)))
            m.d.comb += keep[j].eq(used)

        user = Signal(self._user_width)
        last = Signal()
        if w == 512:
            sop_a = s1_start
            sop_b = s2
            one = sop_a | sop_b
            two = sop_a & sop_b
            fields = {
                "first_be": Cat(Mux(sop_a, w0.first_be, x.first_be) & one.replicate(4),
                                x.first_be & two.replicate(4)),
                "last_be": Cat(Mux(sop_a, w0.last_be, x.last_be) & one.replicate(4),
                               x.last_be & two.replicate(4)),
                "is_sop": Cat(one, two),
                "is_sop0_ptr": Mux(~sop_a & sop_b, 2, 0),
                "is_sop1_ptr": Mux(two, 2, 0),
                "is_eop": Cat(s1_ends, s2 & x_ends),
                "is_eop0_ptr": Mux(s1_ends, end1, 0),
                "is_eop1_ptr": Mux(s2 & x_ends, end2, 0),
                "seq_num0": Mux(sop_a, w0.seq_num, x.seq_num) & one.replicate(6),
                "seq_num1": x.seq_num & two.replicate(6),
            }
            layout = RQ_TUSER_512
            m.d.comb += last.eq(Mux(s2, x_ends, s1_ends))
        else:
            seq = Mux(s1_start, w0.seq_num, 0)
            fields = {
                "first_be": Mux(s1_start, w0.first_be, 0),
                "last_be": Mux(s1_start, w0.last_be, 0),
                "seq_num_lo": seq[:4],
                "seq_num_hi": seq[4:],
            }
            layout = RQ_TUSER_256
            m.d.comb += last.eq(s1_ends)
        for name, value in fields.items():
            lsb, width = layout[name]
            m.d.comb += user[lsb:lsb + width].eq(value)

        with m.If(~o_valid | self.rq.ready):
            m.d.sync += o_valid.eq(s1_any)
        with m.If(go):
            m.d.sync += [
                o.data.eq(Cat(*beat_data)),
                o.keep.eq(keep),
                o.last.eq(last),
                o.user.eq(user),
            ]

        # ---- packer state update -----------------------------------------------------------
        with m.If(go):
            with m.If(s2):
                with m.If(x_ends):
                    m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += [
                        busy.eq(1),
                        hi.eq(1),
                        more.eq(~x.last),
                        tail_n.eq(x.n - room_hi),
                        carry.eq(x.data[32 * room_hi:]),
                    ]
            with m.Elif(s1_ends):
                m.d.sync += busy.eq(0)
            with m.Else():
                # Slot 1 took w0 and its TLP goes on: keep the dwords that did not fit.
                m.d.sync += [
                    busy.eq(1),
                    hi.eq(shift12),
                    more.eq(~w0.last),
                    tail_n.eq(w0.n - Mux(shift12, room_hi, room_lo)),
                ]
                if straddle:
                    m.d.sync += carry.eq(Mux(shift12, w0.data[32 * room_hi:],
                                             w0.data[32 * room_lo:]))
                else:
                    m.d.sync += carry.eq(w0.data[32 * room_lo:])

        # ---- window and memory update ------------------------------------------------------
        c0 = Signal()                     # w0 consumed
        c1 = Signal()                     # w1 consumed too
        live_taken = Signal()             # the input beat went straight into slot 2
        m.d.comb += [
            c0.eq(go & (eat0 | (open_tail & x_w0))),
            c1.eq(go & open_eat & x_w1),
            live_taken.eq(go & (open_tail | open_eat) & x_live),
        ]
        # Window entries left after this clock's consumption: 2, 1 or 0.
        rem2 = Signal()
        rem1 = Signal()
        m.d.comb += [
            rem2.eq(w1v & ~c0),
            rem1.eq((w1v & c0 & ~c1) | (w0v & ~w1v & ~c0)),
        ]
        rem0 = ~rem2 & ~rem1
        live_in = Signal()                # the input beat goes into the buffer
        live_to_win = Signal()
        live_to_mem = Signal()
        m.d.comb += [
            live_in.eq(self.tlp.valid & in_ready & ~live_taken),
            # Into the window when the memory is emptied by the refill and a slot is free.
            live_to_win.eq(live_in & ((mn0 & ~rem2) | (mn1 & rem0))),
            live_to_mem.eq(live_in & ~live_to_win),
        ]
        refill1 = Signal()                # one entry moves from memory to the window
        refill2 = Signal()                # two entries do
        m.d.comb += [
            refill1.eq((rem1 & ~mn0) | (rem0 & mn1)),
            refill2.eq(rem0 & ~mn0 & ~mn1),
        ]
        # Slot b is free after this clock's consumption, and beat rd or rd + 1 (the one of its
        # parity) comes from memory if the memory holds it, else from the input.
        consumed = Signal(2)
        m.d.comb += consumed.eq(Mux(head, Cat(c1, c0), Cat(c0, c1)))
        for b in range(2):
            own_first = rd[0] == b                   # beat rd is slot b's
            from_mem = Signal(name=f"slot{b}_from_mem")
            from_live = Signal(name=f"slot{b}_from_live")
            free = ~slot_v[b] | consumed[b]
            m.d.comb += [
                from_mem.eq(free & Mux(own_first, ~mn0, ~mn0 & ~mn1)),
                from_live.eq(live_to_win & (wr[0] == b)),
            ]
            with m.If(from_mem | from_live):
                m.d.sync += slot[b].eq(Mux(from_mem, rp[b].data, live))
            m.d.sync += slot_v[b].eq((slot_v[b] & ~consumed[b]) | from_mem | from_live)
        m.d.sync += head.eq(head ^ c0 ^ c1)

        for b in range(2):
            m.d.comb += [
                wp[b].addr.eq(wr[1:]),
                wp[b].data.eq(live),
                wp[b].en.eq(live_to_mem & (wr[0] == b)),
            ]
        refill = Cat(refill1, refill2)
        refill_any = refill1 | refill2
        m.d.sync += [
            rd.eq(rd + refill + live_to_win),
            wr.eq(wr + live_in),
            mn.eq(mn - refill + live_to_mem),
            # Full next clock: it is full and nothing leaves, or one slot is left and it fills.
            in_ready.eq(~((mn_full | (mn_almost & live_to_mem)) & ~refill_any)),
            cc.eq(cc + (live_in & live.last) - (c0 & w0.last) - (c1 & w1.last)),
        ]
        return m
