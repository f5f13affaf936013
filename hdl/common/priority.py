"""Priority encoding, round-robin choice and index selection."""

from amaranth.hdl import Mux, Signal


__all__ = ["lowest_set", "round_robin", "select"]


def round_robin(m, requests, last, *, name="rr"):
    """Return ``(index, valid)``: the first set bit of ``requests`` after position ``last``,
    wrapping around, so that every requester is served in turn."""
    n = len(requests)
    index = Signal(range(max(n, 2)), name=f"{name}_index")
    valid = Signal(name=f"{name}_valid")
    # The last matching assignment wins, so the nearest candidate is written last.
    for offset in reversed(range(1, n + 1)):
        cand = Signal(range(max(n, 2)), name=f"{name}_cand{offset}")
        m.d.comb += cand.eq((last + offset) % n if n > 1 else 0)
        with m.If(requests.bit_select(cand, 1)):
            m.d.comb += [index.eq(cand), valid.eq(1)]
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
