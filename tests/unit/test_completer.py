"""MmioCompleter: CQ requests in, register-bus accesses and CC completions out.

Every expected value is computed from the PCIe rules in ``pcie_helpers`` (byte count, lower
address, Max_Payload_Size splits, byte enables); the register targets are behavioural models.
"""

import random

import pytest

from hdl.config import TUSER_WIDTHS
from hdl.pcie.completer import MmioCompleter

from .pcie_helpers import (REQ, CcSink, RegisterTarget, cq_beats, cq_tlp, expected_completions,
                           expected_qword_writes, new_sim, read_byte_count, run, send_cq,
                           wait_for)


BAR0_LOG2 = 18
BAR2_LOG2 = 19
BAR_LOG2 = {0: BAR0_LOG2, 2: BAR2_LOG2}
# 64-bit BAR base addresses the host assigned (aligned to the BAR size): the completer must
# decode only the offset within the BAR.
BAR_BASE = {0: 0x0000_7F80_0004_0000, 2: 0x0000_0041_0008_0000}

UR = 0b001
SC = 0b000


class Bench:
    """One completer with behavioural BAR0/BAR2 targets, a CC sink and an ``unsupported`` count."""

    def __init__(self, data_width, *, seed=1, cq_stall=0.0, cc_stall=0.0):
        self.data_width = data_width
        self.lanes = data_width // 32
        self.dut = MmioCompleter(
            data_width=data_width, cq_user_width=TUSER_WIDTHS[data_width]["cq"],
            cc_user_width=TUSER_WIDTHS[data_width]["cc"],
            bar0_log2_size=BAR0_LOG2, bar2_log2_size=BAR2_LOG2)
        self.rng = random.Random(seed)
        self.cq_stall = cq_stall
        # BAR0: only the first 4 KiB and the implementation page are registers (w_hit).
        hits0 = set(range(0, 512)) | set(range(0x30000 >> 3, (0x30000 >> 3) + 512))
        self.targets = {0: RegisterTarget(self.dut.bar0, 0, hits=hits0),
                        2: RegisterTarget(self.dut.bar2, 2)}
        self.sink = CcSink(self.dut.cc, rng=random.Random(seed + 1000), stall=cc_stall)
        self.unsupported = 0
        self.expected_writes = {0: [], 2: []}
        self.zero_length_writes = 0
        self.expected_tlps = []     # (description, expected descriptor fields, payload)

    async def _count_unsupported(self, ctx):
        async for _, _, pulse in ctx.tick().sample(self.dut.unsupported):
            self.unsupported += pulse

    def run(self, testbench, name):
        sim = new_sim(self.dut)
        for t in self.targets.values():
            sim.add_process(t.process)
            sim.add_process(t.hit_process)
        sim.add_process(self.sink.process)
        sim.add_process(self._count_unsupported)
        sim.add_testbench(testbench)
        run(sim, name)

    def cc_count(self):
        return sum(b["last"] for b in self.sink.beats)

    # ---- requests ---------------------------------------------------------------------------

    async def send(self, ctx, tlp, *, beats=None):
        beats = beats if beats is not None else cq_beats(tlp, self.data_width)
        await send_cq(ctx, self.dut.cq, beats, rng=self.rng, stall=self.cq_stall)

    def ids(self):
        r = self.rng
        return dict(requester_id=r.getrandbits(16), tag=r.getrandbits(8), tc=r.getrandbits(3),
                    attr=r.getrandbits(3))

    async def write(self, ctx, bar, dword_offset, payload, first_be, last_be):
        """A memory write; records the qword writes it must produce."""
        tlp = cq_tlp(req_type=REQ.MEM_WRITE, address=BAR_BASE[bar] + 4 * dword_offset,
                     dword_count=len(payload), first_be=first_be, last_be=last_be,
                     payload=payload, bar_id=bar, bar_aperture=BAR_LOG2[bar], **self.ids())
        writes = expected_qword_writes(
            dword_addr=dword_offset, payload=payload, first_be=first_be, last_be=last_be)
        self.expected_writes[bar] += writes
        self.zero_length_writes += not writes
        await self.send(ctx, tlp)

    async def read(self, ctx, bar, dword_offset, dword_count, first_be, last_be, *, mps):
        """A memory read; waits for its completions and records what they must be."""
        ids = self.ids()
        ctx.set(self.dut.cfg_max_payload, mps)
        tlp = cq_tlp(req_type=REQ.MEM_READ, address=BAR_BASE[bar] + 4 * dword_offset,
                     dword_count=dword_count, first_be=first_be, last_be=last_be,
                     bar_id=bar, bar_aperture=BAR_LOG2[bar], **ids)
        before = self.cc_count()
        await self.send(ctx, tlp)
        target = self.targets[bar]
        cpls = expected_completions(dword_addr=dword_offset, dword_count=dword_count,
                                    first_be=first_be, last_be=last_be,
                                    mps_bytes=128 << mps, read_dword=target.read_dword)
        await wait_for(ctx, lambda: self.cc_count() >= before + len(cpls),
                       max_cycles=40 * dword_count + 400,
                       what=f"{len(cpls)} completions of a {dword_count}-dword read")
        for i, c in enumerate(cpls):
            fields = dict(lower_address=c["lower_address"], byte_count=c["byte_count"],
                          dword_count=c["dword_count"], status=SC, locked_read_completion=0,
                          at=0, poisoned=0, completer_id_enable=0, force_ecrc=0, **ids)
            what = (f"read bar{bar} +{dword_offset:#x} n={dword_count} fbe={first_be:#x} "
                    f"lbe={last_be:#x} mps={128 << mps} cpl {i}/{len(cpls)}")
            self.expected_tlps.append((what, fields, c["data"]))
        return cpls

    async def request_ur(self, ctx, req_type, *, payload=(), dword_count=None, first_be=0xF,
                         last_be=0x0, dword_offset=0x40, bar=0):
        """A request the completer answers with an Unsupported Request completion."""
        ids = self.ids()
        n = dword_count if dword_count is not None else max(1, len(payload))
        tlp = cq_tlp(req_type=req_type, address=BAR_BASE[bar] + 4 * dword_offset,
                     dword_count=n, first_be=first_be, last_be=last_be, payload=payload,
                     bar_id=bar, bar_aperture=BAR_LOG2[bar], **ids)
        before = self.cc_count()
        await self.send(ctx, tlp)
        await wait_for(ctx, lambda: self.cc_count() >= before + 1, max_cycles=500,
                       what=f"UR completion of req_type {req_type:#06b}")
        fields = dict(status=UR, dword_count=0, poisoned=0, **ids)
        if req_type in (REQ.IO_READ, REQ.IO_WRITE):
            # PCIe 2.2.9: Byte Count 4 and Lower Address 0 for completions of I/O requests.
            fields.update(byte_count=4, lower_address=0, locked_read_completion=0)
        elif req_type == REQ.MEM_READ_LOCKED:
            # A locked read's completion is CplLk; byte count and lower address as for reads.
            fields.update(locked_read_completion=1,
                          byte_count=read_byte_count(n, first_be, last_be),
                          lower_address=(4 * dword_offset + _lowest(first_be)) & 0x7F)
        elif req_type == REQ.CAS:
            # PCIe 2.2.9: an AtomicOp completion's Byte Count is the operand size; a CAS
            # request carries two operands (compare and swap).
            fields.update(locked_read_completion=0, byte_count=2 * n)
        elif req_type in (REQ.FETCH_ADD, REQ.SWAP):
            # FetchAdd and Swap carry one operand.
            fields.update(locked_read_completion=0, byte_count=4 * n)
        else:
            raise ValueError(f"no UR expectation for req_type {req_type:#06b}")
        self.expected_tlps.append((f"UR for req_type {req_type:#06b}", fields, []))

    async def message(self, ctx, req_type, payload=()):
        """A message: dropped, no completion."""
        ids = self.ids()
        tlp = cq_tlp(req_type=req_type, address=0x7F00_0000_1234_5670, dword_count=len(payload),
                     first_be=0, last_be=0, payload=payload, bar_id=0b010, bar_aperture=0,
                     **ids)
        await self.send(ctx, tlp)

    async def fence(self, ctx):
        """A 1-dword read of BAR0: its completion proves every earlier request was handled."""
        await self.read(ctx, 0, 0x10, 1, 0xF, 0x0, mps=0)

    # ---- checks -----------------------------------------------------------------------------

    def check(self):
        # Strobes with no byte enabled write nothing; only a zero-length write may make one.
        empty = sum(be == 0 for t in self.targets.values() for _, _, be in t.writes)
        assert empty <= self.zero_length_writes, f"{empty} write strobes without byte enables"
        for bar in (0, 2):
            got = self.targets[bar].effective_writes()
            want = self.expected_writes[bar]
            for i, (g, w) in enumerate(zip(got, want)):
                assert g == w, (f"BAR{bar} write {i}: got (qword {g[0]:#x}, data {g[1]:#018x}, "
                                f"be {g[2]:#04x}), want (qword {w[0]:#x}, data {w[1]:#018x}, "
                                f"be {w[2]:#04x})")
            assert len(got) == len(want), f"BAR{bar}: {len(got)} writes, want {len(want)}"
        tlps = self.sink.tlps(self.data_width)
        for i, ((desc, payload), (what, fields, data)) in enumerate(zip(tlps, self.expected_tlps)):
            for k, v in fields.items():
                assert desc[k] == v, f"CC TLP {i} ({what}): {k} = {desc[k]:#x}, want {v:#x}"
            assert payload == data, f"CC TLP {i} ({what}): payload differs"
        assert len(tlps) == len(self.expected_tlps), \
            f"{len(tlps)} CC TLPs, want {len(self.expected_tlps)}"


