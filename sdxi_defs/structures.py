"""SDXI in-memory structures as field tables (pure Python; SDXI 1.0 chapter 3 and Table 6-4).

Bit positions are offsets in the structure's little-endian bytes, as digested in
``shared/sdxi-spec.md`` section 3. The host driver encodes with these tables; the context
engine builds its ``lib.data`` layouts from them.
"""

import enum

from .fields import Access, Field, Structure


__all__ = ["CXT_L2_ENT", "CXT_L1_ENT", "CXT_CTL", "CXT_STS", "AKEY_ENT", "CST_BLK",
           "ERRLOG_HD_ENT", "CxtState", "L2_ENTRIES", "L1_ENTRIES", "cxt_l2_index", "cxt_l1_index",
           "RKEY_ENT", "LOCAL_SFUNC", "sfunc_of", "function_of_sfunc"]

RW = Access.RW

L2_ENTRIES = 512
L1_ENTRIES = 128


#: AKEY_ENT.tgt_sfunc of a key for the function that owns the table (docs/spec-choices.md,
#: "Functions"): what Linux writes. So no function's CAP0.sfunc is 0.
LOCAL_SFUNC = 0


def sfunc_of(function):
    """CAP0.sfunc of the card's PCIe function ``function`` (all of a card's functions are one
    function group, numbered from 1)."""
    return function + 1


def function_of_sfunc(sfunc):
    """The PCIe function whose CAP0.sfunc is ``sfunc`` (not ``LOCAL_SFUNC``)."""
    return sfunc - 1


def cxt_l2_index(cxt_id):
    """Context L2 table index of a context (sdxi-spec.md 5.6: ID >> 7)."""
    return cxt_id >> 7


def cxt_l1_index(cxt_id):
    return cxt_id & (L1_ENTRIES - 1)


class CxtState(enum.IntEnum):
    """CXT_STS.state (Table 3-6)."""
    STOP_SW = 0x0
    RUN = 0x1
    STOPG_SW = 0x2
    STOP_FN = 0x4
    STOPG_FN = 0x6
    ERR_FN = 0xF


CXT_L2_ENT = Structure("CXT_L2_ENT", 8, spec="Table 3-2", fields=(
    Field("vl", 0, 1, RW),
    Field("lv01_ptr", 12, 52, RW),   # L1 table address bits 63:12
))

CXT_L1_ENT = Structure("CXT_L1_ENT", 32, spec="Table 3-3", fields=(
    Field("vl", 0, 1, RW),
    Field("ka", 1, 1, RW),
    Field("pv", 2, 1, RW),
    Field("pr", 5, 1, RW),                 # privileged access to the context's structures
    Field("cxt_ctl_ptr", 6, 58, RW),       # CXT_CTL address bits 63:6
    Field("akey_sz", 64, 4, RW),
    Field("akey_ptr", 76, 52, RW),         # AKey table address bits 63:12
    Field("cxt_pasid", 128, 20, RW),
    Field("max_buffer", 148, 4, RW),
    Field("opb_000_enb", 160, 32, RW),
))

CXT_CTL = Structure("CXT_CTL", 64, spec="Table 3-4", fields=(
    Field("vl", 0, 1, RW),
    Field("qos", 2, 2, RW),
    Field("se", 4, 1, RW),
    Field("csa", 5, 1, RW),
    Field("ds_ring_ptr", 6, 58, RW),       # ring address bits 63:6
    Field("ds_ring_sz", 64, 32, RW),       # descriptors in the ring
    Field("cxt_sts_ptr", 132, 60, RW),     # CXT_STS address bits 63:4
    Field("write_index_ptr", 195, 61, RW), # write index address bits 63:3
))

CXT_STS = Structure("CXT_STS", 16, spec="Tables 3-5, 3-6", fields=(
    Field("state", 0, 4, RW),
    Field("read_index", 64, 64, RW),
))

AKEY_ENT = Structure("AKEY_ENT", 16, spec="Table 3-7", fields=(
    Field("vl", 0, 1, RW),
    Field("iv", 1, 1, RW),
    Field("pv", 2, 1, RW),
    Field("ste", 3, 1, RW),
    Field("intr_num", 4, 11, RW),
    Field("tgt_sfunc", 16, 16, RW),
    Field("pasid", 32, 20, RW),
    Field("pr", 61, 1, RW),
    Field("ph", 62, 2, RW),
    Field("stag", 64, 16, RW),
    Field("rkey", 96, 16, RW),
))

#: An RKey table entry (16 bytes): lets function ``req_sfunc`` reach this function's memory
#: through an AKey that names this function and the entry's index. The layout is the
#: prototype's (sdxi-spec.md 3.8), pr placed as in AKEY_ENT (docs/spec-choices.md, "RKeys").
RKEY_ENT = Structure("RKEY_ENT", 16, spec="prototype + project choice", fields=(
    Field("vl", 0, 1, RW),
    Field("iv", 1, 1, RW),
    Field("pv", 2, 1, RW),
    Field("ste", 3, 1, RW),
    Field("intr_num", 4, 11, RW),
    Field("req_sfunc", 16, 16, RW),
    Field("pasid", 32, 20, RW),
    Field("pr", 61, 1, RW),
    Field("ph", 62, 2, RW),
    Field("stag", 64, 16, RW),
))

CST_BLK = Structure("CST_BLK", 32, spec="Table 6-4", fields=(
    Field("signal", 0, 64, RW),
    Field("er", 95, 1, RW),
))

ERRLOG_HD_ENT = Structure("ERRLOG_HD_ENT", 64, spec="section 3.4 (error log header entry)", fields=(
    Field("vl", 0, 1, RW),
    Field("step", 8, 6, RW),
    Field("type", 16, 11, RW),
    Field("cv", 32, 1, RW),
    Field("div", 33, 1, RW),
    Field("bv", 34, 1, RW),
    Field("buf", 36, 3, RW),
    Field("sub_step", 40, 4, RW),
    Field("re", 44, 3, RW),
    Field("cxt_num", 48, 16, RW),
    Field("dsc_index", 64, 64, RW),
    Field("err_class", 352, 16, RW),
))
