"""Requester Completion test helpers: completion frames, RC beat packing and expected chunks.

Frames (descriptor, payload, byte enables, parity) come from cocotbext-pcie 0.2.16's
``Tlp_us.pack_us_rc``; beats are packed here exactly as its ``RcSource`` drives them
(``cocotbext/pcie/xilinx/us/interface.py``): a frame fills whole segments from the first free
one, the next frame starts in the next segment of the same beat if the source's queue holds
one, ``tlast`` only without straddling, and the tuser side band is

* 512 bits: byte enables at 4*lane, is_sop[3:0] at 64, is_sop<k>_ptr at 68 + 2k (segment
  start in units of 4 dwords), is_eop[3:0] at 76, is_eop<k>_ptr at 80 + 4k (last dword lane),
  discontinue at 96, parity at 97 + 4*lane;
* 256 bits: byte enables at 4*lane, is_sop_0/1 at 32/33, is_eop_0 at 34 with its pointer at
  35, is_eop_1 at 38 with its pointer at 39, discontinue at 42, parity at 43 + 4*lane.

Segments per beat follow ``usp_model``: 4 at 512 bits with 4-TLP straddling, 2 with straddling
(256 or 512 bits), else 1. Expected chunks are computed from the completion list (address,
dword count, payload); nothing here imports the project's layouts or the code under test.
"""

from dataclasses import dataclass, field

from cocotbext.pcie.core.tlp import CplStatus, TlpType
from cocotbext.pcie.core.utils import PcieId
from cocotbext.pcie.xilinx.us.tlp import Tlp_us


__all__ = ["RC_TUSER", "Completion", "rc_frame", "pack_rc_beats", "unpack_rc_beats",
           "expected_chunks", "segments_for"]


RC_TUSER = {
    512: dict(is_sop=64, sop_ptr=68, is_eop=76, eop_ptr=80, discontinue=96, parity=97),
    256: dict(is_sop=32, is_eop=34, discontinue=42, parity=43),
}


def segments_for(data_width, straddle):
    """Segments of ``RcSource`` for a straddle setting (0, 2 or 4 completions per beat)."""
    if data_width == 512 and straddle == 4:
        return 4
    if straddle == 2:
        return 2
    return 1


@dataclass
class Completion:
    """One completion as the hard block hands it to the requester (PG213 RC descriptor)."""
    lower_address: int          # 12 bits: first byte within the 4 KiB page
    dword_count: int
    byte_count: int = 0
    payload: list = field(default_factory=list)
    tag: int = 0
    status: int = 0             # CplStatus
    error_code: int = 0
    requester_id: int = 0
    completer_id: int = 0
    tc: int = 0
    attr: int = 0
    request_completed: bool = False
    poisoned: bool = False

    def __post_init__(self):
        assert len(self.payload) == self.dword_count
        assert (self.lower_address >> 2) + self.dword_count <= 1024, "crosses 4 KiB"


def rc_frame(c):
    """The RC frame (``UsPcieFrame``) of a completion, built by cocotbext's ``pack_us_rc``."""
    tlp = Tlp_us()
    tlp.fmt_type = TlpType.CPL_DATA if c.dword_count else TlpType.CPL
    tlp.lower_address = c.lower_address
    tlp.byte_count = c.byte_count
    tlp.length = c.dword_count
    tlp.data = b"".join(d.to_bytes(4, "little") for d in c.payload)
    tlp.status = CplStatus(c.status)
    tlp.error_code = c.error_code
    tlp.requester_id = PcieId.from_int(c.requester_id)
    tlp.completer_id = PcieId.from_int(c.completer_id)
    tlp.tag = c.tag
    tlp.tc = c.tc
    tlp.attr = c.attr
    tlp.ep = c.poisoned
    tlp.request_completed = c.request_completed
    return tlp.pack_us_rc()