def _lowest(be):
    return next((i for i in range(4) if be >> i & 1), 0)


def _contiguous_first_be(rng):
    return rng.choice([0xF, 0xE, 0xC, 0x8])


def _contiguous_last_be(rng):
    return rng.choice([0x1, 0x3, 0x7, 0xF])


def _byte_enables(rng, n, parity):
    """First/last byte enables a requester may send for an n-dword request (PCIe 2.2.5):
    non-contiguous only for 1 dword and for QW-aligned 2 dwords."""
    if n == 1:
        return rng.choice([0x1, 0x2, 0x4, 0x8, 0x3, 0x6, 0xC, 0x5, 0x9, 0xF]), 0x0
    if n == 2 and parity == 0:
        return rng.randrange(1, 16), rng.randrange(1, 16)
    return _contiguous_first_be(rng), _contiguous_last_be(rng)


def _offset(rng, bar, n, parity):
    """A dword offset in ``bar`` with the given parity whose n dwords stay in one 4 KiB page."""
    assert 1 <= n <= 1024 and (parity == 0 or n < 1024), "no such request"
    page = rng.randrange(0, 1 << (BAR_LOG2[bar] - 12))
    start = rng.randrange(0, 1024 - n + 1)
    if (start & 1) != parity:
        start = start + 1 if start + 1 + n <= 1024 else start - 1
    return page * 1024 + start


