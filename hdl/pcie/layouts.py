"""Descriptor formats of the UltraScale+ PCIe user interfaces (PG213, "Completer Request",
"Completer Completion", "Requester Request" and "Requester Completion" descriptor formats),
dword-aligned mode."""

import enum

from amaranth.lib import data


__all__ = ["ReqType", "CplStatus", "CqDescriptor", "CcDescriptor", "RqDescriptor",
           "RcDescriptor", "RcErrorCode", "CQ_DESCRIPTOR_DWORDS", "CC_DESCRIPTOR_DWORDS",
           "RQ_DESCRIPTOR_DWORDS", "RC_DESCRIPTOR_DWORDS"]


class ReqType(enum.IntEnum):
    """CQ/RQ descriptor ``req_type`` (PG213 table "Transaction Types")."""
    MEM_READ = 0b0000
    MEM_WRITE = 0b0001
    IO_READ = 0b0010
    IO_WRITE = 0b0011
    MEM_FETCH_ADD = 0b0100
    MEM_SWAP = 0b0101
    MEM_CAS = 0b0110
    MEM_READ_LOCKED = 0b0111
    MSG = 0b1100
    MSG_VENDOR = 0b1101
    MSG_ATS = 0b1110


class CplStatus(enum.IntEnum):
    SC = 0b000   #: successful completion
    UR = 0b001   #: unsupported request
    CRS = 0b010  #: configuration request retry status
    CA = 0b100   #: completer abort


CQ_DESCRIPTOR_DWORDS = 4
CC_DESCRIPTOR_DWORDS = 3


class CqDescriptor(data.Struct):
    """Completer request descriptor: the first 128 bits of every CQ TLP."""
    at: 2
    address: 62            # byte address bits 63:2
    dword_count: 11
    req_type: 4
    _rsvd0: 1
    requester_id: 16
    tag: 8
    target_function: 8
    bar_id: 3
    bar_aperture: 6
    tc: 3
    attr: 3
    _rsvd1: 1


class CcDescriptor(data.Struct):
    """Completer completion descriptor: the first 96 bits of every CC TLP."""
    lower_address: 7
    _rsvd0: 1
    at: 2
    _rsvd1: 6
    byte_count: 13
    locked_read_completion: 1
    _rsvd2: 2
    dword_count: 11
    completion_status: 3
    poisoned_completion: 1
    _rsvd3: 1
    requester_id: 16
    tag: 8
    completer_id: 16
    completer_id_enable: 1
    tc: 3
    attr: 3
    force_ecrc: 1


assert CqDescriptor.as_shape().size == 32 * CQ_DESCRIPTOR_DWORDS
assert CcDescriptor.as_shape().size == 32 * CC_DESCRIPTOR_DWORDS


class RqDescriptor(data.Struct):
    """Requester request descriptor: the first 128 bits of every RQ TLP."""
    at: 2
    address: 62            # byte address bits 63:2
    dword_count: 11
    req_type: 4
    poisoned: 1
    requester_id: 16
    tag: 8
    completer_id: 16
    requester_id_enable: 1
    tc: 3
    attr: 3
    force_ecrc: 1


class RcErrorCode(enum.IntEnum):
    """RC descriptor ``error_code`` (PG213 "Requester Completion Descriptor")."""
    NORMAL = 0b0000
    POISONED = 0b0001
    BAD_STATUS = 0b0010       # UR, CA or CRS completion status
    INVALID_LENGTH = 0b0011
    MISMATCH = 0b0100
    INVALID_ADDRESS = 0b0101
    INVALID_TAG = 0b0110
    FLR = 0b1000
    TIMEOUT = 0b1001


class RcDescriptor(data.Struct):
    """Requester completion descriptor: the first 96 bits of every RC TLP."""
    lower_address: 12
    error_code: 4
    byte_count: 13
    locked_read_completion: 1
    request_completed: 1
    _rsvd0: 1
    dword_count: 11
    completion_status: 3
    poisoned_completion: 1
    _rsvd1: 1
    requester_id: 16
    tag: 8
    completer_id: 16
    _rsvd2: 1
    tc: 3
    attr: 3
    _rsvd3: 1


RQ_DESCRIPTOR_DWORDS = 4
RC_DESCRIPTOR_DWORDS = 3

assert RqDescriptor.as_shape().size == 32 * RQ_DESCRIPTOR_DWORDS
assert RcDescriptor.as_shape().size == 32 * RC_DESCRIPTOR_DWORDS
