"""Requester Completion parser: RC beats of the hard block in, address-aligned chunks out."""

from functools import reduce
from operator import or_

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..common.axis import axi_stream
from ..config import TUSER_WIDTHS
from .dma_layouts import cpl_chunk_stream
from .layouts import RcDescriptor, RC_DESCRIPTOR_DWORDS


__all__ = ["RcParser"]


# RC tuser fields used here (PG213 "Requester Completion Interface", dword-aligned mode).
# 512 bits: is_sop[3:0] at 64, is_sop<k>_ptr[1:0] at 68 + 2k (in units of 4 dwords).
# 256 bits: is_sop_0 at 32, is_sop_1 at 33 (a second start is always at dword 4).
_SOP_512, _SOP_PTR_512 = 64, 68
_SOP_256 = 32

# Input beats the parser holds: chunk events may queue up for this many beats. Distributed
# RAM is 32 deep at least (RAM32M16), so a shallower buffer would save no LUTs.
_RING_DEPTH = 32

_DESC_BITS = 32 * RC_DESCRIPTOR_DWORDS


def _fragment_layout(lanes):
    """The chunk events one TLP fragment of a beat closes: up to two.

    ``mid``: the chunk of the address window that ends inside the fragment (the completion
    goes on); ``end``: the chunk closed by the completion's last payload dword (or, without
    payload, by its descriptor). ``c_*`` rotate Cat(previous beat, this beat) so that the
    window's dwords come out in address order (``below`` decodes their low bits for the
    merge of the two beats), ``w_*`` are the windows, ``a_lo``/``e_lo`` the lanes of the
    completion's first and last payload dwords in their windows.
    """
    lane_bits = lanes.bit_length() - 1
    return data.StructLayout({
        "mid": 1,
        "end": 1,
        "first_mid": 1,
        "first_end": 1,
        "c_mid": lane_bits + 1,
        "c_end": lane_bits + 1,
        "below": lanes,            # lane i < c mod lanes (c_mid and c_end agree there)
        "w_mid": 10 - lane_bits,
        "w_end": 10 - lane_bits,
        "a_lo": lane_bits,
        "e_lo": lane_bits,
        "empty": 1,
    })


def _segment_layout(lanes):
    """Stage 1: what the descriptor at the start of a segment says, if a TLP starts there."""
    lane_bits = lanes.bit_length() - 1
    return data.StructLayout({
        "desc": RcDescriptor,
        "mid": 1,                  # closes its first window in this beat and goes on
        "end": 1,                  # ends in this beat
        "c_mid": lane_bits + 1,
        "c_end": lane_bits + 1,
        "a_win": 10 - lane_bits,   # window of its first payload dword
        "a_lo": lane_bits,
        "e_lo": lane_bits,
        "empty": 1,
        # If it goes on: its state for the next beat.
        "left": 11,                # payload dwords in later beats
        "next_end": 1,             # it ends in the next beat
        "next_mid": 1,             # the next beat closes a window before its end
        "next_c": lane_bits + 1,   # rotation of its windows in later beats
    })