WIDTHS = [512, 256]
STALLS = [pytest.param(0.0, 0.0, id="no-stall"), pytest.param(0.3, 0.3, id="stalls")]


# ---- memory writes -------------------------------------------------------------------------------

@pytest.mark.parametrize("cq_stall, cc_stall", STALLS)
@pytest.mark.parametrize("data_width", WIDTHS)
def test_writes_1_to_40_dwords(data_width, cq_stall, cc_stall):
    b = Bench(data_width, seed=11 + data_width, cq_stall=cq_stall, cc_stall=cc_stall)
    rng = random.Random(data_width * 7 + int(cq_stall * 10))

    async def tb(ctx):
        # Every length 1..40 at an even and an odd dword address, on either BAR, with
        # random legal first/last byte enables and random data.
        for n in range(1, 41):
            for parity in (0, 1):
                bar = rng.choice((0, 2))
                fbe, lbe = _byte_enables(rng, n, parity)
                payload = [rng.getrandbits(32) for _ in range(n)]
                await b.write(ctx, bar, _offset(rng, bar, n, parity), payload, fbe, lbe)
        await b.fence(ctx)

    b.run(tb, f"completer_writes_{data_width}_{cq_stall}")
    b.check()


@pytest.mark.parametrize("data_width", WIDTHS)
def test_write_shapes(data_width):
    b = Bench(data_width, seed=3, cq_stall=0.25, cc_stall=0.25)
    rng = random.Random(5)

    async def tb(ctx):
        # A 64-bit aligned 2-dword write is ONE qword write with all bytes enabled.
        await b.write(ctx, 0, 0x20, [0x1111_2222, 0x3333_4444], 0xF, 0xF)
        await b.fence(ctx)
        assert b.targets[0].effective_writes()[0] == (0x10, 0x3333_4444_1111_2222, 0xFF)
        # An unaligned 2-dword write touches two qwords: high half, then low half.
        await b.write(ctx, 2, 0x41, [0xAAAA_0001, 0xBBBB_0002], 0xF, 0xF)
        # Single dwords, low and high half, with partial byte enables.
        await b.write(ctx, 0, 0x30, [0xDEAD_BEEF], 0x6, 0x0)
        await b.write(ctx, 0, 0x33, [0xCAFE_F00D], 0x8, 0x0)
        # A zero-length write (first_be 0) enables no byte.
        await b.write(ctx, 0, 0x36, [0x5555_5555], 0x0, 0x0)
        # Writes spanning several beats, up to the largest payload (1 KiB), both parities.
        for n in (12, 13, 16, 17, 28, 29, 44, 45, 100, 255, 256):
            for parity in (0, 1):
                bar = rng.choice((0, 2))
                payload = [rng.getrandbits(32) for _ in range(n)]
                await b.write(ctx, bar, _offset(rng, bar, n, parity), payload,
                              _contiguous_first_be(rng), _contiguous_last_be(rng))
        await b.fence(ctx)

    b.run(tb, f"completer_write_shapes_{data_width}")
    b.check()
    # The unaligned pair is two separate qwords (the zero-length write made none: check()).
    assert (0x20, 0xAAAA_0001_0000_0000, 0xF0) in b.targets[2].effective_writes()
    assert (0x21, 0xBBBB_0002, 0x0F) in b.targets[2].effective_writes()


