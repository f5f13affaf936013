"""Constant look-up tables: a mapping from small codes to values, as a ROM indexed by a signal."""

from amaranth.hdl import Const, Value


__all__ = ["lookup"]


def lookup(table, index, width):
    """``table[index]`` as a ``width``-bit value; a code the table lacks gives 0.

    ``table`` maps the codes an ``index`` signal can take (ints or int enums) to ints; it is
    packed into one constant and read with ``word_select``, so the synthesizer sees one
    multiplexer, not a comparison per entry.
    """
    index = Value.cast(index)
    codes = 1 << len(index)
    packed = 0
    for code, value in table.items():
        if not 0 <= code < codes:
            raise ValueError(f"code {code} cannot be reached by a {len(index)}-bit index")
        if not 0 <= value < (1 << width):
            raise ValueError(f"value {value:#x} of code {code} does not fit in {width} bits")
        packed |= int(value) << (width * code)
    return Const(packed, width * codes).word_select(index, width)
