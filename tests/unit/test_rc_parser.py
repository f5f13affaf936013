# amaranth: UnusedElaboratable=no
"""RcParser: RC beats of the hard block in, address-aligned completion chunks out.

Beats are packed as cocotbext-pcie's ``RcSource`` packs them and expected chunks are computed
from the completion list (``rc_helpers``); the parser's own layouts are not used to compute
anything. Each simulation runs one or more phases (streams sent back to back, each drained
before the next); the rate tests share one simulation per configuration (``perf``). Every
wait is bounded. Long sweeps run with ``--sweep``.
"""

import random

import pytest
from amaranth.sim import Simulator

from hdl.pcie.rc_parser import RcParser

from .rc_helpers import (Completion, expected_chunks, pack_rc_beats, rc_frame, segments_for,
                         unpack_rc_beats)


CONFIGS = [(512, 0), (512, 2), (512, 4), (256, 0), (256, 2)]
CONFIG_IDS = [f"w{w}-s{s}" for w, s in CONFIGS]

UR, CA = 0b001, 0b100
# Clocks from the edge that takes an RC beat to the edge that takes the chunk it closes.
LATENCY = 4
BAD_STATUS, POISONED, TIMEOUT = 0b0010, 0b0001, 0b1001


# ---- completions -----------------------------------------------------------------------------

def data_completion(rng, lower_address, nbytes, **kw):
    """A successful completion of ``nbytes`` bytes from ``lower_address`` (random payload)."""
    n = (lower_address % 4 + nbytes + 3) // 4
    ids = dict(tag=rng.getrandbits(8), requester_id=rng.getrandbits(16),
               completer_id=rng.getrandbits(16), tc=rng.getrandbits(3), attr=rng.getrandbits(3),
               request_completed=rng.random() < 0.5)
    ids.update(kw)
    return Completion(lower_address=lower_address, dword_count=n, byte_count=nbytes,
                      payload=[rng.getrandbits(32) for _ in range(n)], **ids)


def error_completion(rng, lower_address=None):
    """A completion without payload: UR/CA status or an error code from the hard block."""
    la = rng.getrandbits(12) if lower_address is None else lower_address
    kind = rng.choice(["ur", "ca", "timeout"])
    status = {"ur": UR, "ca": CA, "timeout": 0}[kind]
    error_code = TIMEOUT if kind == "timeout" else BAD_STATUS
    return Completion(lower_address=la, dword_count=0, byte_count=rng.randrange(1, 4097) & 0x1FFF,
                      status=status, error_code=error_code, tag=rng.getrandbits(8),
                      requester_id=rng.getrandbits(16), completer_id=rng.getrandbits(16))


def random_completion(rng, *, max_bytes=1024, error_rate=0.1, tiny_rate=0.2):
    if rng.random() < error_rate:
        return error_completion(rng)
    if rng.random() < tiny_rate:
        nbytes = rng.randrange(1, 13)
    else:
        nbytes = rng.randrange(1, max_bytes + 1)
    la = rng.randrange(0, 4096 - nbytes + 1)
    c = data_completion(rng, la, nbytes)
    if rng.random() < 0.05:
        c.poisoned, c.error_code = True, POISONED
    return c


# ---- bench -------------------------------------------------------------------------------------

