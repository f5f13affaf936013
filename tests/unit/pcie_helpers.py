"""Shared test helpers: CQ beat packing, CC TLP capture, a behavioural register target, and
PCIe completion arithmetic computed from the PCIe rules (not from the code under test).

Bit positions come from PG213 (UltraScale+ PCIe, dword-aligned, not straddled) as
cocotbext-pcie 0.2.16 packs them (``cocotbext/pcie/xilinx/us/interface.py`` and ``tlp.py``).
Nothing here imports the project's layouts, so a wrong bit position in ``hdl/`` cannot pass.
"""

import os
from dataclasses import dataclass

from amaranth.sim import Simulator


__all__ = [
    "REQ", "CQ_TUSER", "CC_TUSER_512",
    "cq_descriptor", "cq_tlp", "cq_beats", "send_cq",
    "CcSink", "split_cc_tlps", "decode_cc_descriptor",
    "RegisterTarget", "pattern_value",
    "read_byte_count", "expected_completions", "expected_qword_writes",
    "lowest_set", "highest_set", "wait_for", "transfer", "run", "new_sim",
]


# ---- request types (PG213 table "Transaction Types", req_type in CQ dword 2 bits 14:11) ----------

class REQ:
    MEM_READ = 0b0000
    MEM_WRITE = 0b0001
    IO_READ = 0b0010
    IO_WRITE = 0b0011
    FETCH_ADD = 0b0100
    SWAP = 0b0101
    CAS = 0b0110
    MEM_READ_LOCKED = 0b0111
    MSG = 0b1100
    MSG_VENDOR = 0b1101


# ---- CQ tuser bit positions (PG213 "Completer Request Interface", as cocotbext packs them) -------

CQ_TUSER = {
    512: dict(first_be=0, last_be=8, byte_en=16, is_sop=80, sop_ptr=82, is_eop=86, eop_ptr=88,
              discontinue=96, parity=119),
    256: dict(first_be=0, last_be=4, byte_en=8, sop=40, discontinue=41, parity=53),
}

# CC tuser (512 bits): is_sop[0] bit 0, is_sop0_ptr bits 3:2, is_eop[0] bit 6, is_eop0_ptr 11:8,
# discontinue bit 16. At 256 bits bit 0 is discontinue and there is no sop/eop side band.
CC_TUSER_512 = dict(is_sop0=0, is_sop1=1, sop0_ptr=2, is_eop0=6, is_eop1=7, eop0_ptr=8,
                    discontinue=16)


def lowest_set(be):
    for i in range(4):
        if be >> i & 1:
            return i
    return 0


def highest_set(be):
    for i in reversed(range(4)):
        if be >> i & 1:
            return i
    return 0


def _dword_parity(d):
    # Odd parity per byte, as cocotbext's UsPcieFrame.update_parity computes it.
    p = 0
    for b in range(4):
        byte = (d >> 8 * b) & 0xFF
        p |= (bin(byte).count("1") & 1) << b
    return p ^ 0xF


# ---- CQ requests -------------------------------------------------------------------------------

def cq_descriptor(*, req_type, address, dword_count, requester_id=0, tag=0, bar_id=0,
                  bar_aperture=18, target_function=0, tc=0, attr=0, at=0):
    """The four descriptor dwords of a CQ TLP (PG213 "Completer Request Descriptor Format")."""
    return [
        (at & 0x3) | (address & 0xFFFF_FFFC),
        (address >> 32) & 0xFFFF_FFFF,
        (dword_count & 0x7FF) | (req_type & 0xF) << 11 | (requester_id & 0xFFFF) << 16,
        (tag & 0xFF) | (target_function & 0xFF) << 8 | (bar_id & 0x7) << 16
        | (bar_aperture & 0x3F) << 19 | (tc & 0x7) << 25 | (attr & 0x7) << 28,
    ]