class RcParser(wiring.Component):
    """Cuts the completions on the hard block's Requester Completion interface into chunks
    aligned to their addresses (PG213 RC interface, dword-aligned mode, ``m_axis_rc_*``).

    Every completion TLP on ``rc`` (a 3-dword descriptor, then ``dword_count`` payload dwords)
    becomes one or more chunks on ``cpl``, one per ``data_width/8``-byte address window its
    payload touches, in address order. The first payload dword is at byte address
    ``lower_address & ~3`` within the 4 KiB page (completions never cross 4 KiB). In a chunk,
    lane *i* of ``data`` holds the dword at ``window_base + 4*i`` and ``keep`` bit *i* says
    whether that dword belongs to the completion (other lanes hold anything); ``window`` is
    the window's address bits 11:log2(data_width/8), incrementing by one per chunk; ``desc``
    is the completion's descriptor on every chunk; ``first``/``last`` mark the completion's
    first and last chunk. A completion without payload (``dword_count`` 0: UR/CA status or an
    error code) is one chunk with ``keep`` 0, ``first`` = ``last`` = 1 and the window of its
    ``lower_address`` (PG213 makes only bits 6:0 of that address meaningful on a completion
    with an error). Completions leave in arrival order; no dword is lost, duplicated or
    reordered. ``cpl`` follows the stream rules: ``valid`` does not wait for ``ready`` and the
    payload holds until taken.

    Framing: with ``straddle`` 0 a TLP starts in lane 0 of the beat after ``tlast``; with 2 or
    4, where the tuser start flags say (``is_sop``/``is_sop_ptr`` at 512 bits; ``is_sop_0``
    and ``is_sop_1`` at 256 bits, ``is_sop_0`` meaning dword 4 while a TLP is in progress). A
    TLP's extent is its descriptor's ``dword_count``; end flags, ``tkeep``, byte enables,
    parity and ``discontinue`` are not used, so the input must be well formed, as the hard
    block delivers it.

    Pipeline: (1) each beat is written to a 32-beat buffer as it is accepted, and what the
    descriptor at each segment start says is registered (per-segment logic only); (2) the
    beat's chunk events are formed with the state of the TLP continuing from the last beat
    and queued, a beat closing no window queuing nothing; (3) one event per clock is picked
    and its two beats read; (4) the chunk is rotated into address order into the ``cpl``
    register. A chunk is on ``cpl`` three clocks after the beat that closes it was accepted
    (taken on the fourth clock edge at the earliest). One chunk leaves per clock while
    ``cpl`` is ready, however the events fall on the beats, and a beat closing no window
    costs no clock. ``rc.ready`` depends on registers only and drops only when the buffer is
    full: when ``cpl`` stalls, or when completions close more chunks than they take beats for
    longer than the buffer absorbs (bursts of tiny completions). So the input rate is kept
    whenever completions close no more chunks than they take beats, as back-to-back aligned
    256-byte completions (4 chunks per 4.25 beats with 4-way straddle) or 64-byte ones (4
    completions per 5 beats) do.

    Members
    -------
    rc : In(axi_stream(data_width, rc tuser width))
        The hard block's RC interface (``m_axis_rc_*``).
    cpl : Out(cpl_chunk_stream(data_width))
        Completion chunks (``CplChunk``).
    """

    def __init__(self, *, data_width, straddle):
        if data_width not in (256, 512):
            raise ValueError(f"data_width must be 256 or 512, not {data_width!r}")
        if straddle not in (0, 2, 4):
            raise ValueError(f"straddle must be 0, 2 or 4 completions per beat, not {straddle!r}")
        if straddle == 4 and data_width != 512:
            raise ValueError("four completions per RC beat (straddle=4) need the 512-bit "
                             "interface")
        self._data_width = data_width
        self._segments = max(1, straddle)
        super().__init__({
            "rc": In(axi_stream(data_width, TUSER_WIDTHS[data_width]["rc"])),
            "cpl": Out(cpl_chunk_stream(data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        L = self._data_width // 32            # dword lanes per beat
        LB = L.bit_length() - 1               # log2(lanes)
        WB = 10 - LB                          # window bits
        S = self._segments                    # TLP starts per beat
        SL = L // S                           # lanes per segment
        D = _RING_DEPTH
        PB = (D - 1).bit_length() + 1         # ring pointer bits (one more than the index)

        seg_layout = _segment_layout(L)
        frag_layout = _fragment_layout(L)
        group_layout = data.StructLayout({
            "slot": PB,
            "desc0": _DESC_BITS,              # descriptor of the beat's first fragment
            "frags": data.ArrayLayout(frag_layout, S),
        })

        rc = self.rc
        beat = rc.payload
        take = Signal()
        m.d.comb += take.eq(rc.valid & rc.ready)

        # ---- beat buffer ---------------------------------------------------------------------
        m.submodules.ring = ring = Memory(shape=32 * L, depth=D, init=[])
        ring_w = ring.write_port()
        ring_cur = ring.read_port(domain="comb")
        ring_prev = ring.read_port(domain="comb")

        wp = Signal(PB)                                # slot of the next beat
        keep_from = Signal(PB, init=(1 << PB) - 1)     # oldest slot still needed
        m.d.comb += [
            rc.ready.eq((wp - keep_from)[:PB] < D),
            ring_w.addr.eq(wp[:PB - 1]),
            ring_w.data.eq(beat.data),
            ring_w.en.eq(take),
        ]
        with m.If(take):
            m.d.sync += wp.eq(wp + 1)

        # ---- stage 1: per segment, what a TLP starting there would close ---------------------
        s1_valid = Signal()
        s1_slot = Signal(PB)
        s1_starts = Signal(S)     # straddle 2 at 256 bits: is_sop_0 and is_sop_1 as they come
        s1_segs = Signal(data.ArrayLayout(seg_layout, S))
        in_tlp = Signal()         # straddle 0: the last beat had no tlast

        m.d.sync += s1_valid.eq(take)
        with m.If(take):
            m.d.sync += s1_slot.eq(wp)
            user = beat.user
            if S == 1:
                m.d.sync += [s1_starts.eq(~in_tlp), in_tlp.eq(~beat.last)]
            elif L == 16:
                for g in range(S):
                    ptr = g * SL // 4
                    hits = [user[_SOP_512 + k]
                            & (user[_SOP_PTR_512 + 2 * k:_SOP_PTR_512 + 2 * k + 2] == ptr)
                            for k in range(S)]
                    m.d.sync += s1_starts[g].eq(reduce(or_, hits))
            else:
                m.d.sync += s1_starts.eq(user[_SOP_256:_SOP_256 + 2])

            for g in range(S):
                s = g * SL                    # lane of the descriptor
                desc = RcDescriptor(beat.data[32 * s:32 * s + _DESC_BITS])
                a = desc.lower_address[2:]    # dword address in the page
                a_lo, a_win = a[:LB], a[LB:]
                n = desc.dword_count
                reach = n + a_lo              # dwords from its first window's base to its end
                first_closed = a_lo >= s + 3  # its first window ends in this beat
                mid = first_closed & (reach > L)
                c_mid = (L + s + 3 - a_lo)[:LB + 1]
                off = (a_lo - (s + 3))[:LB]   # address of lane 0 of its beats, mod lanes
                seg = s1_segs[g]
                m.d.sync += [
                    seg.desc.eq(desc),
                    seg.mid.eq(mid),
                    seg.end.eq(n <= L - 3 - s),
                    seg.c_mid.eq(c_mid),
                    seg.c_end.eq(Cat(c_mid[:LB], c_mid[LB] ^ mid)),
                    seg.a_win.eq(a_win),
                    seg.a_lo.eq(a_lo),
                    seg.e_lo.eq((reach - 1)[:LB]),
                    seg.empty.eq(n == 0),
                    seg.left.eq((n - (L - s - 3))[:11]),
                    seg.next_end.eq(n <= 2 * L - s - 3),
                    seg.next_mid.eq(reach > Mux(first_closed, 2 * L, L)),
                    seg.next_c.eq((L - off)[:LB + 1]),
                ]

        # ---- stage 2: chunk events of the beat, with the TLP continuing from the last beat -----
        open_ = Signal()          # a TLP continues into the next beat (by its dword count)
        cont_desc = Signal(_DESC_BITS)
        cont_left = Signal(11)    # its payload dwords still to come
        cont_end = Signal()       # ... it ends in the coming beat
        cont_mid = Signal()       # ... the coming beat closes a window before its end
        cont_c = Signal(LB + 1)   # rotation of its windows (lanes from lane 0 to its window base)
        cont_win = Signal(WB)     # window of lane 0 of the coming beat
        cont_first = Signal()     # none of its chunks is out yet
        cont_a_lo = Signal(LB)
        cont_e_lo = Signal(LB)

        starts = Signal(S)
        if S == 2 and L == 8:
            sop0, sop1 = s1_starts[0], s1_starts[1]
            m.d.comb += [
                starts[0].eq(sop0 & ~open_),
                starts[1].eq(sop1 | (sop0 & open_)),
            ]
        else:
            m.d.comb += starts.eq(s1_starts)
        cont_active = open_ & ~starts[0]

        cont = Signal(frag_layout)
        m.d.comb += [
            cont.mid.eq(cont_mid),
            cont.end.eq(cont_end),
            cont.first_mid.eq(cont_first),
            cont.first_end.eq(cont_first & ~cont_mid),
            cont.c_mid.eq(cont_c),
            cont.c_end.eq(Cat(cont_c[:LB], cont_c[LB] ^ cont_mid)),
            cont.below.eq(Cat(*(i < cont_c[:LB] for i in range(L)))),
            cont.w_mid.eq(cont_win),
            cont.w_end.eq((cont_win + cont_mid)[:WB]),
            cont.a_lo.eq(cont_a_lo),
            cont.e_lo.eq(cont_e_lo),
            cont.empty.eq(0),
        ]

        group = Signal(group_layout)
        m.d.comb += [
            group.slot.eq(s1_slot),
            group.desc0.eq(Mux(starts[0], s1_segs[0].desc.as_value(), cont_desc)),
        ]
        for g in range(S):
            seg = s1_segs[g]
            f = Signal(frag_layout, name=f"start{g}")
            m.d.comb += [
                f.mid.eq(starts[g] & seg.mid),
                f.end.eq(starts[g] & seg.end),
                f.first_mid.eq(1),
                f.first_end.eq(~seg.mid),
                f.c_mid.eq(seg.c_mid),
                f.c_end.eq(seg.c_end),
                f.below.eq(Cat(*(i < seg.c_mid[:LB] for i in range(L)))),
                f.w_mid.eq(seg.a_win),
                f.w_end.eq((seg.a_win + seg.mid)[:WB]),
                f.a_lo.eq(seg.a_lo),
                f.e_lo.eq(seg.e_lo),
                f.empty.eq(seg.empty),
            ]
            if g == 0:
                m.d.comb += group.frags[0].eq(Mux(starts[0], f.as_value(), cont.as_value()))
                m.d.comb += [
                    group.frags[0].mid.eq(Mux(starts[0], f.mid, cont_active & cont.mid)),
                    group.frags[0].end.eq(Mux(starts[0], f.end, cont_active & cont.end)),
                ]
            else:
                m.d.comb += group.frags[g].eq(f)
        has_events = Signal()
        m.d.comb += has_events.eq(s1_valid & Cat(*(Cat(group.frags[g].mid, group.frags[g].end)
                                                   for g in range(S))).any())

        # State of the beat's last TLP, if it goes on.
        with m.If(s1_valid):
            with m.If(starts.any()):
                for g in range(S):
                    # Later segments win: only the beat's last TLP can go on.
                    with m.If(starts[g]):
                        seg = s1_segs[g]
                        m.d.sync += [
                            open_.eq(~seg.end),
                            cont_desc.eq(seg.desc),
                            cont_left.eq(seg.left),
                            cont_end.eq(seg.next_end),
                            cont_mid.eq(seg.next_mid),
                            cont_c.eq(seg.next_c),
                            cont_win.eq((seg.a_win + seg.mid)[:WB]),
                            cont_first.eq(~seg.mid),
                            cont_a_lo.eq(seg.a_lo),
                            cont_e_lo.eq(seg.e_lo),
                        ]
            with m.Elif(cont_active):
                m.d.sync += [
                    open_.eq(~cont_end),
                    cont_left.eq(cont_left - L),
                    cont_end.eq(cont_left <= 2 * L),
                    cont_mid.eq(cont_c + L < cont_left),
                    cont_win.eq(cont_win + 1),
                    cont_first.eq(cont_first & ~cont_mid),
                ]

        # ---- event queue: the group being worked on in ``head``, later ones in a FIFO ----------
        m.submodules.groups = groups = SyncFIFO(width=group_layout.size, depth=D)
        head = Signal(group_layout)
        head_valid = Signal()
        remaining = Signal(2 * S)     # events of ``head`` not picked yet

        def event_bits(grp):
            return Cat(*(Cat(grp.frags[g].mid, grp.frags[g].end) for g in range(S)))

        pick = Signal(2 * S)          # lowest remaining event, one-hot
        for k in range(2 * S):
            m.d.comb += pick[k].eq(remaining[k] & ~remaining[:k].any() if k else remaining[0])
        head_done = ~(remaining & ~pick).any()

        ev_valid = Signal()
        out_take = Signal()
        ev_load = Signal()
        head_next = Signal()      # ``head`` is free for the next group at the clock edge
        m.d.comb += [
            ev_load.eq(head_valid & (~ev_valid | out_take)),
            head_next.eq(~head_valid | (ev_load & head_done)),
            groups.r_en.eq(head_next),
            groups.w_data.eq(group.as_value()),
            # A new group bypasses the FIFO when nothing is queued before it.
            groups.w_en.eq(has_events & ~(head_next & ~groups.r_rdy)),
        ]
        fifo_head = data.View(group_layout, groups.r_data)
        with m.If(head_next):
            with m.If(groups.r_rdy):
                m.d.sync += [head.eq(fifo_head), head_valid.eq(1),
                             remaining.eq(event_bits(fifo_head))]
            with m.Else():
                m.d.sync += [head.eq(group), head_valid.eq(has_events),
                             remaining.eq(event_bits(group))]
        with m.Elif(ev_load):
            m.d.sync += remaining.eq(remaining & ~pick)

        # ---- stage 3: the event and its two beats -------------------------------------------
        ev = Signal(data.StructLayout({
            "cur": 32 * L,
            "prev": 32 * L,
            "frag": range(max(2, S)),
            "desc0": _DESC_BITS,
            "c": LB + 1,
            "below": L,
            "window": WB,
            "first": 1,
            "last": 1,
            "a_lo": LB,
            "e_lo": LB,
            "empty": 1,
        }))

        def select(values):
            return reduce(or_, (Mux(pick[k], v, 0) for k, v in enumerate(values)))

        hf = [head.frags[g] for g in range(S)]
        m.d.comb += [
            ring_cur.addr.eq(head.slot[:PB - 1]),
            ring_prev.addr.eq((head.slot - 1)[:PB - 1]),
        ]
        with m.If(ev_load):
            m.d.sync += [
                ev_valid.eq(1),
                ev.cur.eq(ring_cur.data),
                ev.prev.eq(ring_prev.data),
                ev.desc0.eq(head.desc0),
                ev.frag.eq(select([g for g in range(S) for _ in range(2)])),
                ev.c.eq(select([c for f in hf for c in (f.c_mid, f.c_end)])),
                ev.below.eq(select([f.below for f in hf for _ in range(2)])),
                ev.window.eq(select([w for f in hf for w in (f.w_mid, f.w_end)])),
                ev.first.eq(select([x for f in hf for x in (f.first_mid, f.first_end)])),
                ev.last.eq(select([k & 1 for k in range(2 * S)])),
                ev.a_lo.eq(select([f.a_lo for f in hf for _ in range(2)])),
                ev.e_lo.eq(select([f.e_lo for f in hf for _ in range(2)])),
                ev.empty.eq(select([x for f in hf for x in (0, f.empty)])),
                keep_from.eq(head.slot - 1),
            ]
        with m.Elif(out_take | ~ev_valid):
            # No event to load, so nothing is queued: keep only the newest beat (and the one
            # before the beat in stage 1, whose events may still come) as a previous beat.
            m.d.sync += [ev_valid.eq(0), keep_from.eq(wp - 1 - s1_valid)]

        # ---- stage 4: the chunk, in address order ---------------------------------------------
        # Lane i of the chunk is lane (i + c) mod 2L of Cat(prev, cur). Those 2L lanes hold every
        # residue mod L once in the window, so first merge prev and cur lane by lane, then rotate.
        # Each step is a signal of its own: an expression used in several places would be
        # written out once per use.
        c_lo, c_hi = ev.c[:LB], ev.c[LB]
        merged = Signal(32 * L)
        m.d.comb += merged.eq(Cat(*(Mux(ev.below[i] ^ c_hi, ev.cur[32 * i:32 * i + 32],
                                        ev.prev[32 * i:32 * i + 32]) for i in range(L))))
        # Rotate right by c_lo lanes, two select bits (a 4:1 mux) per step.
        chunk_data = merged
        for b in range(0, LB, 2):
            options = [Cat(chunk_data[32 * (k << b):], chunk_data[:32 * (k << b)])
                       for k in range(1 << min(2, LB - b))]
            sel = c_lo[b:b + 2]
            step = options[0]
            for k in range(1, len(options)):
                step = Mux(sel == k, options[k], step)
            rotated = Signal(32 * L, name=f"rotated_{b}")
            m.d.comb += rotated.eq(step)
            chunk_data = rotated

        lo, hi = Signal(LB), Signal(LB)
        m.d.comb += [lo.eq(Mux(ev.first, ev.a_lo, 0)), hi.eq(Mux(ev.last, ev.e_lo, L - 1))]
        keep = Cat(*((i >= lo) & (i <= hi) for i in range(L)))

        chunk_desc = ev.desc0
        for g in range(1, S):
            chunk_desc = Mux(ev.frag == g, ev.cur[32 * g * SL:32 * g * SL + _DESC_BITS],
                             chunk_desc)

        cpl = self.cpl
        m.d.comb += out_take.eq(ev_valid & (~cpl.valid | cpl.ready))
        with m.If(out_take):
            m.d.sync += [
                cpl.valid.eq(1),
                cpl.payload.desc.eq(chunk_desc),
                cpl.payload.data.eq(chunk_data),
                cpl.payload.keep.eq(Mux(ev.empty, 0, keep)),
                cpl.payload.window.eq(ev.window),
                cpl.payload.first.eq(ev.first),
                cpl.payload.last.eq(ev.last),
            ]
        with m.Elif(cpl.ready):
            m.d.sync += cpl.valid.eq(0)

        return m
