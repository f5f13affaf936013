"""Priority encoding, round-robin choice and index selection."""

from amaranth.hdl import Cat, Mux, Signal


__all__ = ["lowest_set", "round_robin", "select"]


def round_robin(m, requests, last, *, name="rr"):
    """Return ``(index, valid)``: the first set bit of ``requests`` after position ``last``,
    wrapping around, so that every requester is served in turn.

    Built as verilog-pcie's arbiters are: the requests after ``last`` (a mask decoded from
    ``last``, which is a register where this is used) and all requests each go through a
    priority encoder (``lowest_set``), and the first wins if it found any; the depth grows with
    log2 of the width.
    """
    n = len(requests)
    index = Signal(range(max(n, 2)), name=f"{name}_index")
    valid = Signal(name=f"{name}_valid")
    if n == 1:
        m.d.comb += [index.eq(0), valid.eq(requests[0])]
        return index, valid
    after = Signal(n, name=f"{name}_after")
    m.d.comb += after.eq(requests & Cat(*(last < i for i in range(n))))
    after_index, after_any = lowest_set(m, after, name=f"{name}_after_first")
    any_index, any_ = lowest_set(m, requests, name=f"{name}_first")
    m.d.comb += [index.eq(Mux(after_any, after_index, any_index)), valid.eq(any_)]
    return index, valid


def select(index, values):
    """``values[index]`` for a computed ``index`` (for a handful of values)."""
    out = values[0]
    for i in range(1, len(values)):
        out = Mux(index == i, values[i], out)
    return out


def lowest_set(m, value, *, name="lowest"):
    """Return ``(index, any)``: the index of the lowest set bit of ``value`` and whether any is.

    Built as a balanced tree of 2:1 choices, so the depth grows with log2 of the width rather
    than with the width, as an if/elif chain would.
    """
    width = len(value)

    def tree(lo, hi):
        if hi - lo == 1:
            return value[lo], lo
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))
        any_lo, idx_lo = tree(lo, mid)
        any_hi, idx_hi = tree(mid, hi)
        any_ = Signal(name=f"{name}_any_{lo}_{hi}")
        idx = Signal(range(max(width, 2)), name=f"{name}_idx_{lo}_{hi}")
        m.d.comb += [any_.eq(any_lo | any_hi),
                     idx.eq(Mux(any_lo, idx_lo, idx_hi))]
        return any_, idx

    any_, idx = tree(0, width)
    return idx, any_