@dataclass
class CqTlp:
    dwords: list          # descriptor + payload
    first_be: int
    last_be: int
    byte_en: list         # per dword, as cocotbext computes it


def cq_tlp(*, req_type, address, dword_count, first_be, last_be, payload=(), **desc):
    """A CQ TLP: descriptor dwords followed by ``payload`` dwords."""
    payload = list(payload)
    dwords = cq_descriptor(req_type=req_type, address=address, dword_count=dword_count, **desc)
    dwords += payload
    byte_en = [0] * 4
    if len(payload) >= 1:
        byte_en.append(first_be)
    if len(payload) > 2:
        byte_en += [0xF] * (len(payload) - 2)
    if len(payload) > 1:
        byte_en.append(last_be)
    return CqTlp(dwords, first_be, last_be, byte_en)


def cq_beats(tlp, data_width):
    """Beats (dicts of data, keep, last, user) of one CQ TLP, as cocotbext's CqSource drives it."""
    lanes = data_width // 32
    pos = CQ_TUSER[data_width]
    beats = []
    for start in range(0, len(tlp.dwords), lanes):
        chunk = tlp.dwords[start:start + lanes]
        data = keep = user = 0
        for lane, dw in enumerate(chunk):
            data |= dw << 32 * lane
            keep |= 1 << lane
            user |= tlp.byte_en[start + lane] << pos["byte_en"] + 4 * lane
            user |= _dword_parity(dw) << pos["parity"] + 4 * lane
        for lane in range(len(chunk), lanes):
            user |= 0xF << pos["parity"] + 4 * lane
        first = start == 0
        last = start + lanes >= len(tlp.dwords)
        if first:
            user |= tlp.first_be << pos["first_be"]
            user |= tlp.last_be << pos["last_be"]
            user |= 1 << (pos["is_sop"] if data_width == 512 else pos["sop"])
        if last and data_width == 512:
            user |= 1 << pos["is_eop"]
            user |= (len(chunk) - 1) << pos["eop_ptr"]
        beats.append(dict(data=data, keep=keep, last=int(last), user=user))
    return beats


async def send_cq(ctx, cq, beats, *, rng=None, stall=0.0, max_wait=2000):
    """Drive ``beats`` on ``cq`` with optional random idle cycles (valid low) between beats.

    Returns after the last beat has been accepted. Every wait is bounded by ``max_wait`` cycles.
    """
    for beat in beats:
        while rng is not None and rng.random() < stall:
            ctx.set(cq.valid, 0)
            await ctx.tick()
        ctx.set(cq.payload.data, beat["data"])
        ctx.set(cq.payload.keep, beat["keep"])
        ctx.set(cq.payload.last, beat["last"])
        ctx.set(cq.payload.user, beat["user"])
        ctx.set(cq.valid, 1)
        for _ in range(max_wait):
            _, _, ready = await ctx.tick().sample(cq.ready)
            if ready:
                break
        else:
            raise AssertionError(f"CQ beat not accepted within {max_wait} cycles")
    ctx.set(cq.valid, 0)
    ctx.set(cq.payload.last, 0)


# ---- CC capture --------------------------------------------------------------------------------

class CcSink:
    """Background process: accepts CC beats with random ``ready`` stalls and checks the stream
    rule that a beat offered (valid) stays offered and unchanged until it is taken."""

    def __init__(self, cc, *, rng=None, stall=0.0):
        self.cc = cc
        self.rng = rng
        self.stall = stall
        self.beats = []

    async def process(self, ctx):
        cc = self.cc
        offered = None
        ctx.set(cc.ready, 1)
        async for _, _, valid, ready, data, keep, last, user in ctx.tick().sample(
                cc.valid, cc.ready, cc.payload.data, cc.payload.keep, cc.payload.last,
                cc.payload.user):
            beat = dict(data=data, keep=keep, last=last, user=user)
            if offered is not None:
                assert valid, "CC valid dropped before the beat was taken"
                assert beat == offered, "CC payload changed while waiting for ready"
            if valid and ready:
                self.beats.append(beat)
                offered = None
            elif valid:
                offered = beat
            ctx.set(cc.ready, 0 if self.rng is not None and self.rng.random() < self.stall else 1)

    def tlps(self, data_width):
        return split_cc_tlps(self.beats, data_width)