class Bench:
    """One parser, a beat driver with random idle cycles, and a chunk sink with random stalls
    that checks the stream rules (valid never withdrawn, payload stable until taken)."""

    def __init__(self, data_width, straddle, *, seed=1, gap=0.0, stall=0.0):
        self.data_width = data_width
        self.segments = segments_for(data_width, straddle)
        self.dut = RcParser(data_width=data_width, straddle=straddle)
        self.rng = random.Random(seed)
        self.sink_rng = random.Random(seed + 1000)
        self.gap = gap
        self.stall = stall
        self.chunks = []
        self.trace = []          # per clock: (rc.valid, rc.ready, cpl.valid, cpl.ready)

    # -- processes --

    async def _sink(self, ctx):
        cpl = self.dut.cpl
        p = cpl.payload
        offered = None
        ctx.set(cpl.ready, 1)
        async for _, _, valid, ready, desc, data, keep, window, first, last, rv, rr in \
                ctx.tick().sample(cpl.valid, cpl.ready, p.desc.as_value(), p.data, p.keep,
                                  p.window, p.first, p.last, self.dut.rc.valid,
                                  self.dut.rc.ready):
            self.trace.append((rv, rr, valid, ready))
            chunk = dict(desc=desc, data=data, keep=keep, window=window, first=first, last=last)
            if offered is not None:
                assert valid, "cpl.valid withdrawn before the chunk was taken"
                assert chunk == offered, "cpl payload changed while waiting for ready"
            if valid and ready:
                self.chunks.append(chunk)
                offered = None
            elif valid:
                offered = chunk
            stalled = self.stall and self.sink_rng.random() < self.stall
            ctx.set(cpl.ready, 0 if stalled else 1)

    async def send(self, ctx, beats, *, max_wait=1000):
        rc = self.dut.rc
        for beat in beats:
            while self.gap and self.rng.random() < self.gap:
                ctx.set(rc.valid, 0)
                await ctx.tick()
            ctx.set(rc.payload.data, beat["data"])
            ctx.set(rc.payload.keep, beat["keep"])
            ctx.set(rc.payload.last, beat["last"])
            ctx.set(rc.payload.user, beat["user"])
            ctx.set(rc.valid, 1)
            for _ in range(max_wait):
                _, _, ready = await ctx.tick().sample(rc.ready)
                if ready:
                    break
            else:
                raise AssertionError(f"RC beat not accepted within {max_wait} cycles")
        ctx.set(rc.valid, 0)

    async def wait_chunks(self, ctx, count, *, max_cycles):
        for _ in range(max_cycles):
            if len(self.chunks) >= count:
                return
            await ctx.tick()
        assert len(self.chunks) >= count, \
            f"timed out: {len(self.chunks)} chunks of {count} after {max_cycles} cycles"

    def run(self, testbench):
        sim = Simulator(self.dut)
        sim.add_clock(4e-9)
        sim.add_process(self._sink)
        sim.add_testbench(testbench)
        sim.run()

    # -- traffic --

    def beats(self, completions, *, breaks=frozenset()):
        frames = [rc_frame(c) for c in completions]
        beats = pack_rc_beats(frames, self.data_width, self.segments, breaks=breaks)
        assert unpack_rc_beats(beats, self.data_width, self.segments) == [f.data for f in frames]
        expected = [ch for c, f in zip(completions, frames)
                    for ch in expected_chunks(c, f, self.data_width)]
        return beats, expected

    def check(self, expected):
        got = self.chunks
        for i, (g, e) in enumerate(zip(got, expected)):
            where = f"chunk {i}"
            assert g["desc"] == e["desc"], \
                f"{where}: desc {g['desc']:#026x}, want {e['desc']:#026x}"
            assert g["window"] == e["window"], f"{where}: window {g['window']}, want {e['window']}"
            assert (g["first"], g["last"]) == (e["first"], e["last"]), \
                f"{where}: first/last {g['first']}/{g['last']}, want {e['first']}/{e['last']}"
            assert g["keep"] == e["keep"], f"{where}: keep {g['keep']:#x}, want {e['keep']:#x}"
            for lane, dw in e["dwords"].items():
                got_dw = (g["data"] >> 32 * lane) & 0xFFFF_FFFF
                assert got_dw == dw, f"{where}: lane {lane} = {got_dw:#010x}, want {dw:#010x}"
        assert len(got) == len(expected), f"{len(got)} chunks, want {len(expected)}"

    def phases(self, phases, *, idle=8):
        """Send each phase (a list of completions, or (completions, breaks)) as one RC stream,
        wait for all its chunks and a few idle clocks, then the next; check every chunk.

        Returns per phase: beats, expected chunks and the trace indices (clocks) it spans.
        """
        runs = []
        for phase in phases:
            cpls, breaks = phase if isinstance(phase, tuple) else (phase, frozenset())
            beats, expected = self.beats(cpls, breaks=breaks)
            runs.append(dict(completions=cpls, beats=beats, expected=expected))

        async def tb(ctx):
            total = 0
            for run in runs:
                start = len(self.trace)
                await self.send(ctx, run["beats"])
                total += len(run["expected"])
                await self.wait_chunks(ctx, total, max_cycles=100 + 20 * len(run["expected"]))
                for _ in range(idle):      # nothing more may come
                    await ctx.tick()
                run["trace"] = range(start, len(self.trace))

        self.run(tb)
        self.check([ch for run in runs for ch in run["expected"]])
        for run in runs:
            trace = [self.trace[i] for i in run["trace"]]
            run["accepted"] = [i for i, (v, r, _, _) in enumerate(trace) if v and r]
            run["taken"] = [i for i, (_, _, v, r) in enumerate(trace) if v and r]
            run["stalled"] = sum(1 for v, r, _, _ in trace if v and not r)
        return runs

    def stream(self, completions, *, breaks=frozenset()):
        """Send ``completions`` as one RC stream and check every chunk."""
        return self.phases([(completions, breaks)])[0]