# ---- memory reads -------------------------------------------------------------------------------

READ_SIZES = [1, 2, 3, 13, 14, 16, 64, 300, 1024]


@pytest.mark.parametrize("cq_stall, cc_stall", STALLS)
@pytest.mark.parametrize("data_width", WIDTHS)
def test_reads(data_width, cq_stall, cc_stall):
    b = Bench(data_width, seed=21 + data_width, cq_stall=cq_stall, cc_stall=cc_stall)
    rng = random.Random(data_width + 99 + int(cq_stall * 10))

    async def tb(ctx):
        # Each size at an even and an odd dword address (1024 dwords only fits a whole page),
        # alternating BARs and Max_Payload_Size settings.
        i = 0
        for n in READ_SIZES:
            for parity in ((0,) if n == 1024 else (0, 1)):
                bar = (0, 2)[i % 2]
                fbe, lbe = _byte_enables(rng, n, parity)
                await b.read(ctx, bar, _offset(rng, bar, n, parity), n, fbe, lbe, mps=i % 4)
                i += 1
        # Reads see data written before them.
        await b.write(ctx, 0, 0x81, [0x0123_4567, 0x89AB_CDEF, 0x0F0F_0F0F], 0xF, 0xF)
        await b.read(ctx, 0, 0x80, 5, 0xF, 0xF, mps=0)

    b.run(tb, f"completer_reads_{data_width}_{cq_stall}")
    b.check()
    # The written dwords came back in the last completion.
    assert b.sink.tlps(data_width)[-1][1][1:4] == [0x0123_4567, 0x89AB_CDEF, 0x0F0F_0F0F]


