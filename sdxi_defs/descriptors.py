"""SDXI descriptors and operation groups as field tables.

Bit positions are offsets in the 64-byte little-endian descriptor (SDXI 1.0 chapter 6, digested
in ``shared/sdxi-spec.md`` section 4). Bodies the public sources leave open (WRT_IMM, REPCOPY,
CXT_UPD, AKEY_UPD and the vendor FILL) are this project's choices, written down in
docs/spec-choices.md ("Descriptors"). The host driver encodes with these tables; the context
engine decodes with the same field positions.
"""

import enum

from .fields import Access, Field, Structure


__all__ = [
    "OpGroup", "DmaBaseOp", "AdminOp", "IntrOp", "VendorOp", "SyncFilter", "FILL_PATTERN_SIZES",
    "DSC_GENERIC", "DSC_DMAB_NOP", "DSC_DMAB_COPY", "DSC_DMAB_WRT_IMM", "DSC_DMAB_REPCOPY",
    "DSC_INTR", "DSC_CXT_START", "DSC_CXT_STOP", "DSC_SYNC", "DSC_CXT_UPD", "DSC_AKEY_UPD",
    "DSC_RKEY_UPD",
    "DSC_VENDOR_FILL", "DESCRIPTORS", "WRT_IMM_MAX", "REPCOPY_BLOCK",
]

RW = Access.RW


class OpGroup(enum.IntEnum):
    """Descriptor ``type`` (Table 6-1); opb_000 bit = type - 1 except the vendor group (bit 5)."""
    DMABASE = 0x001
    ADMIN = 0x002
    ATOMIC = 0x003
    INTR = 0x004
    VENDOR = 0x400      # this project's vendor-defined group (docs/spec-choices.md)

    @property
    def opb_bit(self):
        """The group's bit in CAP1.opb_000_cap, CTL2.opb_000_avl and CXT_L1_ENT.opb_000_enb."""
        return 5 if self is OpGroup.VENDOR else self.value - 1

    @property
    def spec_name(self):
        """The group's name as SDXI 1.0 Table 6-1 gives it (the vendor group's is ours)."""
        return _GROUP_NAMES[self]

    @classmethod
    def in_mask(cls, opb):
        """The groups whose bits are set in an opb_000 mask, in bit order."""
        return [g for g in sorted(cls, key=lambda g: g.opb_bit) if opb >> g.opb_bit & 1]


_GROUP_NAMES = {OpGroup.DMABASE: "DmaBaseGrp", OpGroup.ADMIN: "AdminGrp",
                OpGroup.ATOMIC: "AtomicGrp", OpGroup.INTR: "IntrGrp",
                OpGroup.VENDOR: "VendorGrp"}


class DmaBaseOp(enum.IntEnum):
    NOP = 0x01
    WRT_IMM = 0x02
    COPY = 0x03
    REPCOPY = 0x04


class AdminOp(enum.IntEnum):
    FN_UPD = 0x00
    CXT_UPD = 0x01
    AKEY_UPD = 0x02
    CXT_START_NM = 0x03
    CXT_STOP = 0x04
    ADM_INTR = 0x05
    SYNC = 0x06
    RKEY_UPD = 0x07
    CXT_START_RS = 0x08


class IntrOp(enum.IntEnum):
    INTR = 0x00


class VendorOp(enum.IntEnum):
    FILL = 0x01


class SyncFilter(enum.IntEnum):
    """DSC_SYNC.flt (Table 6-22)."""
    CXT = 0
    STOP = 1
    AKEY = 2
    RKEY = 3
    FN = 4


#: FILL pattern sizes in bytes, by the descriptor's ``psz`` code.
FILL_PATTERN_SIZES = (8, 16, 32)
WRT_IMM_MAX = 32          #: bytes of immediate data a WRT_IMM carries
REPCOPY_BLOCK = 4096      #: bytes of source a REPCOPY replicates

_HEADER = (
    Field("vl", 0, 1, RW),
    Field("se", 1, 1, RW),
    Field("fe", 2, 1, RW),
    Field("ch", 3, 1, RW),
    Field("csr", 4, 1, RW),
    Field("rb", 5, 1, RW),
    Field("subtype", 8, 8, RW),
    Field("type", 16, 11, RW),
)
_FOOTER = (
    Field("np", 448, 1, RW),
    Field("csb_ptr", 453, 59, RW),     # CST_BLK address bits 63:5
)
_ADMIN_RANGE = (
    Field("vf", 47, 1, RW),
    Field("vf_num", 48, 16, RW),
    Field("cxt_start", 64, 16, RW),
    Field("cxt_end", 80, 16, RW),
)


def _descriptor(name, spec, body):
    return Structure(name, 64, spec=spec, fields=_HEADER + tuple(body) + _FOOTER)


