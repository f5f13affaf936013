"""RqFramer: requester TLP beats in, PG213 RQ beats out.

Every TLP is decoded from the RQ beats with the algorithm of cocotbext's RqSink (one segment,
or two with straddle) and compared with the TLP that went in; expected beat counts come from
the PG213 placement rules (``ideal_beat_count``), not from the framer.
"""

import random

import pytest

from hdl.pcie.layouts import RqDescriptor
from hdl.pcie.rq_framer import RqFramer

from .rq_helpers import RqBench, ideal_beat_count, random_read, random_write, rq_descriptor


CONFIGS = [(512, True), (512, False), (256, False)]
IDS = [f"{w}{'-straddle' if s else ''}" for w, s in CONFIGS]
BUFFER_BEATS = 34     # the framer's documented buffer: 32 in memory + 2 in the window


def bench(config, **kwargs):
    """A bench around a framer, after checking its RQ port widths (PG213: tuser 137 bits at
    512, 62 at 256)."""
    w, s = config
    dut = RqFramer(data_width=w, straddle=s)
    layout = dut.signature.members["rq"].signature.members["payload"].shape
    assert (layout["data"].width, layout["keep"].width, layout["user"].width) == \
        (w, w // 32, {512: 137, 256: 62}[w])
    return RqBench(dut, **kwargs)


def beats_of(tlp, w):
    return max(1, -(-len(tlp.payload) // (w // 32)))


def run_stream(config, tlps, *, name, seed=1, in_gap=0.0, ready=None, max_cycles=None):
    """Send ``tlps``, wait until they are all on RQ, check everything."""
    b = bench(config, seed=seed, in_gap=in_gap, ready=ready)
    beats = sum(beats_of(t, config[0]) for t in tlps)
    limit = max_cycles or 100 + 8 * beats + 4 * len(tlps)

    async def body(ctx):
        await b.send(ctx, tlps)
        await b.wait_out(ctx, len(tlps), max_cycles=limit)
        for _ in range(3):
            await ctx.tick()

    return b.run(body, name)


# ---- construction and the input contract ---------------------------------------------------

def test_constructor_rejects_bad_parameters():
    with pytest.raises(ValueError, match="straddle"):
        RqFramer(data_width=256, straddle=True)
    with pytest.raises(ValueError, match="data_width"):
        RqFramer(data_width=128, straddle=False)


def test_descriptor_layout_is_pg213():
    """The contract's RqDescriptor puts every field where PG213 (and cocotbext) read it."""
    rng = random.Random(7)
    for _ in range(50):
        f = dict(req_type=rng.getrandbits(4), address=rng.getrandbits(62) << 2,
                 dword_count=rng.getrandbits(11), requester_id=rng.getrandbits(16),
                 tag=rng.getrandbits(8), completer_id=rng.getrandbits(16),
                 requester_id_enable=rng.getrandbits(1), tc=rng.getrandbits(3),
                 attr=rng.getrandbits(3), at=rng.getrandbits(2), poisoned=rng.getrandbits(1),
                 force_ecrc=rng.getrandbits(1))
        value = RqDescriptor.const({**{k: v for k, v in f.items() if k != "address"},
                                    "address": f["address"] >> 2}).as_value().value
        want = sum(d << 32 * i for i, d in enumerate(rq_descriptor(**f)))
        assert value == want, f


# ---- functional ------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_read_requests(config):
    rng = random.Random(11)
    tlps = [random_read(rng) for _ in range(40)]
    run_stream(config, tlps, name="rq_reads", seed=2, in_gap=0.3, ready=0.3)


WRITE_SIZES = sorted({*range(1, 21), *range(26, 38), *range(58, 70), 124, 128, 132, 200, 252,
                      253, 256})


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_write_sizes(config):
    """Writes of 1-20 dwords and around every beat boundary up to 256 dwords, back to back."""
    rng = random.Random(12)
    tlps = [random_write(rng, n) for n in WRITE_SIZES]
    run_stream(config, tlps, name="rq_write_sizes", seed=3)


@pytest.mark.sweep
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_write_sizes_all(config):
    rng = random.Random(13)
    sizes = list(range(1, 257))
    rng.shuffle(sizes)
    tlps = [random_write(rng, n) for n in sizes]
    run_stream(config, tlps, name="rq_write_sizes_all", seed=4, in_gap=0.1, ready=0.1)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_1024_byte_writes(config):
    """Max_Payload_Size writes (256 dwords) among reads, with input gaps and RQ stalls: the
    store-and-forward buffer keeps rq.valid high inside each TLP."""
    rng = random.Random(14)
    tlps = []
    for _ in range(6):
        tlps.append(random_write(rng, 256))
        tlps.append(random_read(rng))
    run_stream(config, tlps, name="rq_1024", seed=5, in_gap=0.3, ready=0.3)


def random_mix(rng, count, *, max_dw=256):
    tlps = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:
            tlps.append(random_read(rng))
        elif kind < 0.7:
            tlps.append(random_write(rng, rng.randint(1, 8)))
        else:
            tlps.append(random_write(rng, rng.randint(1, max_dw)))
    return tlps


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("in_gap,ready", [(0.0, None), (0.3, 0.3), (0.05, 0.6)],
                         ids=["flowing", "gaps-stalls", "stalled"])
def test_mixed_reads_and_writes(config, in_gap, ready):
    rng = random.Random(15)
    tlps = random_mix(rng, 60, max_dw=64)
    run_stream(config, tlps, name="rq_mixed", seed=6, in_gap=in_gap, ready=ready)


@pytest.mark.sweep
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("seed", range(8))
def test_mixed_sweep(config, seed):
    rng = random.Random(100 + seed)
    tlps = random_mix(rng, 150)
    in_gap = rng.choice([0.0, 0.1, 0.5])
    ready = rng.choice([None, 0.2, 0.5, 0.8])
    run_stream(config, tlps, name="rq_mixed_sweep", seed=seed, in_gap=in_gap, ready=ready)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_oversize_tlp_is_cut_through(config):
    """A TLP longer than the buffer (a 4096-byte write) is started once the buffer is full
    rather than blocking forever."""
    rng = random.Random(16)
    tlps = [random_read(rng), random_write(rng, 1024), random_read(rng), random_write(rng, 3)]
    b = run_stream(config, tlps, name="rq_oversize", seed=7)
    # It started before its last beat arrived: store and forward could not have held it.
    assert b.latency[1] < 0


# ---- throughput and latency -----------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_lone_read_latency(config):
    """A read request presented to an idle framer is on RQ two clocks after it was accepted."""
    rng = random.Random(17)
    tlps = [random_read(rng) for _ in range(4)]
    b = bench(config, seed=8)

    async def body(ctx):
        for i, tlp in enumerate(tlps):
            await b.send(ctx, [tlp])
            await b.wait_out(ctx, i + 1, max_cycles=10)
            for _ in range(5):
                await ctx.tick()

    b.run(body, "rq_latency")
    assert b.latency == [2] * len(tlps), b.latency


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_read_stream(config):
    """Reads arriving one per clock: with straddle they leave two per beat; without, one per
    beat with no idle clock; either way the RQ keeps up with the input."""
    rng = random.Random(18)
    n = 64
    tlps = [random_read(rng) for _ in range(n)]
    b = run_stream(config, tlps, name="rq_read_stream", seed=9)
    assert b.rq_beats == (n // 2 if config[1] else n), b.rq_beats
    # From the first RQ beat to the last: input-limited, one read per clock.
    assert b.last_rq_edge - b.first_rq_edge <= n, (b.first_rq_edge, b.last_rq_edge)


def backlog_sets(w):
    """TLP sets that fit the buffer: reads, small writes, and writes ending in each half."""
    rng = random.Random(19)
    reads = [random_read(rng) for _ in range(32)]
    small = [random_read(rng) for _ in range(8)]
    for _ in range(4):
        small += [random_write(rng, rng.randint(1, 20)), random_read(rng), random_read(rng)]
    small += [random_write(rng, 4), random_read(rng), random_write(rng, 12), random_write(rng, 5)]
    big = []
    for n in ((100, 36, 64, 68, 4, 60, 1) if w == 512 else (44, 20, 28, 4, 12, 1)):
        big += [random_write(rng, n), random_read(rng)]
    return {"reads": reads, "small": small, "big": big}


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@pytest.mark.parametrize("kind", ["reads", "small", "big"])
def test_backlog_drains_at_full_rate(config, kind):
    """TLPs waiting in the buffer (RQ held off until all are in) leave without an idle clock,
    in exactly the beats the PG213 placement rules allow: with straddle, reads two per beat and
    every TLP that can start at dword 8 does."""
    tlps = backlog_sets(config[0])[kind]
    w = config[0]
    assert sum(beats_of(t, w) for t in tlps) <= BUFFER_BEATS
    hold = 80
    b = run_stream(config, tlps, name="rq_backlog", seed=10, ready=lambda cycle: cycle >= hold)
    want = ideal_beat_count(tlps, *config)
    assert b.rq_beats == want, (b.rq_beats, want)
    assert b.last_rq_edge - hold + 1 == want, "idle RQ clocks while draining the backlog"
    if kind == "reads":
        assert want == (len(tlps) // 2 if config[1] else len(tlps))
    elif config[1]:
        assert want < ideal_beat_count(tlps, w, False)     # the straddle saved beats


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_256_byte_write_stream(config):
    """Back-to-back 256-byte writes: 4.5 beats each with straddle, 5 without (9 at 256 bits),
    with rq.valid high from the first beat to the last."""
    rng = random.Random(20)
    n = 16
    tlps = [random_write(rng, 64) for _ in range(n)]
    b = run_stream(config, tlps, name="rq_256B", seed=11)
    per_tlp = {(512, True): 4.5, (512, False): 5, (256, False): 9}[config]
    assert b.rq_beats == per_tlp * n, b.rq_beats
    assert ideal_beat_count(tlps, *config) == per_tlp * n
    assert b.last_rq_edge - b.first_rq_edge + 1 == b.rq_beats, "idle RQ clock between writes"


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_write_stream_no_bubble(config):
    """Back-to-back writes of one size each, input never idle: RQ is busy every clock from the
    first beat to the last (for these sizes the input takes at least as many beats as RQ, so
    each write is complete when the one before it ends), and the RQ beats are at least the
    placement-rule minimum and at most one TLP per beat."""
    rng = random.Random(21)
    w = config[0]
    for size in (12, 28, 100, 256):
        tlps = [random_write(rng, size) for _ in range(6)]
        b = run_stream(config, tlps, name="rq_no_bubble", seed=12)
        assert b.last_rq_edge - b.first_rq_edge + 1 == b.rq_beats, size
        assert ideal_beat_count(tlps, w, config[1]) <= b.rq_beats \
            <= ideal_beat_count(tlps, w, False), size