def decode_cc_descriptor(d0, d1, d2):
    """Fields of the three CC descriptor dwords (PG213 "Completer Completion Descriptor")."""
    return dict(
        lower_address=d0 & 0x7F,
        at=(d0 >> 8) & 0x3,
        byte_count=(d0 >> 16) & 0x1FFF,
        locked_read_completion=(d0 >> 29) & 1,
        dword_count=d1 & 0x7FF,
        status=(d1 >> 11) & 0x7,
        poisoned=(d1 >> 14) & 1,
        requester_id=(d1 >> 16) & 0xFFFF,
        tag=d2 & 0xFF,
        completer_id=(d2 >> 8) & 0xFFFF,
        completer_id_enable=(d2 >> 24) & 1,
        tc=(d2 >> 25) & 0x7,
        attr=(d2 >> 28) & 0x7,
        force_ecrc=(d2 >> 31) & 1,
    )


def split_cc_tlps(beats, data_width):
    """Cut captured CC beats into TLPs at ``tlast`` and check their framing.

    Checks, per TLP: ``tkeep`` all ones except on the last beat, where it covers exactly the
    TLP's remaining dwords from lane 0; the descriptor's dword_count matches the dwords sent;
    at 512 bits is_sop/sop pointer on the first beat only and is_eop with its pointer on the
    last beat only; discontinue never set. Returns a list of (descriptor dict, payload dwords).
    """
    lanes = data_width // 32
    tlps, current = [], []
    for beat in beats:
        current.append(beat)
        if beat["last"]:
            tlps.append(current)
            current = []
    assert not current, f"{len(current)} CC beats after the last tlast"

    out = []
    for n, tlp in enumerate(tlps):
        dwords = []
        for i, beat in enumerate(tlp):
            first, last = i == 0, i == len(tlp) - 1
            keep = beat["keep"]
            count = bin(keep).count("1")
            assert keep == (1 << count) - 1, f"TLP {n} beat {i}: tkeep {keep:#x} not contiguous"
            if not last:
                assert count == lanes, f"TLP {n} beat {i}: partial tkeep {keep:#x} before tlast"
            assert count > 0, f"TLP {n} beat {i}: empty beat"
            user = beat["user"]
            if data_width == 512:
                p = CC_TUSER_512
                assert (user >> p["is_sop0"]) & 1 == first, f"TLP {n} beat {i}: is_sop"
                assert (user >> p["is_sop1"]) & 1 == 0, f"TLP {n} beat {i}: is_sop[1]"
                assert (user >> p["sop0_ptr"]) & 3 == 0, f"TLP {n} beat {i}: is_sop0_ptr"
                assert (user >> p["is_eop0"]) & 1 == last, f"TLP {n} beat {i}: is_eop"
                assert (user >> p["is_eop1"]) & 1 == 0, f"TLP {n} beat {i}: is_eop[1]"
                if last:
                    assert (user >> p["eop0_ptr"]) & 0xF == count - 1, \
                        f"TLP {n}: is_eop0_ptr {(user >> p['eop0_ptr']) & 0xF} != {count - 1}"
                assert (user >> p["discontinue"]) & 1 == 0, f"TLP {n}: discontinue"
            else:
                assert user & 1 == 0, f"TLP {n}: discontinue"
            for lane in range(count):
                dwords.append((beat["data"] >> 32 * lane) & 0xFFFF_FFFF)
        assert len(dwords) >= 3, f"TLP {n}: {len(dwords)} dwords, shorter than a descriptor"
        desc = decode_cc_descriptor(*dwords[:3])
        payload = dwords[3:]
        assert desc["dword_count"] == len(payload), \
            f"TLP {n}: dword_count {desc['dword_count']} but {len(payload)} payload dwords"
        out.append((desc, payload))
    return out