def starts_per_beat(beats, data_width, segments):
    """How many TLPs start in each beat (from the side band, as RcSink reads it)."""
    if segments == 1:
        return []
    base = 64 if data_width == 512 else 32
    return [bin((b["user"] >> base) & ((1 << segments) - 1)).count("1") for b in beats]


# ---- tests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("width,straddle,message", [
    (128, 0, "data_width must be 256 or 512"),
    (512, 1, "straddle must be 0, 2 or 4"),
    (512, 3, "straddle must be 0, 2 or 4"),
    (256, 4, "need the 512-bit interface"),
])
def test_rejects_bad_parameters(width, straddle, message):
    with pytest.raises(ValueError, match=message):
        RcParser(data_width=width, straddle=straddle)


@pytest.mark.parametrize("width,straddle", CONFIGS, ids=CONFIG_IDS)
def test_members(width, straddle):
    dut = RcParser(data_width=width, straddle=straddle)
    # PG213 RC tuser: 161 bits at 512, 75 at 256; dword keep.
    assert len(dut.rc.payload.data) == width
    assert len(dut.rc.payload.keep) == width // 32
    assert len(dut.rc.payload.user) == {512: 161, 256: 75}[width]
    assert len(dut.cpl.payload.data) == width
    assert len(dut.cpl.payload.keep) == width // 32
    assert len(dut.cpl.payload.desc.as_value()) == 96
    assert len(dut.cpl.payload.window) == {512: 6, 256: 7}[width]    # address bits 11:6 or 11:5


def test_packer_side_band():
    """The packer's tuser against RcSource's packing, worked by hand for small cases."""
    rng = random.Random(1)
    one = [data_completion(rng, 0x10, 4) for _ in range(5)]         # 4 dwords each
    frames = [rc_frame(c) for c in one]
    b = pack_rc_beats(frames, 512, 4)
    assert len(b) == 2
    user = b[0]["user"]
    assert (user >> 64) & 0xF == 0xF                                # four starts
    assert [(user >> (68 + 2 * k)) & 3 for k in range(4)] == [0, 1, 2, 3]
    assert (user >> 76) & 0xF == 0xF                                # four ends
    assert [(user >> (80 + 4 * k)) & 0xF for k in range(4)] == [3, 7, 11, 15]
    assert b[0]["keep"] == 0xFFFF and b[0]["last"] == 0
    assert (b[1]["user"] >> 64) & 0xF == 1 and b[1]["keep"] == 0xF
    b = pack_rc_beats(frames[:2], 512, 2)
    assert len(b) == 1 and [(b[0]["user"] >> (68 + 2 * k)) & 3 for k in range(2)] == [0, 2]
    assert b[0]["keep"] == 0x0F0F
    b = pack_rc_beats(frames[:2], 256, 2)
    assert len(b) == 1 and (b[0]["user"] >> 32) & 3 == 3
    assert (b[0]["user"] >> 34) & 0xFF == (1 | 3 << 1) | (1 | 7 << 1) << 4
    b = pack_rc_beats(frames[:2], 256, 1)
    assert [x["last"] for x in b] == [1, 1] and b[0]["keep"] == 0xF
    # A frame the source did not have queued yet starts a new beat.
    b = pack_rc_beats(frames[:2], 512, 4, breaks={1})
    assert len(b) == 2 and b[0]["keep"] == 0xF and (b[1]["user"] >> 64) & 0xF == 1


