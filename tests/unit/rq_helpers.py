"""Test helpers for the RQ framer: requester TLPs, their input beats, an RQ decoder and the
timing checks.

Bit positions of the RQ descriptor and of ``s_axis_rq_tuser`` come from PG213 (UltraScale+
PCIe, dword-aligned) as cocotbext-pcie 0.2.16 packs and unpacks them
(``cocotbext/pcie/xilinx/us/interface.py`` classes ``RqSource``/``RqSink``, ``tlp.py``
``pack_us_rq``/``unpack_us_rq``). The decoder cuts beats into frames with the algorithm of
``RqSink._run`` for one segment (``tkeep``/``tlast``) and two segments (``is_sop``/``is_eop``),
then ``Tlp_us.unpack_us_rq`` reads the frames. Nothing here imports ``hdl.pcie.rq_framer``;
the input beats are packed with the input contract's layout (``RqTlpBeat``), which the framer
shares with the DMA engines.
"""

import random
from dataclasses import dataclass, field

from cocotbext.pcie.xilinx.us.interface import UsPcieFrame
from cocotbext.pcie.xilinx.us.tlp import Tlp_us

from hdl.pcie.dma_layouts import RqTlpBeat

from .pcie_helpers import new_sim, run


__all__ = ["MEM_READ", "MEM_WRITE", "RQ_TUSER", "RqTlp", "rq_descriptor", "random_read",
           "random_write", "input_beats", "RqBench", "decode_rq", "ideal_beat_count"]


MEM_READ = 0b0000
MEM_WRITE = 0b0001

# s_axis_rq_tuser (PG213 "Requester Request Interface" tuser tables).
RQ_TUSER = {
    512: dict(first_be=0, last_be=8, is_sop=20, sop0_ptr=22, sop1_ptr=24, is_eop=26,
              eop0_ptr=28, eop1_ptr=32, discontinue=36, seq_num0=61, seq_num1=67,
              parity=73, width=137),
    256: dict(first_be=0, last_be=4, discontinue=11, seq_lo=24, parity=28, seq_hi=60,
              width=62),
}


def _bits(value, lsb, width):
    return (value >> lsb) & ((1 << width) - 1)


def rq_descriptor(*, req_type, address, dword_count, requester_id=0, tag=0, completer_id=0,
                  requester_id_enable=0, tc=0, attr=0, at=0, poisoned=0, force_ecrc=0):
    """The four RQ descriptor dwords (PG213 "Requester Request Descriptor Format")."""
    return [
        (at & 0x3) | (address & 0xFFFF_FFFC),
        (address >> 32) & 0xFFFF_FFFF,
        (dword_count & 0x7FF) | (req_type & 0xF) << 11 | (poisoned & 1) << 15
        | (requester_id & 0xFFFF) << 16,
        (tag & 0xFF) | (completer_id & 0xFFFF) << 8 | (requester_id_enable & 1) << 24
        | (tc & 0x7) << 25 | (attr & 0x7) << 28 | (force_ecrc & 1) << 31,
    ]


@dataclass
class RqTlp:
    fields: dict          # descriptor fields as given to rq_descriptor
    first_be: int
    last_be: int
    seq_num: int
    payload: list = field(default_factory=list)

    @property
    def desc(self):
        return rq_descriptor(**self.fields)

    @property
    def dwords(self):
        return 4 + len(self.payload)

    def __repr__(self):
        kind = "read" if not self.payload else f"write {len(self.payload)} dw"
        return f"<{kind} tag={self.fields['tag']:#x} seq={self.seq_num}>"


def _ids(rng):
    return dict(requester_id=rng.getrandbits(16), tag=rng.getrandbits(8),
                completer_id=rng.getrandbits(16), requester_id_enable=rng.getrandbits(1),
                tc=rng.getrandbits(3), attr=rng.getrandbits(3), at=rng.randint(0, 2),
                poisoned=rng.getrandbits(1), force_ecrc=rng.getrandbits(1))


