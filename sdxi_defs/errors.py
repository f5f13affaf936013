"""Error-log codes and the DMA and translation errors they are made from.

``ErrStep``, ``ErrSubStep`` and ``ErrReaction`` are SDXI's (ERRLOG_HD_ENT, sdxi-spec.md 3.10);
``ErrClass`` holds this implementation's classes (docs/spec-choices.md, "Error classes").
``ReadError`` and ``WriteError`` are what the DMA engines report per request (docs/dma.md);
``Fault`` (``page_tables``) is why a translation failed. ``READ_ERROR_CLASS``,
``WRITE_ERROR_CLASS`` and ``FAULT_CLASS`` are the one mapping from those to error classes: the
gateware builds its look-ups from them and the driver and tests read them.
"""

import enum

from .page_tables import Fault


__all__ = ["ERRLOG_TYPE", "ErrStep", "ErrSubStep", "ErrReaction", "ErrClass", "ReadError",
           "WriteError", "READ_ERROR_CLASS", "WRITE_ERROR_CLASS", "FAULT_CLASS"]

ERRLOG_TYPE = 0x7F7          #: ERRLOG_HD_ENT.type of a header entry


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
    """ERRLOG_HD_ENT.err_class: this implementation's error classes (docs/spec-choices.md).

    The high nibble groups them: 0x0 structures, 0x1 descriptors, 0x2 AKeys, 0x3 data access
    (DMA), 0x4 address translation.
    """
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
    AKEY_UNSUPPORTED = 0x22    #: AKey entry's tgt_sfunc names no function of the group
    RKEY_RANGE = 0x23          #: the target's RKey table is disabled or the index is past it
    RKEY_INVALID = 0x24        #: RKey entry vl = 0 (revoked), or iv = 0 for INTR
    RKEY_DENIED = 0x25         #: RKey entry's req_sfunc is not the requesting function
    READ_UR = 0x31             #: a read completed with Unsupported Request
    READ_CA = 0x32             #: a read completed with Completer Abort
    READ_POISONED = 0x33
    READ_TIMEOUT = 0x34
    READ_MALFORMED = 0x35
    BUS_MASTER_OFF = 0x36      #: nothing was sent: bus mastering disabled
    WRITE_TIMEOUT = 0x37       #: a write was sent but the hard block never confirmed it
    ATF_NO_PASID = 0x41        #: address translation failures, one per ``Fault``
    ATF_NOT_PRESENT = 0x42
    ATF_WRITE = 0x43
    ATF_USER = 0x44
    ATF_RESERVED = 0x45
    ATF_READ_ERROR = 0x46

    @staticmethod
    def is_translation(err_class):
        return (err_class >> 4) == 0x4


class ReadError(enum.IntEnum):
    """A DMA read request's status (``hdl/pcie/dma_read.py``, DMA_RD_STATUS.error)."""
    OK = 0
    UR = 1              #: a completion with Unsupported Request status
    CA = 2              #: a completion with Completer Abort status
    POISONED = 3        #: poisoned completion data (not written to the RAM)
    TIMEOUT = 4         #: a completion never came
    MALFORMED = 5       #: a completion that does not fit its request
    BUS_MASTER_OFF = 6  #: bus mastering disabled: the rest of the request was not sent


class WriteError(enum.IntEnum):
    """A DMA write request's status (``hdl/pcie/dma_write.py``, DMA_WR_STATUS.error)."""
    OK = 0
    BUS_MASTER_OFF = 1   #: nothing was sent: the host has bus mastering disabled
    TIMEOUT = 2          #: sent, but the hard block never confirmed it (``timeout``)


#: The error class of each failed read, write and translation.
READ_ERROR_CLASS = {
    ReadError.UR: ErrClass.READ_UR,
    ReadError.CA: ErrClass.READ_CA,
    ReadError.POISONED: ErrClass.READ_POISONED,
    ReadError.TIMEOUT: ErrClass.READ_TIMEOUT,
    ReadError.MALFORMED: ErrClass.READ_MALFORMED,
    ReadError.BUS_MASTER_OFF: ErrClass.BUS_MASTER_OFF,
}
WRITE_ERROR_CLASS = {
    WriteError.BUS_MASTER_OFF: ErrClass.BUS_MASTER_OFF,
    WriteError.TIMEOUT: ErrClass.WRITE_TIMEOUT,
}
FAULT_CLASS = {
    Fault.NO_PASID: ErrClass.ATF_NO_PASID,
    Fault.NOT_PRESENT: ErrClass.ATF_NOT_PRESENT,
    Fault.WRITE: ErrClass.ATF_WRITE,
    Fault.USER: ErrClass.ATF_USER,
    Fault.RESERVED: ErrClass.ATF_RESERVED,
    Fault.READ_ERROR: ErrClass.ATF_READ_ERROR,
}
