"""A monitor of every memory write the engine sends to the host: each byte must fall inside a
range the test allows (the destinations the reference model says the current descriptors
write, CSTs, context status, the error log, MSI-X); anything else is recorded as a violation.
"""

import bisect


__all__ = ["WriteMonitor", "tlp_bytes"]


def tlp_bytes(tlp):
    """The byte range ``(address, length)`` a memory write TLP writes, from its byte
    enables."""
    return tlp.address + tlp.get_first_be_offset(), tlp.get_be_byte_count()


def _merge(ranges):
    starts, ends = [], []
    for start, length in sorted((a, n) for a, n in ranges if n > 0):
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], start + length)
        else:
            starts.append(start)
            ends.append(start + length)
    return starts, ends


class WriteMonitor:
    """Called with every memory write TLP (``FaultyRootComplex.on_write``). ``fixed`` ranges
    are allowed for the whole run, ``allow(...)`` replaces the ranges of the current phase."""

    def __init__(self, fixed):
        self._fixed = list(fixed)
        self._starts, self._ends = _merge(self._fixed)
        self.violations = []
        self.writes = 0

    def allow(self, ranges):
        self._starts, self._ends = _merge(self._fixed + list(ranges))

    def allowed(self, addr, length):
        i = bisect.bisect_right(self._starts, addr) - 1
        return i >= 0 and addr + length <= self._ends[i]

    def __call__(self, tlp):
        self.writes += 1
        addr, length = tlp_bytes(tlp)
        if not self.allowed(addr, length):
            self.violations.append(f"a write of {length} bytes at {addr:#x} that no descriptor "
                                   f"or structure allows")