# ---- behavioural register target on a RegisterBus ----------------------------------------------

def pattern_value(bar, qword):
    """Distinct 64-bit contents of an unwritten qword (so misplaced data cannot match)."""
    x = (qword * 0x9E37_79B9_7F4A_7C15 + (bar + 1) * 0x0123_4567_89AB_CDEF) & (2**64 - 1)
    return x ^ (x >> 29)


GARBAGE = 0xBAD0_BAD1_BAD2_BAD3


class RegisterTarget:
    """A qword memory behind a RegisterBus: ``r_data`` is valid in the clock after ``r_stb``
    (and garbage otherwise, which the bus contract allows); writes are recorded with their byte
    enables; ``w_hit`` is combinational, true for the addresses in ``hits``, and only hit
    addresses store data."""

    def __init__(self, bus, bar, *, hits=None):
        self.bus = bus
        self.bar = bar
        self.hits = hits
        self.mem = {}
        self.writes = []      # (qword, data, be) in bus order
        self.reads = 0

    def read(self, qword):
        return self.mem.get(qword, pattern_value(self.bar, qword))

    def read_dword(self, dword):
        return (self.read(dword >> 1) >> 32 * (dword & 1)) & 0xFFFF_FFFF

    def is_hit(self, qword):
        return self.hits is None or qword in self.hits

    async def process(self, ctx):
        bus = self.bus
        async for _, _, addr, w_stb, w_data, w_be, r_stb in ctx.tick().sample(
                bus.addr, bus.w_stb, bus.w_data, bus.w_be, bus.r_stb):
            if r_stb:
                self.reads += 1
                ctx.set(bus.r_data, self.read(addr))
            else:
                ctx.set(bus.r_data, GARBAGE)
            if w_stb:
                self.writes.append((addr, w_data, w_be))
                if self.is_hit(addr):
                    mask = sum(0xFF << 8 * i for i in range(8) if w_be >> i & 1)
                    self.mem[addr] = (self.read(addr) & ~mask) | (w_data & mask)

    async def hit_process(self, ctx):
        ctx.set(self.bus.w_hit, int(self.is_hit(0)))
        async for (addr,) in ctx.changed(self.bus.addr):
            ctx.set(self.bus.w_hit, int(self.is_hit(addr)))

    def effective_writes(self):
        """Recorded writes with at least one byte enabled, data masked to the enabled bytes."""
        out = []
        for addr, data, be in self.writes:
            if be:
                mask = sum(0xFF << 8 * i for i in range(8) if be >> i & 1)
                out.append((addr, data & mask, be))
        return out


# ---- PCIe arithmetic (PCIe Base Spec 2.2.9 / 2.3.1.1, tables "Calculating Byte Count" and
# ---- "Calculating Lower Address") ----------------------------------------------------------

def read_byte_count(dword_count, first_be, last_be):
    """Byte Count of a memory read request's first completion."""
    if dword_count == 1:
        if first_be == 0:
            return 1                       # zero-length read
        return highest_set(first_be) - lowest_set(first_be) + 1
    return dword_count * 4 - lowest_set(first_be) - (3 - highest_set(last_be))