DSC_GENERIC = _descriptor("DSC_GENERIC", "Table 6-3", ())
DSC_DMAB_NOP = _descriptor("DSC_DMAB_NOP", "Table 6-6", ())
DSC_DMAB_COPY = _descriptor("DSC_DMAB_COPY", "Table 6-8", (
    Field("size", 32, 32, RW),          # bytes - 1
    Field("attr_src", 64, 4, RW),
    Field("attr_dst", 68, 4, RW),
    Field("akey0", 96, 16, RW),         # source
    Field("akey1", 112, 16, RW),        # destination
    Field("addr0", 128, 64, RW),
    Field("addr1", 192, 64, RW),
))
# Project choices (docs/spec-choices.md): akeyN qualifies addrN, as in COPY.
DSC_DMAB_WRT_IMM = _descriptor("DSC_DMAB_WRT_IMM", "prototype + project choice", (
    Field("size", 32, 32, RW),          # bytes - 1, at most WRT_IMM_MAX - 1
    Field("attr_dst", 68, 4, RW),
    Field("akey0", 96, 16, RW),
    Field("addr0", 128, 64, RW),        # destination
    Field("data", 192, 256, RW),        # bytes 24-55
))
DSC_DMAB_REPCOPY = _descriptor("DSC_DMAB_REPCOPY", "project choice", (
    Field("count", 32, 32, RW),         # destination blocks - 1
    Field("attr_src", 64, 4, RW),
    Field("attr_dst", 68, 4, RW),
    Field("akey0", 96, 16, RW),
    Field("akey1", 112, 16, RW),
    Field("addr0", 128, 64, RW),        # REPCOPY_BLOCK bytes of source
    Field("addr1", 192, 64, RW),        # count + 1 consecutive blocks
))
DSC_VENDOR_FILL = _descriptor("DSC_VENDOR_FILL", "project choice (vendor group)", (
    Field("size", 32, 32, RW),          # bytes - 1
    Field("psz", 64, 2, RW),            # pattern size code (FILL_PATTERN_SIZES)
    Field("attr_dst", 68, 4, RW),
    Field("akey0", 96, 16, RW),
    Field("addr0", 128, 64, RW),        # destination; the pattern starts at its first byte
    Field("pattern", 192, 256, RW),     # bytes 24-55, the first psz bytes used
))
DSC_INTR = _descriptor("DSC_INTR", "Table 6-12", (
    Field("akey", 96, 16, RW),
))
DSC_CXT_START = _descriptor("DSC_CXT_START", "Table 6-14", _ADMIN_RANGE + (
    Field("dv", 46, 1, RW),
    Field("db_value", 128, 64, RW),
))
DSC_CXT_STOP = _descriptor("DSC_CXT_STOP", "Table 6-15", _ADMIN_RANGE + (
    Field("hs", 45, 1, RW),
))
DSC_SYNC = _descriptor("DSC_SYNC", "Table 6-22", _ADMIN_RANGE + (
    Field("flt", 32, 3, RW),
    Field("key_start", 96, 16, RW),
    Field("key_end", 112, 16, RW),
))
DSC_CXT_UPD = _descriptor("DSC_CXT_UPD", "prototype + project choice", _ADMIN_RANGE)
DSC_AKEY_UPD = _descriptor("DSC_AKEY_UPD", "prototype + project choice", _ADMIN_RANGE + (
    Field("key_start", 96, 16, RW),
    Field("key_end", 112, 16, RW),
))
DSC_RKEY_UPD = _descriptor("DSC_RKEY_UPD", "project choice", _ADMIN_RANGE + (
    Field("key_start", 96, 16, RW),
    Field("key_end", 112, 16, RW),
))

#: (type, subtype) -> layout, for every descriptor the engine executes.
DESCRIPTORS = {
    (OpGroup.DMABASE, DmaBaseOp.NOP): DSC_DMAB_NOP,
    (OpGroup.DMABASE, DmaBaseOp.WRT_IMM): DSC_DMAB_WRT_IMM,
    (OpGroup.DMABASE, DmaBaseOp.COPY): DSC_DMAB_COPY,
    (OpGroup.DMABASE, DmaBaseOp.REPCOPY): DSC_DMAB_REPCOPY,
    (OpGroup.INTR, IntrOp.INTR): DSC_INTR,
    (OpGroup.ADMIN, AdminOp.CXT_UPD): DSC_CXT_UPD,
    (OpGroup.ADMIN, AdminOp.AKEY_UPD): DSC_AKEY_UPD,
    (OpGroup.ADMIN, AdminOp.RKEY_UPD): DSC_RKEY_UPD,
    (OpGroup.ADMIN, AdminOp.CXT_START_NM): DSC_CXT_START,
    (OpGroup.ADMIN, AdminOp.CXT_START_RS): DSC_CXT_START,
    (OpGroup.ADMIN, AdminOp.CXT_STOP): DSC_CXT_STOP,
    (OpGroup.ADMIN, AdminOp.SYNC): DSC_SYNC,
    (OpGroup.VENDOR, VendorOp.FILL): DSC_VENDOR_FILL,
}
