"""SDXI descriptors, operation groups and error-log codes as field tables (pure Python).

Bit positions are offsets in the 64-byte little-endian descriptor (SDXI 1.0 chapter 6, digested
in ``shared/sdxi-spec.md`` section 4). Bodies the public sources leave open (WRT_IMM, REPCOPY,
CXT_UPD, AKEY_UPD and the vendor FILL) are this project's choices, written down in
docs/spec-choices.md ("Descriptors"). The host driver encodes with these tables; the context
engine decodes with the same field positions.
"""

import enum

from ..common.regdef import Access, Field, Structure


__all__ = [
    "OpGroup", "DmaBaseOp", "AdminOp", "IntrOp", "VendorOp", "SyncFilter", "FILL_PATTERN_SIZES",
    "DSC_GENERIC", "DSC_DMAB_NOP", "DSC_DMAB_COPY", "DSC_DMAB_WRT_IMM", "DSC_DMAB_REPCOPY",
    "DSC_INTR", "DSC_CXT_START", "DSC_CXT_STOP", "DSC_SYNC", "DSC_CXT_UPD", "DSC_AKEY_UPD",
    "DSC_VENDOR_FILL", "DESCRIPTORS", "ErrStep", "ErrSubStep", "ErrReaction", "ErrClass",
    "ERRLOG_TYPE", "WRT_IMM_MAX", "REPCOPY_BLOCK",
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
        return 5 if self is OpGroup.VENDOR else self.value - 1


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

#: (type, subtype) -> layout, for every descriptor the engine executes.
DESCRIPTORS = {
    (OpGroup.DMABASE, DmaBaseOp.NOP): DSC_DMAB_NOP,
    (OpGroup.DMABASE, DmaBaseOp.WRT_IMM): DSC_DMAB_WRT_IMM,
    (OpGroup.DMABASE, DmaBaseOp.COPY): DSC_DMAB_COPY,
    (OpGroup.DMABASE, DmaBaseOp.REPCOPY): DSC_DMAB_REPCOPY,
    (OpGroup.INTR, IntrOp.INTR): DSC_INTR,
    (OpGroup.ADMIN, AdminOp.CXT_UPD): DSC_CXT_UPD,
    (OpGroup.ADMIN, AdminOp.AKEY_UPD): DSC_AKEY_UPD,
    (OpGroup.ADMIN, AdminOp.CXT_START_NM): DSC_CXT_START,
    (OpGroup.ADMIN, AdminOp.CXT_START_RS): DSC_CXT_START,
    (OpGroup.ADMIN, AdminOp.CXT_STOP): DSC_CXT_STOP,
    (OpGroup.ADMIN, AdminOp.SYNC): DSC_SYNC,
    (OpGroup.VENDOR, VendorOp.FILL): DSC_VENDOR_FILL,
}

ERRLOG_TYPE = 0x7F7


class ErrStep(enum.IntEnum):
    """ERRLOG_HD_ENT.step: the processing step that failed (sdxi-spec.md 3.10)."""
    INTERNAL = 1
    CXT_L2 = 2
    CXT_L1 = 3
    CXT_CTL = 4
    CXT_STS = 5
    WRITE_INDEX = 6
    DESCRIPTOR = 7
    CST_BLK = 8
    ATOMIC_RETURN = 9
    DATA_BUFFER = 10
    AKEY = 11
    RKEY = 12


class ErrSubStep(enum.IntEnum):
    OTHER = 0
    ATF = 1     #: address translation failure
    DAF = 2     #: data access failure
    DVF = 3     #: data validation failure


class ErrReaction(enum.IntEnum):
    INFORMATIVE = 0
    CONTEXT_STOPPED = 1
    FUNCTION_STOPPED = 2


class ErrClass(enum.IntEnum):
    """ERRLOG_HD_ENT.err_class: this implementation's error classes (docs/spec-choices.md)."""
    INVALID_ENTRY = 0x01       #: a table entry or structure with vl = 0
    BAD_FIELD = 0x02           #: a structure field out of range (ring size, AKey size, pv)
    WRITE_INDEX_AHEAD = 0x03   #: the write index is more than a ring ahead of the read index
    UNKNOWN_OPCODE = 0x10
    GROUP_DISABLED = 0x11
    ADMIN_NOT_CXT0 = 0x12
    SIZE = 0x13                #: size above max_buffer or the operation's limit
    BAD_PARAMETER = 0x14       #: a context range, pattern size or vector out of range
    ADDRESS_WRAP = 0x15        #: an operand's byte range (or the ring) runs past 2^64 - 1
    AKEY_RANGE = 0x20          #: AKey index past the context's table
    AKEY_INVALID = 0x21        #: AKey entry vl = 0 (or iv = 0 for INTR)
    AKEY_UNSUPPORTED = 0x22    #: AKey entry asks for what is not implemented (tgt_sfunc)
    READ_UR = 0x31             #: DMA read errors: ReadError + 0x30
    READ_CA = 0x32
    READ_POISONED = 0x33
    READ_TIMEOUT = 0x34
    READ_MALFORMED = 0x35
    BUS_MASTER_OFF = 0x36      #: nothing was sent: bus mastering disabled
    WRITE_TIMEOUT = 0x37       #: a write was sent but the hard block never confirmed it
    ATF_NO_PASID = 0x41        #: address translation failures: 0x40 + hdl.mmu Fault
    ATF_NOT_PRESENT = 0x42
    ATF_WRITE = 0x43
    ATF_USER = 0x44
    ATF_RESERVED = 0x45
    ATF_READ_ERROR = 0x46

    @staticmethod
    def for_fault(fault):
        """The class of a translation ``Fault`` (an int or an Amaranth value)."""
        return 0x40 + fault

    @staticmethod
    def is_translation(err_class):
        return (err_class >> 4) == 0x4
