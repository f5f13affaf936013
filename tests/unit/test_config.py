"""EngineConfig: argument checks, capability registers decoded from the spec's bit positions
(sdxi-spec.md 1.5 and 1.6), and elaboration of every variant."""

import re

import pytest
from amaranth.back import rtlil

from hdl.config import TUSER_WIDTHS, VARIANTS, EngineConfig
from hdl.top import SdxiEngine


@pytest.mark.parametrize("kwargs, message", [
    (dict(data_width=128), "data_width must be one of [256, 512], not 128"),
    (dict(data_width=256, rq_straddle=True, rc_straddle=2),
     "RQ straddle needs the 512-bit interface"),
    (dict(rc_straddle=3), "rc_straddle must be 0, 2 or 4, not 3"),
    (dict(rc_straddle=1), "rc_straddle must be 0, 2 or 4, not 1"),
    (dict(data_width=256, rq_straddle=False, rc_straddle=4),
     "four completions per RC beat need the 512-bit interface"),
    (dict(max_cxt=0), "max_cxt must be 1 to 65535, not 0"),
    (dict(max_cxt=0x10000), "max_cxt must be 1 to 65535, not 65536"),
    (dict(max_cxt=100), "max_cxt + 1 must be a power of two (BAR2 size), not 101"),
    (dict(max_cxt=2), "max_cxt + 1 must be a power of two (BAR2 size), not 3"),
    (dict(msix_vectors=1),
     "msix_vectors must be 2 to 129 (vector 0 plus one per context), not 1"),
    (dict(msix_vectors=130),
     "msix_vectors must be 2 to 129 (vector 0 plus one per context), not 130"),
    (dict(max_cxt=1, msix_vectors=4),
     "msix_vectors must be 2 to 3 (vector 0 plus one per context), not 4"),
    (dict(max_cxt=4095, msix_vectors=2049),
     "msix_vectors must be 2 to 2048 (vector 0 plus one per context), not 2049"),
    # 0x38000..0x3C000 holds 1024 entries of 16 bytes.
    (dict(max_cxt=2047, msix_vectors=1025), "MSI-X table does not fit below the PBA"),
])
def test_argument_checks(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        EngineConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(data_width=256, rq_straddle=False, rc_straddle=0),
    dict(data_width=256, rq_straddle=False, rc_straddle=2),
    dict(max_cxt=1, msix_vectors=2),
    dict(max_cxt=1, msix_vectors=3),
    dict(max_cxt=0xFFFF, msix_vectors=1024),
    dict(max_cxt=2047, msix_vectors=1024),
])
def test_boundary_values_accepted(kwargs):
    EngineConfig(**kwargs)


def _bits(value, hi, lo):
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(max_cxt=15, db_stride=2, max_ds_ring_sz=6, max_akey_sz=3, max_buffer=5,
         max_errlog_sz=4, msix_vectors=8),
    dict(max_cxt=0xFFFF, db_stride=7, max_ds_ring_sz=31, max_akey_sz=15, max_buffer=15,
         max_errlog_sz=15, msix_vectors=64),
], ids=["default", "small", "field-maxima"])
def test_capability_registers(kwargs):
    cfg = EngineConfig(**kwargs)
    cap0, cap1 = cfg.cap0, cfg.cap1
    # CAP0: sfunc 15:0 (function 0's: 1), vf 16, cs_cap 18:17, db_stride 22:20,
    # max_ds_ring_sz 28:24, max_rkey_sz 39:32; everything else reserved.
    assert _bits(cap0, 15, 0) == 1
    assert _bits(cap0, 22, 20) == cfg.db_stride
    assert _bits(cap0, 28, 24) == cfg.max_ds_ring_sz
    assert cap0 & ~(0xFFFF | (0x7 << 20) | (0x1F << 24)) == 0, f"stray CAP0 bits in {cap0:#x}"
    # Every function's CAP0 is the same but for its sfunc, unique in the card's group.
    sfuncs = {_bits(cfg.cap0_of(f), 15, 0) for f in range(4)}
    assert sfuncs == {1, 2, 3, 4}
    assert {cfg.cap0_of(f) & ~0xFFFF for f in range(4)} == {cap0 & ~0xFFFF}
    # CAP1: max_buffer 3:0, rkey_cap 4 (0), mmio64 6 (1), max_errlog_sz 11:8,
    # max_akey_sz 15:12, max_cxt 31:16, opb_000_cap 63:32.
    assert _bits(cap1, 3, 0) == cfg.max_buffer
    assert _bits(cap1, 4, 4) == 0
    assert _bits(cap1, 6, 6) == 1
    assert _bits(cap1, 11, 8) == cfg.max_errlog_sz
    assert _bits(cap1, 15, 12) == cfg.max_akey_sz
    assert _bits(cap1, 31, 16) == cfg.max_cxt
    assert _bits(cap1, 63, 32) == cfg.opb_000_cap
    assert _bits(cap1, 7, 7) == 0 and _bits(cap1, 5, 5) == 0
    # VERSION: major 23:16 = 1, minor 7:0 = 0.
    assert cfg.version == 1 << 16
    # The metadata carries the same values, and BAR2 holds max_cxt + 1 doorbell pages.
    meta = cfg.metadata()
    assert int(meta["sdxi"]["cap0"], 16) == cap0
    assert int(meta["sdxi"]["cap1"], 16) == cap1
    bar2 = [b for b in meta["bars"] if b["index"] == 2][0]
    assert 1 << bar2["log2_size"] == (cfg.max_cxt + 1) * (4096 << cfg.db_stride)
    assert [b["log2_size"] for b in meta["bars"] if b["index"] == 0] == [18]


def test_tuser_widths_are_the_hard_block_s():
    # PG213 (pcie4c_uscale_plus), as cocotbext-pcie's models assert them.
    assert TUSER_WIDTHS[512] == {"cq": 183, "cc": 81, "rq": 137, "rc": 161}
    assert TUSER_WIDTHS[256] == {"cq": 88, "cc": 33, "rq": 62, "rc": 75}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_elaborate(name):
    cfg = VARIANTS[name]
    text = rtlil.convert(SdxiEngine(cfg), name="sdxi_engine")
    w = cfg.data_width
    for port, width in (("s_axis_cq_tdata", w), ("m_axis_cc_tdata", w),
                        ("s_axis_cq_tuser", TUSER_WIDTHS[w]["cq"]),
                        ("m_axis_cc_tuser", TUSER_WIDTHS[w]["cc"]),
                        ("m_axis_rq_tuser", TUSER_WIDTHS[w]["rq"]),
                        ("s_axis_rc_tuser", TUSER_WIDTHS[w]["rc"]),
                        ("cfg_max_payload", 2), ("cfg_interrupt_msix_address", 64)):
        assert re.search(rf"wire width {width} (input|output) \d+ +\\{port}\n", text), port