@pytest.mark.parametrize("width,straddle", CONFIGS, ids=CONFIG_IDS)
def test_single_completions(width, straddle):
    """Completions alone on the link, of 1 to 1024 bytes, at every dword offset in a window
    (and a random byte offset in the dword)."""
    rng = random.Random(12)
    lanes = width // 32
    cpls = []
    for nbytes in [1, 3, 4, 5, 13, 4 * lanes, 4 * lanes + 1, 256, 1024]:
        for dw in range(lanes):
            base = rng.randrange((4096 - nbytes - 4 * lanes) // (4 * lanes) + 1) * 4 * lanes
            cpls.append(data_completion(rng, base + 4 * dw + rng.randrange(4), nbytes))
    Bench(width, straddle, seed=11).phases([[c] for c in cpls], idle=1)


@pytest.mark.parametrize("width,straddle", CONFIGS, ids=CONFIG_IDS)
def test_end_of_page_and_errors(width, straddle):
    """Completions whose last byte is the last of the 4 KiB page; then completions without
    payload at every segment position, between data completions."""
    rng = random.Random(21)
    page_end = []
    for nbytes in [1, 2, 3, 4, 5, 7, 60, 64, 68, 128, 252, 256, 1024, 4092, 4096]:
        page_end.append(data_completion(rng, 4096 - nbytes, nbytes))
        page_end.append(error_completion(rng, lower_address=rng.choice([0xFFC, 0xFFF])))
    page_end.append(data_completion(rng, 0xFFF, 1))
    page_end.append(data_completion(rng, 0xF40, 192))
    errors = []
    for lead in range(5):                     # 0 to 4 one-dword completions before the errors
        errors += [data_completion(rng, rng.randrange(0, 4093), 1 + rng.randrange(3))
                   for _ in range(lead)]
        errors += [error_completion(rng) for _ in range(1 + lead % 3)]
        errors.append(data_completion(rng, rng.randrange(0, 3000), rng.randrange(1, 1025)))
        errors.append(error_completion(rng))
    Bench(width, straddle, seed=22).phases([page_end, errors])


@pytest.mark.parametrize("width,straddle", CONFIGS, ids=CONFIG_IDS)
def test_back_to_back_mixed(width, straddle):
    """Mixed sizes back to back with no idle cycle; straddled beats carry 2 and 4 starts."""
    rng = random.Random(31 + width + straddle)
    cpls = []
    while len(cpls) < 150:
        if rng.random() < 0.25:
            # A run of completions of one segment each: one payload dword or none.
            for _ in range(rng.randrange(2, 7)):
                if rng.random() < 0.3:
                    cpls.append(error_completion(rng))
                else:
                    la = rng.randrange(4096)
                    cpls.append(data_completion(rng, la, rng.randrange(1, 4 - la % 4 + 1)))
        else:
            cpls.append(random_completion(rng, max_bytes=300, tiny_rate=0.3, error_rate=0.1))
    b = Bench(width, straddle, seed=32)
    run = b.stream(cpls)
    beats = run["beats"]
    starts = starts_per_beat(beats, width, b.segments)
    if b.segments > 1:
        for k in range(2, b.segments + 1):
            assert starts.count(k) >= 3, f"only {starts.count(k)} beats with {k} starts"
    span = run["taken"][-1] - run["accepted"][0] + 1
    print(f"\n{len(beats)} beats, {len(run['taken'])} chunks, {span} clocks, "
          f"rc.ready low {run['stalled']}")
    # The beats come in no slower than the chunks go out.
    assert span <= max(len(beats), len(run["taken"])) + 20


@pytest.mark.parametrize("width,straddle", CONFIGS, ids=CONFIG_IDS)
def test_random_gaps_and_stalls(width, straddle):
    """Random traffic with idle RC cycles, beats the source sends half empty, cpl stalls."""
    rng = random.Random(51 + width + straddle)
    cpls = [random_completion(rng, max_bytes=600) for _ in range(120)]
    breaks = {i for i in range(1, len(cpls)) if rng.random() < 0.2}
    Bench(width, straddle, seed=52, gap=0.3, stall=0.4).stream(cpls, breaks=breaks)


# Rate measurements: RC never idle, cpl always ready. One simulation per configuration runs
# every phase; the tests below check one phase each.

_PERF_PHASES = ["latency", "mps256", "aligned64", "bursty", "tiny"]


@pytest.fixture(scope="module", params=CONFIGS, ids=CONFIG_IDS)
def perf(request):
    width, straddle = request.param
    rng = random.Random(71)
    phases = {
        "latency": [data_completion(rng, 0x124, 8)],
        "mps256": [data_completion(rng, 256 * rng.randrange(16), 256) for _ in range(32)],
        "aligned64": [data_completion(rng, 64 * rng.randrange(64), 64) for _ in range(64)],
        # 256-byte completions with an error completion after every fourth: a beat closing two
        # chunks is followed by one closing none (fewer chunks than beats overall).
        "bursty": [c for _ in range(8) for c in
                   [data_completion(rng, 256 * rng.randrange(16), 256) for _ in range(4)]
                   + [error_completion(rng)]],
        # One- and two-dword completions: up to four per beat.
        "tiny": [data_completion(rng, rng.randrange(4096 - 4), 1 + rng.randrange(4))
                 for _ in range(192)],
    }
    b = Bench(width, straddle, seed=61)
    runs = b.phases([phases[k] for k in _PERF_PHASES])
    out = dict(zip(_PERF_PHASES, runs))
    for run in runs:
        run["span"] = run["taken"][-1] - run["accepted"][0] + 1
        assert len(run["accepted"]) == len(run["beats"])
    out["config"] = (width, straddle)
    return out


def _figures(perf, name):
    run = perf[name]
    width, straddle = perf["config"]
    print(f"\n{width}-bit straddle {straddle}, {name}: {len(run['completions'])} completions in "
          f"{len(run['beats'])} beats, {len(run['taken'])} chunks, {run['span']} clocks from "
          f"first beat to last chunk, rc.ready low {run['stalled']} clocks")
    return run


def test_latency(perf):
    """A one-beat completion's chunk is taken ``LATENCY`` clocks after its beat."""
    run = _figures(perf, "latency")
    assert len(run["beats"]) == 1 and len(run["taken"]) == 1
    assert run["taken"][0] - run["accepted"][0] == LATENCY


@pytest.mark.parametrize("name", ["mps256", "aligned64"])
def test_throughput(perf, name):
    """Aligned completions of 256 bytes (MPS 256) and of 64 bytes, back to back: the input is
    never stalled (4 chunks per 4.25 beats and 4 completions per 5 beats with 4-way straddle)
    and every chunk is out ``LATENCY`` clocks after the last beat at the latest."""
    run = _figures(perf, name)
    beats = run["beats"]
    assert run["stalled"] == 0, f"rc.ready low for {run['stalled']} clocks with valid high"
    assert run["accepted"][-1] - run["accepted"][0] == len(beats) - 1
    assert run["span"] <= len(beats) + LATENCY, \
        f"{len(run['taken'])} chunks from {len(beats)} beats took {run['span']} clocks"
    if perf["config"] == (512, 4):
        per_cpl = {"mps256": 4.25, "aligned64": 1.25}[name]
        assert len(beats) == per_cpl * len(run["completions"])


def test_bursty_events_do_not_stall(perf):
    """Two chunks closed by one beat and none by the next cost no input clock."""
    run = _figures(perf, "bursty")
    assert len(run["taken"]) < len(run["beats"])
    assert run["stalled"] == 0, f"rc.ready low for {run['stalled']} clocks with valid high"


def test_tiny_burst(perf):
    """More chunks than beats: a chunk leaves every clock from the first to the last, and the
    input is held back only as far as chunks outnumber beats."""
    run = _figures(perf, "tiny")
    taken, beats = run["taken"], run["beats"]
    assert taken == list(range(taken[0], taken[0] + len(taken))), "idle clock inside the burst"
    assert run["span"] <= max(len(beats), len(taken)) + LATENCY, \
        f"{len(taken)} chunks from {len(beats)} beats took {run['span']} clocks"
    if len(taken) > len(beats) + 40:
        assert run["stalled"] > 0, "more chunks than the buffer holds, yet rc.ready never dropped"


@pytest.mark.sweep
@pytest.mark.parametrize("width,straddle", CONFIGS, ids=CONFIG_IDS)
def test_sweep_sizes_and_offsets(width, straddle):
    """Every byte count from 1 to 1024 alone on the link (dword and byte offsets rotating);
    then, back to back with errors in between and random gaps, half-empty beats and stalls,
    every dword count from 1 to 1024, those up to 5 windows at every dword offset."""
    rng = random.Random(101)
    lanes = width // 32
    singles = []
    for nbytes in range(1, 1025):
        dw, byte = nbytes % lanes, (nbytes // lanes) % 4
        base = rng.randrange((4096 - nbytes - 4 * lanes) // (4 * lanes) + 1) * 4 * lanes
        singles.append([data_completion(rng, base + 4 * dw + byte, nbytes)])
    mixed = []
    for n in range(1, 5 * lanes + 1):
        for dw in range(lanes):
            la = min(rng.randrange((1024 - n) // lanes + 1) * lanes + dw, 1024 - n)
            la = 4 * la + rng.randrange(4)
            mixed.append(data_completion(rng, la, max(1, 4 * n - la % 4 - rng.randrange(4))))
            if rng.random() < 0.1:
                mixed.append(error_completion(rng))
    for n in range(5 * lanes + 1, 1025):
        la = min(rng.randrange((1024 - n) // lanes + 1) * lanes + rng.randrange(lanes), 1024 - n)
        mixed.append(data_completion(rng, 4 * la, 4 * n))
    rng.shuffle(mixed)
    breaks = {i for i in range(1, len(mixed)) if rng.random() < 0.1}
    Bench(width, straddle, seed=102).phases(singles, idle=1)
    Bench(width, straddle, seed=103, gap=0.1, stall=0.1).stream(mixed, breaks=breaks)