def expected_completions(*, dword_addr, dword_count, first_be, last_be, mps_bytes, read_dword):
    """Successful completions of a memory read, split at Max_Payload_Size address boundaries.

    Returns a list of dicts: lower_address, byte_count, dword_count, data. The byte count of
    each is the bytes from its first returned enabled byte to the request's last enabled byte.
    """
    start_byte = dword_addr * 4 + lowest_set(first_be)
    if dword_count == 1:
        end_byte = dword_addr * 4 + (highest_set(first_be) if first_be else 0)
    else:
        end_byte = (dword_addr + dword_count - 1) * 4 + highest_set(last_be)
    total = read_byte_count(dword_count, first_be, last_be)
    if first_be:
        assert end_byte - start_byte + 1 == total
    mps_dw = mps_bytes // 4
    cpls = []
    dw, left = dword_addr, dword_count
    while left:
        n = min(left, mps_dw - dw % mps_dw)
        first_byte = start_byte if dw == dword_addr else dw * 4
        cpls.append(dict(
            lower_address=first_byte & 0x7F,
            byte_count=total if dw == dword_addr else end_byte - first_byte + 1,
            dword_count=n,
            data=[read_dword(d) for d in range(dw, dw + n)],
        ))
        dw += n
        left -= n
    return cpls


def expected_qword_writes(*, dword_addr, payload, first_be, last_be):
    """Qword writes a memory write should produce: every qword it touches written once, with
    the TLP's byte enables (first_be on the first dword, last_be on the last, 0xF between)."""
    qwords = {}
    order = []
    n = len(payload)
    for i, dw in enumerate(payload):
        be = first_be if i == 0 else (last_be if i == n - 1 else 0xF)
        a = dword_addr + i
        q, half = a >> 1, a & 1
        if q not in qwords:
            qwords[q] = [0, 0]
            order.append(q)
        qwords[q][0] |= dw << 32 * half
        qwords[q][1] |= be << 4 * half
    out = []
    for q in order:
        data, be = qwords[q]
        if be:
            mask = sum(0xFF << 8 * i for i in range(8) if be >> i & 1)
            out.append((q, data & mask, be))
    return out


# ---- simulation plumbing ----------------------------------------------------------------------

async def bus_write(ctx, bus, qword, data, be=0xFF, *, during=()):
    """One RegisterBus write in the next clock; ``during`` are (signal, value) set alongside."""
    ctx.set(bus.addr, qword)
    ctx.set(bus.w_data, data)
    ctx.set(bus.w_be, be)
    ctx.set(bus.w_stb, 1)
    for signal, value in during:
        ctx.set(signal, value)
    await ctx.tick()
    ctx.set(bus.w_stb, 0)
    for signal, _ in during:
        ctx.set(signal, 0)


async def bus_read(ctx, bus, qword):
    """One RegisterBus read; return the data, which arrives one clock after the strobe."""
    ctx.set(bus.addr, qword)
    ctx.set(bus.r_stb, 1)
    await ctx.tick()
    ctx.set(bus.r_stb, 0)
    return ctx.get(bus.r_data)


async def wait_for(ctx, condition, *, max_cycles, what):
    """Tick until ``condition()`` is true, at most ``max_cycles`` clocks."""
    for _ in range(max_cycles):
        if condition():
            return
        await ctx.tick()
    assert condition(), f"timed out after {max_cycles} cycles waiting for {what}"


async def transfer(ctx, stream, *, max_cycles, what):
    """Offer ``stream`` (its payload already set) until a clock edge at which ``ready`` is
    high: the transfer is that edge, whatever other testbenches change in between."""
    ctx.set(stream.valid, 1)
    waited = 0
    async for _, _, ready in ctx.tick().sample(stream.ready):
        if ready:
            break
        waited += 1
        assert waited < max_cycles, f"timed out after {max_cycles} cycles waiting for {what}"
    ctx.set(stream.valid, 0)


def run(sim, name):
    """Run ``sim``; with WAVES=1 in the environment write build/waves/<name>.vcd."""
    if os.environ.get("WAVES") == "1":
        root = os.path.join(os.path.dirname(__file__), "..", "..", "build", "waves")
        os.makedirs(root, exist_ok=True)
        with sim.write_vcd(os.path.join(root, f"{name}.vcd")):
            sim.run()
    else:
        sim.run()


def new_sim(dut):
    """A simulator of ``dut`` with its sync domain clocked at 250 MHz."""
    sim = Simulator(dut)
    sim.add_clock(4e-9)
    return sim
