"""The error classes of DMA errors and translation faults, as gateware look-ups of the one table
in ``sdxi_defs.errors`` (READ_ERROR_CLASS, WRITE_ERROR_CLASS, FAULT_CLASS)."""

from sdxi_defs.errors import FAULT_CLASS, READ_ERROR_CLASS, WRITE_ERROR_CLASS

from ..common.lookup import lookup


__all__ = ["CLASS_BITS", "class_of_read_error", "class_of_write_error", "class_of_fault"]

CLASS_BITS = 8      #: every ErrClass fits in 8 bits (ERRLOG_HD_ENT.err_class has 16)


def class_of_read_error(error):
    """The ErrClass of a failed read's ``ReadError`` (an Amaranth value)."""
    return lookup(READ_ERROR_CLASS, error, CLASS_BITS)


def class_of_write_error(error):
    """The ErrClass of a failed write's ``WriteError`` (an Amaranth value)."""
    return lookup(WRITE_ERROR_CLASS, error, CLASS_BITS)


def class_of_fault(fault):
    """The ErrClass of a translation ``Fault`` (an Amaranth value)."""
    return lookup(FAULT_CLASS, fault, CLASS_BITS)
