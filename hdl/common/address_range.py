"""Address-range checks shared by the units that take addresses from the host."""

from amaranth.hdl import Value


__all__ = ["runs_past_top"]


def runs_past_top(addr, last):
    """True if the bytes ``addr`` to ``addr + last`` run past 2^64 - 1 (the range would wrap
    to address 0). ``last`` is the range's size minus one; its width bounds the adder: the range
    wraps only if the address bits above it are all ones and the low bits carry out."""
    addr, last = Value.cast(addr), Value.cast(last)
    width = len(last)
    if width >= len(addr):
        raise ValueError("the range's size must be narrower than the address")
    carry = (addr[:width] + last)[width]
    return addr[width:].all() & carry