@pytest.mark.parametrize("data_width", WIDTHS)
def test_read_split_at_max_payload_size(data_width):
    b = Bench(data_width, seed=31, cq_stall=0.2, cc_stall=0.4)

    async def tb(ctx):
        for mps in range(4):
            mps_dw = 32 << mps
            # A whole 4 KiB page from a page boundary: 4 KiB / MPS completions, all full.
            cpls = await b.read(ctx, 2, 0x4000, 1024, 0xF, 0xF, mps=mps)
            assert [c["dword_count"] for c in cpls] == [mps_dw] * (1024 // mps_dw)
            # From the middle of an MPS block, ending mid-block: a short first completion, full
            # ones, and a short last one; byte counts fall by what each completion returned.
            start = 0x800 + mps_dw // 2 + 1
            cpls = await b.read(ctx, 0, start, 2 * mps_dw + 5, 0xE, 0x3, mps=mps)
            assert len(cpls) == 3
            assert cpls[0]["dword_count"] == mps_dw - (mps_dw // 2 + 1)
            assert cpls[0]["byte_count"] == (2 * mps_dw + 5) * 4 - 1 - 2
            for prev, nxt in zip(cpls, cpls[1:]):
                returned = prev["dword_count"] * 4 - (1 if prev is cpls[0] else 0)
                assert nxt["byte_count"] == prev["byte_count"] - returned
                assert nxt["lower_address"] == 0   # every later completion starts MPS-aligned

    b.run(tb, f"completer_mps_{data_width}")
    b.check()


@pytest.mark.parametrize("data_width", WIDTHS)
def test_read_byte_enable_edge_cases(data_width):
    b = Bench(data_width, seed=41)

    async def tb(ctx):
        # 1-dword reads: byte count = highest - lowest enabled byte + 1 (non-contiguous
        # enables allowed); lower address names the first enabled byte.
        for fbe in (0x8, 0x6, 0x5, 0x9, 0xA, 0x1, 0x4, 0xF, 0x3, 0xC):
            cpls = await b.read(ctx, 0, 0x101, 1, fbe, 0x0, mps=1)
            assert cpls[0]["lower_address"] & 3 == _lowest(fbe)
        # Zero-length read: byte count 1, one dword of data, lower address bits 1:0 = 0.
        cpls = await b.read(ctx, 2, 0x203, 1, 0x0, 0x0, mps=0)
        assert (cpls[0]["byte_count"], cpls[0]["dword_count"]) == (1, 1)
        assert cpls[0]["lower_address"] == (0x203 * 4) & 0x7F
        # Multi-dword reads with partial first and last dwords.
        for fbe, lbe in ((0x8, 0x1), (0xC, 0x7), (0xE, 0xF), (0xF, 0x1)):
            await b.read(ctx, 0, 0x305, 9, fbe, lbe, mps=0)
        # QW-aligned 2-dword reads may have non-contiguous enables (PCIe 2.2.5).
        await b.read(ctx, 0, 0x400, 2, 0x5, 0xA, mps=0)
        await b.read(ctx, 0, 0x400, 2, 0x8, 0x1, mps=0)

    b.run(tb, f"completer_be_{data_width}")
    b.check()


# ---- unsupported requests -----------------------------------------------------------------

@pytest.mark.parametrize("cq_stall, cc_stall", STALLS)
@pytest.mark.parametrize("data_width", WIDTHS)
def test_unsupported_requests(data_width, cq_stall, cc_stall):
    b = Bench(data_width, seed=51, cq_stall=cq_stall, cc_stall=cc_stall)
    rng = random.Random(52)
    n_unsupported = 0

    async def normal(ctx):
        # After each odd request the completer still serves ordinary ones.
        await b.write(ctx, 0, 0x20 + rng.randrange(16), [rng.getrandbits(32)], 0xF, 0)
        await b.read(ctx, 2, 0x77, 3, 0xF, 0xF, mps=0)

    async def tb(ctx):
        nonlocal n_unsupported
        await b.request_ur(ctx, REQ.IO_READ, first_be=0xF)
        await normal(ctx)
        await b.request_ur(ctx, REQ.IO_WRITE, payload=[0x1234_5678], first_be=0x3)
        await normal(ctx)
        await b.request_ur(ctx, REQ.FETCH_ADD, payload=[5], first_be=0xF)
        await normal(ctx)
        await b.request_ur(ctx, REQ.FETCH_ADD, payload=[5, 0], first_be=0xF, last_be=0xF)
        await normal(ctx)
        await b.request_ur(ctx, REQ.SWAP, payload=[0xFFFF_FFFF, 1], first_be=0xF, last_be=0xF)
        await normal(ctx)
        # CAS with two 64-bit operands (compare, swap): 4 payload dwords.
        await b.request_ur(ctx, REQ.CAS, payload=[1, 2, 3, 4], first_be=0xF, last_be=0xF)
        await normal(ctx)
        # CAS with two 128-bit operands: 8 payload dwords, two beats at 256 bits.
        await b.request_ur(ctx, REQ.CAS, payload=list(range(8)), first_be=0xF, last_be=0xF)
        await normal(ctx)
        await b.request_ur(ctx, REQ.MEM_READ_LOCKED, dword_count=4, first_be=0xE, last_be=0x7,
                           dword_offset=0x91)
        await normal(ctx)
        await b.request_ur(ctx, REQ.MEM_READ_LOCKED, dword_count=1, first_be=0x2)
        await normal(ctx)
        n_unsupported = 9
        # Messages, with and without data, long enough to span beats: dropped, no completion.
        await b.message(ctx, REQ.MSG)
        await normal(ctx)
        await b.message(ctx, REQ.MSG_VENDOR, payload=[rng.getrandbits(32) for _ in range(20)])
        await normal(ctx)
        await b.message(ctx, REQ.MSG, payload=[7])
        await normal(ctx)
        n_unsupported += 3
        await b.fence(ctx)
        # Let the last pulse be counted.
        await ctx.tick().repeat(4)

    b.run(tb, f"completer_unsupported_{data_width}_{cq_stall}")
    b.check()
    assert b.unsupported == n_unsupported, \
        f"unsupported pulsed {b.unsupported} clocks for {n_unsupported} requests"


@pytest.mark.parametrize("data_width", WIDTHS)
def test_supported_requests_do_not_pulse_unsupported(data_width):
    b = Bench(data_width, seed=61, cq_stall=0.2, cc_stall=0.2)

    async def tb(ctx):
        await b.write(ctx, 0, 0x10, [1, 2, 3], 0xF, 0xF)
        await b.read(ctx, 2, 0x10, 40, 0xF, 0xF, mps=0)
        await b.read(ctx, 0, 0x10, 1, 0x0, 0x0, mps=0)
        await ctx.tick().repeat(4)

    b.run(tb, f"completer_supported_{data_width}")
    b.check()
    assert b.unsupported == 0


# ---- truncated writes ---------------------------------------------------------------------

def _truncate(beats, data_width, keep_dwords, garbage):
    """Cut CQ beats after ``keep_dwords`` dwords (descriptor included): the beat holding the
    last kept dword carries tlast and tkeep only for its kept lanes; its other lanes hold
    ``garbage`` (tdata there is undefined)."""
    lanes = data_width // 32
    n_beats = -(-keep_dwords // lanes)
    out = [dict(b) for b in beats[:n_beats]]
    used = keep_dwords - (n_beats - 1) * lanes
    last = out[-1]
    last["last"] = 1
    last["keep"] = (1 << used) - 1
    for lane in range(used, lanes):
        last["data"] &= ~(0xFFFF_FFFF << 32 * lane)
        last["data"] |= garbage << 32 * lane
    # is_eop / its pointer on the new last beat, as the hard block would mark it.
    if data_width == 512:
        last["user"] &= ~((1 << 86) | (0xF << 88))
        last["user"] |= (1 << 86) | ((used - 1) << 88)
    return out


@pytest.mark.parametrize("data_width", WIDTHS)
def test_truncated_write_in_descriptor_beat_is_dropped(data_width):
    b = Bench(data_width, seed=71, cq_stall=0.3, cc_stall=0.3)

    async def tb(ctx):
        # A 10-dword write whose only beat ends after 2 payload dwords: nothing is written.
        tlp = cq_tlp(req_type=REQ.MEM_WRITE, address=BAR_BASE[0] + 4 * 0x40, dword_count=10,
                     first_be=0xF, last_be=0xF, payload=list(range(1, 11)), bar_id=0)
        await b.send(ctx, tlp, beats=_truncate(cq_beats(tlp, data_width), data_width, 6,
                                               0xEEEE_EEEE))
        # The completer goes on: a write and a read after it are served exactly.
        await b.write(ctx, 0, 0x50, [0xA, 0xB], 0xF, 0xF)
        await b.read(ctx, 0, 0x40, 12, 0xF, 0xF, mps=0)

    b.run(tb, f"completer_trunc1_{data_width}")
    b.check()
    assert b.unsupported == 1, "a dropped (truncated) request pulses unsupported once"


@pytest.mark.parametrize("extra", [3, 0], ids=["mid-beat", "beat-boundary"])
@pytest.mark.parametrize("data_width", WIDTHS)
def test_truncated_multi_beat_write_does_not_hang_or_write_garbage(data_width, extra):
    b = Bench(data_width, seed=72, cq_stall=0.3, cc_stall=0.3)
    lanes = data_width // 32
    keep = 2 * lanes + extra    # ends ``extra`` dwords into the third beat, or with the second

    async def tb(ctx):
        tlp = cq_tlp(req_type=REQ.MEM_WRITE, address=BAR_BASE[2] + 4 * 0x100, dword_count=60,
                     first_be=0xF, last_be=0xF, payload=[0x100 + i for i in range(60)],
                     bar_id=2)
        await b.send(ctx, tlp, beats=_truncate(cq_beats(tlp, data_width), data_width, keep,
                                               0xEEEE_EEEE))
        await b.write(ctx, 0, 0x50, [0xA, 0xB], 0xF, 0xF)
        await b.read(ctx, 0, 0x50, 2, 0xF, 0xF, mps=0)

    b.run(tb, f"completer_trunc2_{data_width}")
    # No write carries a dword the TLP did not deliver (its undefined lanes or beyond).
    delivered = keep - 4
    for qword, data, be in b.targets[2].effective_writes():
        for half in (0, 1):
            if be >> 4 * half & 0xF:
                dword = 2 * qword + half - 0x100
                assert 0 <= dword < delivered, f"write of dword {dword} beyond the payload"
                assert (data >> 32 * half) & 0xFFFF_FFFF == 0x100 + dword
    # What follows is served exactly.
    b.targets[2].writes.clear()
    b.check()
    assert b.unsupported == 1, "a dropped (truncated) request pulses unsupported once"


@pytest.mark.xfail(strict=True, reason="the completer streams payload to the bus as it arrives; "
                   "dropping a truncated multi-beat write entirely needs store-and-forward")
@pytest.mark.parametrize("data_width", WIDTHS)
def test_truncated_multi_beat_write_is_dropped_entirely(data_width):
    b = Bench(data_width, seed=73)
    lanes = data_width // 32

    async def tb(ctx):
        tlp = cq_tlp(req_type=REQ.MEM_WRITE, address=BAR_BASE[2] + 4 * 0x100, dword_count=60,
                     first_be=0xF, last_be=0xF, payload=[0x100 + i for i in range(60)],
                     bar_id=2)
        await b.send(ctx, tlp, beats=_truncate(cq_beats(tlp, data_width), data_width,
                                               2 * lanes + 3, 0xEEEE_EEEE))
        await b.fence(ctx)

    b.run(tb, f"completer_trunc3_{data_width}")
    assert b.targets[2].effective_writes() == []


# ---- long sweeps (run with --sweep) -----------------------------------------------------------

@pytest.mark.sweep
@pytest.mark.parametrize("data_width", WIDTHS)
def test_sweep_writes_every_length_and_enables(data_width):
    b = Bench(data_width, seed=81, cq_stall=0.2, cc_stall=0.2)
    rng = random.Random(82)

    async def tb(ctx):
        # Every length up to 1 KiB, both parities, every contiguous first/last enable pair.
        for n in range(1, 257):
            for parity in (0, 1):
                pairs = [(f, 0) for f in range(1, 16)] if n == 1 else \
                    [(f, l) for f in (0xF, 0xE, 0xC, 0x8) for l in (0x1, 0x3, 0x7, 0xF)]
                fbe, lbe = pairs[(2 * n + parity) % len(pairs)]
                bar = rng.choice((0, 2))
                payload = [rng.getrandbits(32) for _ in range(n)]
                await b.write(ctx, bar, _offset(rng, bar, n, parity), payload, fbe, lbe)
        await b.fence(ctx)

    b.run(tb, f"completer_sweep_writes_{data_width}")
    b.check()


@pytest.mark.sweep
@pytest.mark.parametrize("data_width", WIDTHS)
def test_sweep_reads_every_mps(data_width):
    b = Bench(data_width, seed=91, cq_stall=0.2, cc_stall=0.2)
    rng = random.Random(92)

    async def tb(ctx):
        # Seeded sizes from 1 to 1024 dwords at random offsets, under every MPS.
        for mps in range(4):
            for n in sorted({1, 2, 3, 31, 32, 33, 255, 256, 257, 1023, 1024}
                            | {rng.randrange(1, 1025) for _ in range(12)}):
                parity = 0 if n == 1024 else rng.randrange(2)
                fbe, lbe = _byte_enables(rng, n, parity)
                bar = rng.choice((0, 2))
                await b.read(ctx, bar, _offset(rng, bar, n, parity), n, fbe, lbe, mps=mps)

    b.run(tb, f"completer_sweep_reads_{data_width}")
    b.check()