def random_read(rng, *, dword_count=None):
    n = dword_count if dword_count is not None else rng.randint(1, 1024)
    fields = dict(req_type=MEM_READ, address=rng.getrandbits(62) << 2,
                  dword_count=n & 0x7FF, **_ids(rng))
    return RqTlp(fields, first_be=rng.getrandbits(4), last_be=0 if n == 1 else rng.getrandbits(4),
                 seq_num=rng.getrandbits(6))


def random_write(rng, n):
    fields = dict(req_type=MEM_WRITE, address=rng.getrandbits(62) << 2,
                  dword_count=n & 0x7FF, **_ids(rng))
    return RqTlp(fields, first_be=rng.getrandbits(4), last_be=0 if n == 1 else rng.getrandbits(4),
                 seq_num=rng.getrandbits(6), payload=[rng.getrandbits(32) for _ in range(n)])


def input_beats(tlp, data_width, rng):
    """The ``RqTlpBeat`` payloads (as integers) of one TLP.

    Fields the framer must ignore get random values: ``desc``, byte enables and ``seq_num`` of
    every beat but the first, and the data lanes ``keep`` leaves out.
    """
    layout = RqTlpBeat(data_width)
    off = {name: layout[name].offset for name in
           ("desc", "first_be", "last_be", "seq_num", "data", "keep", "first", "last")}
    lanes = data_width // 32
    chunks = [tlp.payload[i:i + lanes] for i in range(0, len(tlp.payload), lanes)] or [[]]
    desc = sum(dw << 32 * i for i, dw in enumerate(tlp.desc))
    beats = []
    for k, chunk in enumerate(chunks):
        first, last = k == 0, k == len(chunks) - 1
        value = rng.getrandbits(data_width)             # junk in the unused lanes
        for lane, dw in enumerate(chunk):
            value &= ~(0xFFFF_FFFF << 32 * lane)
            value |= dw << 32 * lane
        word = value << off["data"]
        word |= ((1 << len(chunk)) - 1) << off["keep"]
        word |= int(first) << off["first"] | int(last) << off["last"]
        if first:
            word |= desc << off["desc"]
            word |= tlp.first_be << off["first_be"] | tlp.last_be << off["last_be"]
            word |= tlp.seq_num << off["seq_num"]
        else:
            word |= rng.getrandbits(128) << off["desc"]
            word |= rng.getrandbits(4) << off["first_be"] | rng.getrandbits(4) << off["last_be"]
            word |= rng.getrandbits(6) << off["seq_num"]
        beats.append(word)
    return beats


# ---- reference layout: beat counts from the PG213 placement rules -----------------------------

def ideal_beat_count(tlps, data_width, straddle):
    """RQ beats the TLPs take back to back when each one is available in time: a TLP starts at
    dword 0 of a new beat, or (straddle) at dword 8 when the previous one ended in dwords 0-7
    of the beat."""
    lanes = data_width // 32
    beats = 0
    used = 0            # dwords used in the last beat when it has room left, else 0
    for tlp in tlps:
        d = tlp.dwords
        if straddle and 0 < used <= 8:
            d += 8
            beats += (d + lanes - 1) // lanes - 1
        else:
            beats += (d + lanes - 1) // lanes
        used = d % lanes
    return beats


# ---- RQ decoding as cocotbext's RqSink does it ------------------------------------------------

@dataclass
class Beat:
    data: int
    keep: int
    last: int
    user: int