def pack_rc_beats(frames, data_width, segments, *, breaks=frozenset()):
    """Beats (dicts of data, keep, last, user) ``RcSource`` drives for ``frames``.

    The source is assumed to hold every frame in its queue when it builds a beat, except that
    frame indices in ``breaks`` were not queued yet when the source looked for them, so they
    start in a new beat (as when the hard block has no completion ready).
    """
    lanes = data_width // 32
    seg_lanes = lanes // segments
    pos = RC_TUSER[data_width]
    beats = []
    nxt = 0
    while nxt < len(frames):
        frame = frames[nxt]
        nxt += 1
        offset = 0
        first = True
        while frame is not None:
            tdata = tkeep = tuser = tlast = 0
            sop_cnt = eop_cnt = 0
            for seg in range(segments):
                if frame is None:
                    if nxt < len(frames) and nxt not in breaks:
                        frame = frames[nxt]
                        nxt += 1
                        offset = 0
                        first = True
                    else:
                        break
                if first:
                    first = False
                    if data_width == 512:
                        tuser |= 1 << pos["is_sop"] + sop_cnt
                        tuser |= (seg * seg_lanes // 4) << pos["sop_ptr"] + 2 * sop_cnt
                    else:
                        tuser |= 1 << pos["is_sop"] + sop_cnt
                    sop_cnt += 1
                if frame.discontinue:
                    tuser |= 1 << pos["discontinue"]
                last_lane = 0
                for k in range(seg_lanes):
                    lane = k + seg * seg_lanes
                    if offset < len(frame.data):
                        tdata |= frame.data[offset] << 32 * lane
                        tkeep |= 1 << lane
                        tuser |= frame.byte_en[offset] << 4 * lane
                        tuser |= frame.parity[offset] << pos["parity"] + 4 * lane
                        offset += 1
                        last_lane = lane
                    else:
                        tuser |= 0xF << pos["parity"] + 4 * lane
                if offset >= len(frame.data):
                    if data_width == 512:
                        tuser |= 1 << pos["is_eop"] + eop_cnt
                        tuser |= last_lane << pos["eop_ptr"] + 4 * eop_cnt
                    else:
                        tuser |= 1 << pos["is_eop"] + 4 * eop_cnt
                        tuser |= last_lane << pos["is_eop"] + 1 + 4 * eop_cnt
                    eop_cnt += 1
                    if segments == 1:
                        tlast = 1
                    frame = None
            beats.append(dict(data=tdata, keep=tkeep, last=tlast, user=tuser))
    return beats


def unpack_rc_beats(beats, data_width, segments):
    """Frames' dword lists, decoded as cocotbext's ``RcSink`` decodes RC beats (a check of
    :func:`pack_rc_beats` against the reference's own reading of the side band)."""
    lanes = data_width // 32
    seg_lanes = lanes // segments
    frames, frame = [], None
    for beat in beats:
        user = beat["user"]
        if segments == 1:
            lane_valid, seg_valid = beat["keep"], 1
            seg_sop = 1 if frame is None else 0
            seg_eop = 1 if beat["last"] else 0
        else:
            sop_lane = eop_lane = 0
            if data_width == 256:
                if user >> 32 & 1:
                    sop_lane |= 1 << (4 if frame is not None else 0)
                if user >> 33 & 1:
                    sop_lane |= 1 << 4
                for k in range(segments):
                    if user >> (34 + 4 * k) & 1:
                        eop_lane |= 1 << (user >> (35 + 4 * k) & 0x7)
            else:
                for k in range(segments):
                    if user >> (64 + k) & 1:
                        sop_lane |= 1 << 4 * (user >> (68 + 2 * k) & 0x3)
                    if user >> (76 + k) & 1:
                        eop_lane |= 1 << (user >> (80 + 4 * k) & 0xF)
            lane_valid = seg_valid = seg_sop = seg_eop = 0
            state = 1
            for k in range(lanes):
                seg_mask = 1 << k // seg_lanes
                if sop_lane >> k & 1:
                    state = 1
                    seg_sop |= seg_mask
                if state:
                    lane_valid |= 1 << k
                    seg_valid |= seg_mask
                if eop_lane >> k & 1:
                    state = 0
                    seg_eop |= seg_mask
        for seg in range(segments):
            if not seg_valid >> seg & 1:
                continue
            if seg_sop >> seg & 1:
                frame = []
            for k in range(seg_lanes):
                lane = k + seg * seg_lanes
                if lane_valid >> lane & 1:
                    frame.append(beat["data"] >> 32 * lane & 0xFFFF_FFFF)
            if seg_eop >> seg & 1:
                frames.append(frame)
                frame = None
    return frames


def expected_chunks(c, frame, data_width):
    """The chunks a completion must become: dicts of desc (the 96 descriptor bits as on RC),
    window, first, last, keep and ``dwords`` (lane -> dword for the kept lanes)."""
    lanes = data_width // 32
    window_bytes = data_width // 8
    desc = frame.data[0] | frame.data[1] << 32 | frame.data[2] << 64
    if c.dword_count == 0:
        return [dict(desc=desc, window=c.lower_address // window_bytes, first=1, last=1,
                     keep=0, dwords={})]
    a = c.lower_address >> 2
    n = c.dword_count
    out = []
    windows = range(a // lanes, (a + n - 1) // lanes + 1)
    for w in windows:
        dwords = {i: c.payload[w * lanes + i - a] for i in range(lanes)
                  if a <= w * lanes + i < a + n}
        out.append(dict(desc=desc, window=w, first=int(w == windows[0]),
                        last=int(w == windows[-1]), keep=sum(1 << i for i in dwords),
                        dwords=dwords))
    return out
