"""Priority encoding with logarithmic depth."""

from amaranth.hdl import Mux, Signal


__all__ = ["lowest_set"]


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
