"""Priority encoding, round-robin choice and index selection."""

from amaranth.hdl import Cat, Mux, Signal


__all__ = ["lowest_set", "round_robin", "select"]


def round_robin(m, requests, last, *, name="rr"):
    """Return ``(index, valid)``: the first set bit of ``requests`` after position ``last``,
    wrapping around, so that every requester is served in turn.

    Built as a rotate (``requests`` read from ``last + 1`` on, over a doubled copy) and a
    priority encoder (``lowest_set``), so its depth grows with log2 of the width.
    """
    n = len(requests)
    index = Signal(range(max(n, 2)), name=f"{name}_index")
    valid = Signal(name=f"{name}_valid")
    if n == 1:
        m.d.comb += [index.eq(0), valid.eq(requests[0])]
        return index, valid
    start = Signal(range(n + 1), name=f"{name}_start")
    m.d.comb += start.eq(last + 1)
    rotated = Signal(n, name=f"{name}_rotated")
    m.d.comb += rotated.eq(Cat(requests, requests).bit_select(start, n))
    offset, any_ = lowest_set(m, rotated, name=f"{name}_first")
    at = Signal(range(2 * n + 1), name=f"{name}_at")
    m.d.comb += [
        at.eq(start + offset),
        index.eq(Mux(at >= n, at - n, at)),
        valid.eq(any_),
    ]
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