def decode_rq(beats, data_width, segments):
    """Frames (``UsPcieFrame``) of RQ beats, cut exactly as ``RqSink._run`` cuts them.

    One segment: ``tkeep`` selects the dwords, a frame starts on the first beat after
    ``tlast``. Two segments (512 bits): ``is_sop``/``is_sop_ptr``/``is_eop``/``is_eop_ptr``
    select the dwords; ``first_be``/``last_be``/``seq_num`` are read from the slot of the
    frame's order among the beat's starts.
    """
    lanes = data_width // 32
    seg_lanes = lanes // segments
    frames = []
    frame = UsPcieFrame()
    t = RQ_TUSER[data_width]
    for beat in beats:
        user = beat.user
        seg_valid = (1 << segments) - 1
        seg_sop = seg_eop = 0
        sop_cnt = 0
        if segments == 1:
            lane_valid = beat.keep
            seg_valid = 1
            if not frame:
                seg_sop = 1
            if beat.last:
                seg_eop = 1
        else:
            sop_lane = eop_lane = 0
            for k in range(segments):
                if _bits(user, t["is_sop"] + k, 1):
                    sop_lane |= 1 << (_bits(user, t["sop0_ptr"] + 2 * k, 2) * 4)
                if _bits(user, t["is_eop"] + k, 1):
                    eop_lane |= 1 << _bits(user, t["eop0_ptr"] + 4 * k, 4)
            lane_valid = seg_valid = 0
            state = 1
            for k in range(lanes):
                seg_mask = 1 << (k // seg_lanes)
                if sop_lane & (1 << k):
                    state = 1
                    seg_sop |= seg_mask
                if state:
                    lane_valid |= 1 << k
                    seg_valid |= seg_mask
                if eop_lane & (1 << k):
                    state = 0
                    seg_eop |= seg_mask
        for seg in range(segments):
            if not seg_valid & (1 << seg):
                continue
            if seg_sop & (1 << seg):
                frame = UsPcieFrame()
                if data_width == 512:
                    frame.first_be = _bits(user, t["first_be"] + 4 * sop_cnt, 4)
                    frame.last_be = _bits(user, t["last_be"] + 4 * sop_cnt, 4)
                    frame.seq_num = _bits(user, t["seq_num0"] + 6 * sop_cnt, 6)
                else:
                    frame.first_be = _bits(user, t["first_be"], 4)
                    frame.last_be = _bits(user, t["last_be"], 4)
                    frame.seq_num = (_bits(user, t["seq_lo"], 4)
                                     | _bits(user, t["seq_hi"], 2) << 4)
                sop_cnt += 1
            assert frame is not None, "dwords outside any TLP (the model would crash here)"
            if _bits(user, t["discontinue"], 1):
                frame.discontinue = True
            for k in range(seg_lanes):
                lane = k + seg * seg_lanes
                if lane_valid & (1 << lane):
                    frame.data.append(_bits(beat.data, 32 * lane, 32))
                    frame.parity.append(_bits(user, t["parity"] + 4 * lane, 4))
            if seg_eop & (1 << seg):
                frames.append(frame)
                frame = None
    return frames, frame


def check_framing(beats, data_width, straddle):
    """Checks of every RQ beat beyond what the model needs; returns, per beat, the list of
    TLPs (as ``(start_lane, end_lane or None)``) it holds.

    ``tkeep`` marks exactly the TLPs' dwords; a TLP starts at dword 0 of a beat, or with
    straddle at dword 8 after a TLP that ended in dwords 0-7 of the same beat; ``tlast`` marks
    the end of each TLP without straddle and, with straddle, the beats no TLP continues from;
    ``is_sop``/``is_eop`` and pointers (512 bits) agree with the TLP boundaries; slot fields
    of absent TLPs, discontinue, TPH, addr_offset and parity are 0.
    """
    lanes = data_width // 32
    t = RQ_TUSER[data_width]
    open_tlp = False
    layout = []
    for i, b in enumerate(beats):
        where = f"beat {i}"
        u = b.user
        assert u >> t["width"] == 0
        assert _bits(u, t["discontinue"], 1) == 0, f"{where}: discontinue"
        assert _bits(u, t["parity"], lanes * 4) == 0, f"{where}: parity"
        if data_width == 512:
            assert _bits(u, 16, 4) == 0 and _bits(u, 37, 24) == 0, f"{where}: addr_offset/TPH"
            is_sop, is_eop = _bits(u, t["is_sop"], 2), _bits(u, t["is_eop"], 2)
            sop0, sop1 = _bits(u, t["sop0_ptr"], 2), _bits(u, t["sop1_ptr"], 2)
            eop0, eop1 = _bits(u, t["eop0_ptr"], 4), _bits(u, t["eop1_ptr"], 4)
        else:
            assert _bits(u, 8, 3) == 0 and _bits(u, 12, 12) == 0, f"{where}: addr_offset/TPH"
        keep = b.keep
        count = bin(keep).count("1")
        tlps = []
        if not straddle:
            assert keep == (1 << count) - 1 and count, f"{where}: tkeep {keep:#x}"
            start = None if open_tlp else 0
            end = count - 1 if b.last else None
            assert b.last or count == lanes, f"{where}: partial tkeep without tlast"
            tlps.append((start, end))
            open_tlp = not b.last
            if data_width == 512:
                assert is_sop == (start == 0) and sop0 == 0 and sop1 == 0, f"{where}: is_sop"
                assert is_eop == b.last, f"{where}: is_eop {is_eop:#b}"
                assert eop0 == (end if b.last else 0) and eop1 == 0, f"{where}: is_eop0_ptr"
                if start is None:
                    assert _bits(u, 0, 16) == 0 and _bits(u, 61, 12) == 0, f"{where}: slot fields"
                assert _bits(u, 4, 4) == 0 and _bits(u, 12, 4) == 0 and _bits(u, 67, 6) == 0
        else:
            assert is_sop in (0b00, 0b01, 0b11) and is_eop in (0b00, 0b01, 0b11), where
            starts = []
            if is_sop & 1:
                starts.append(sop0 * 4)
            if is_sop & 2:
                starts.append(sop1 * 4)
            ends = []
            if is_eop & 1:
                ends.append(eop0)
            if is_eop & 2:
                ends.append(eop1)
            # Walk the lanes: a TLP runs from its start (or from lane 0 if it continues) to its
            # end (or the last lane).
            pos, cur = 0, (0 if open_tlp else None)
            starts_left, ends_left = list(starts), list(ends)
            valid = 0
            while True:
                if cur is None:
                    if not starts_left:
                        break
                    s = starts_left.pop(0)
                    assert s >= pos, f"{where}: start {s} before lane {pos}"
                    if tlps or open_tlp:
                        assert s == 8, f"{where}: second TLP at dword {s}"
                    else:
                        assert s == 0, f"{where}: first TLP of a beat at dword {s}"
                    cur = s
                    start_mark = s
                else:
                    start_mark = None if (not tlps and open_tlp) else cur
                if ends_left:
                    e = ends_left.pop(0)
                    assert e >= cur, f"{where}: end {e} before start {cur}"
                    valid |= ((1 << (e + 1)) - 1) & ~((1 << cur) - 1)
                    tlps.append((start_mark, e))
                    pos, cur = e + 1, None
                    if e >= 8:
                        break
                else:
                    valid |= ((1 << lanes) - 1) & ~((1 << cur) - 1)
                    tlps.append((start_mark, None))
                    break
            assert not starts_left and not ends_left, f"{where}: sop/eop {is_sop:#b}/{is_eop:#b}"
            if len(starts) == 2:
                assert sop0 == 0 and sop1 == 2, f"{where}: sop pointers {sop0}/{sop1}"
            else:
                assert sop1 == 0, f"{where}: is_sop1_ptr without a second TLP"
            if len(ends) < 2:
                assert eop1 == 0, f"{where}: is_eop1_ptr without a second end"
            if not ends:
                assert eop0 == 0, f"{where}: is_eop0_ptr without an end"
            assert keep == valid, f"{where}: tkeep {keep:#06x}, TLP dwords {valid:#06x}"
            assert tlps, f"{where}: empty beat"
            open_tlp = tlps[-1][1] is None
            assert b.last == (not open_tlp), f"{where}: tlast {b.last}"
            if len(starts) < 2:
                assert _bits(u, 4, 4) == 0 and _bits(u, 12, 4) == 0 and _bits(u, 67, 6) == 0
            if not starts:
                assert _bits(u, 0, 4) == 0 and _bits(u, 8, 4) == 0 and _bits(u, 61, 6) == 0
        layout.append(tlps)
    return layout


def unpack_frame(frame):
    """Fields of a decoded frame, read by cocotbext's ``Tlp_us.unpack_us_rq``."""
    tlp = Tlp_us.unpack_us_rq(frame)
    return dict(
        req_type=frame.data[2] >> 11 & 0xF,
        address=tlp.address,
        length=tlp.length,
        requester_id=int(tlp.requester_id),
        tag=tlp.tag,
        completer_id=int(tlp.completer_id),
        requester_id_enable=int(tlp.requester_id_enable),
        tc=int(tlp.tc),
        attr=int(tlp.attr),
        at=int(tlp.at),
        poisoned=int(tlp.ep),
        first_be=tlp.first_be,
        last_be=tlp.last_be,
        seq_num=tlp.seq_num,
        discontinue=tlp.discontinue,
        data=bytes(tlp.data),
    )


# ---- the bench -------------------------------------------------------------------------------

class RqBench:
    """A framer with an input driver, an RQ sink and a recorder of every clock edge.

    ``in_gap``: probability of an idle clock (valid low) before each input beat.
    ``ready``: ``None`` (always ready), a probability of ``rq.ready`` low per clock, or a
    function of the clock index returning the ``rq.ready`` value.
    """

    def __init__(self, dut, *, seed=1, in_gap=0.0, ready=None):
        self.dut = dut
        self.w = dut.data_width
        self.straddle = dut.straddle
        self.lanes = self.w // 32
        self.rng = random.Random(seed)
        self.gap_rng = random.Random(seed + 1)
        self.ready_rng = random.Random(seed + 2)
        self.in_gap = in_gap
        self.ready = ready
        self.edges = []          # per clock edge: dict of sampled values
        self.accepts = []        # (edge, beat payload) of every accepted input beat
        self.tlps = []           # input TLPs in order
        self.ended = 0           # TLPs ended on RQ so far (tlast, or is_eop with straddle)

    def _ready_value(self, cycle):
        if self.ready is None:
            return 1
        if callable(self.ready):
            return int(bool(self.ready(cycle)))
        return 0 if self.ready_rng.random() < self.ready else 1

    async def recorder(self, ctx):
        dut = self.dut
        ctx.set(dut.rq.ready, self._ready_value(0))
        async for _, _, tv, tr, payload, rv, rr, data, keep, last, user in ctx.tick().sample(
                dut.tlp.valid, dut.tlp.ready, dut.tlp.payload.as_value(), dut.rq.valid,
                dut.rq.ready, dut.rq.payload.data, dut.rq.payload.keep, dut.rq.payload.last,
                dut.rq.payload.user):
            edge = len(self.edges)
            if tv and tr:
                self.accepts.append((edge, payload))
            if rv and rr:
                if self.straddle:
                    self.ended += bin(_bits(user, RQ_TUSER[512]["is_eop"], 2)).count("1")
                else:
                    self.ended += last
            self.edges.append(dict(rv=rv, rr=rr, beat=Beat(data, keep, last, user)))
            ctx.set(dut.rq.ready, self._ready_value(edge + 1))

    async def send(self, ctx, tlps, *, max_wait=5000):
        """Drive the TLPs' beats; returns once the last one is accepted. Bounded waits."""
        tlp_stream = self.dut.tlp
        for tlp in tlps:
            self.tlps.append(tlp)
            for beat in input_beats(tlp, self.w, self.rng):
                while self.in_gap and self.gap_rng.random() < self.in_gap:
                    ctx.set(tlp_stream.valid, 0)
                    await ctx.tick()
                ctx.set(tlp_stream.payload.as_value(), beat)
                ctx.set(tlp_stream.valid, 1)
                for _ in range(max_wait):
                    _, _, ready = await ctx.tick().sample(tlp_stream.ready)
                    if ready:
                        break
                else:
                    raise AssertionError(f"input beat not accepted in {max_wait} clocks")
        ctx.set(tlp_stream.valid, 0)

    def rq_transfers(self):
        """(edge of first offer, edge of transfer, beat) of every RQ beat transferred."""
        out = []
        offered = None
        for k, e in enumerate(self.edges):
            if e["rv"]:
                if offered is None:
                    offered = k
                if e["rr"]:
                    out.append((offered, k, e["beat"]))
                    offered = None
        return out

    async def wait_out(self, ctx, count, *, max_cycles):
        """Tick until ``count`` TLPs have ended on RQ, at most ``max_cycles`` clocks."""
        for _ in range(max_cycles):
            if self.ended >= count:
                return
            await ctx.tick()
        assert self.ended >= count, f"{self.ended} of {count} TLPs on RQ after {max_cycles} clocks"

    def run(self, body, name):
        """Simulate ``body(ctx)`` (an async function using this bench) and then check."""
        sim = new_sim(self.dut)
        sim.add_process(self.recorder)
        sim.add_testbench(body)
        run(sim, name)
        return self.check()

    # ---- checks ------------------------------------------------------------------------------

    def check(self, *, timing=True):
        """Check the RQ stream against the input TLPs; return measurements.

        Always: the stream rules (a beat offered stays offered and unchanged until taken),
        framing (``check_framing``), every TLP decoded by the model's algorithm equal to its
        input TLP, in order. With ``timing``: ``rq.valid`` never drops inside a TLP, and RQ is
        never idle at a clock edge while a TLP whose last beat was accepted two or more
        clocks earlier has not started (the store-and-forward latency is one clock, plus one
        for the RQ register).
        """
        edges = self.edges
        for k in range(1, len(edges)):
            prev, cur = edges[k - 1], edges[k]
            if prev["rv"] and not prev["rr"]:
                assert cur["rv"], f"edge {k}: rq.valid dropped before the beat was taken"
                assert cur["beat"] == prev["beat"], f"edge {k}: beat changed while stalled"

        transfers = self.rq_transfers()
        beats = [b for _, _, b in transfers]
        layout = check_framing(beats, self.w, self.straddle)
        frames, open_frame = decode_rq(beats, self.w, 2 if self.straddle else 1)
        assert not open_frame, "RQ stream ends inside a TLP"
        assert len(frames) == len(self.tlps), f"{len(frames)} TLPs on RQ, {len(self.tlps)} sent"
        for i, (frame, tlp) in enumerate(zip(frames, self.tlps)):
            what = f"TLP {i} {tlp!r}"
            assert frame.data[:4] == tlp.desc, f"{what}: descriptor {frame.data[:4]} != {tlp.desc}"
            assert frame.data[4:] == tlp.payload, f"{what}: payload differs"
            assert (frame.first_be, frame.last_be, frame.seq_num) == \
                (tlp.first_be, tlp.last_be, tlp.seq_num), f"{what}: tuser fields"
            got = unpack_frame(frame)
            want = dict(tlp.fields)
            want.update(length=want.pop("dword_count"), first_be=tlp.first_be,
                        last_be=tlp.last_be, seq_num=tlp.seq_num, discontinue=False,
                        data=b"".join(d.to_bytes(4, "little") for d in tlp.payload))
            want.pop("force_ecrc")     # not decoded by the model; checked in the raw dwords
            assert got == want, f"{what}: {got} != {want}"

        # Where each TLP's last input beat was accepted, and where it started on RQ.
        last_off = RqTlpBeat(self.w)["last"].offset
        accepted_last = [edge for edge, payload in self.accepts if payload >> last_off & 1]
        assert len(accepted_last) == len(self.tlps)
        started = []
        for (offered, _, _), tlps in zip(transfers, layout):
            started += [offered for start, _ in tlps if start is not None]
        assert len(started) == len(self.tlps)
        self.latency = [s - a for s, a in zip(started, accepted_last)]
        self.first_rq_edge = transfers[0][0] if transfers else None
        self.last_rq_edge = transfers[-1][1] if transfers else None
        self.rq_beats = len(transfers)

        if timing:
            # rq.valid stays high from the first to the last beat of a TLP.
            open_after = [tlps[-1][1] is None for tlps in layout]
            for (offered, taken, _), cont in zip(transfers, open_after):
                if cont:
                    assert taken + 1 < len(edges) and edges[taken + 1]["rv"], \
                        f"edge {taken + 1}: rq.valid low inside a TLP"
            # No idle RQ clock while a received TLP waits.
            nxt = 0
            for k, e in enumerate(edges):
                while nxt < len(started) and started[nxt] < k:
                    nxt += 1
                if not e["rv"] and nxt < len(started):
                    assert accepted_last[nxt] > k - 2, \
                        (f"edge {k}: RQ idle while TLP {nxt} (received at edge "
                         f"{accepted_last[nxt]}) waits")
        return self
