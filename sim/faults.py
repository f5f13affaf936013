"""A root complex that can misbehave on purpose: drop, delay, reorder or poison completions,
and answer Unsupported Request or Completer Abort. Transparent until a test asks for faults.

cocotbext-pcie's root complex answers one read at a time with completions in order. This
subclass collects the completions of each read and then applies the test's plan: a read's own
completions stay in address order (as PCIe requires); completions of different reads may be
released in a random order, or held back until the test lets them go.
"""

import random

import cocotb
from cocotb.triggers import Event, Timer
from cocotbext.pcie.core import RootComplex
from cocotbext.pcie.core.tlp import Tlp
from cocotbext.pcie.core.utils import PcieId


__all__ = ["FaultyRootComplex"]


class FaultyRootComplex(RootComplex):
    """``fault(tlp)`` decides per read: None, "drop", "ur", "ca" or "poison".

    ``reorder``: release pending completions of different reads in random order.
    ``hold``: keep every completion back (``release()`` ends it).
    ``requested_bytes``: bytes of reads answered-but-not-yet-delivered or held, the quantity
    the engine's completion credit bounds.
    """

    def __init__(self, *args, seed=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.fault = None
        self.on_write = None          # observer of every memory write (data, CST, MSI-X)
        self.on_drop = None           # told of every read it drops
        self.reorder = False
        self.hold = False
        self.rng = random.Random(seed)
        self.pending = []            # lists of completions, one list per read
        self.reads_seen = 0
        self.max_reads_pending = 0
        self.requested_bytes = 0
        self.max_requested_bytes = 0
        self._wake = Event()
        cocotb.start_soon(self._release())

    async def handle_mem_write_tlp(self, tlp):
        if self.on_write:
            self.on_write(tlp)
        await super().handle_mem_write_tlp(tlp)

    def release(self):
        self.hold = False
        self._wake.set()

    async def handle_mem_read_tlp(self, tlp):
        self.reads_seen += 1
        action = self.fault(tlp) if self.fault else None
        if action == "drop":
            if self.on_drop:
                self.on_drop(tlp)
            return
        if action in ("ur", "ca"):
            make = (Tlp.create_ur_completion_for_tlp if action == "ur"
                    else Tlp.create_ca_completion_for_tlp)
            await self.send(make(tlp, PcieId(0, 0, 0)))
            return
        collected = []

        async def collect(cpl):
            collected.append(cpl)
        self.send = collect           # the parent's completions land in the list
        try:
            await super().handle_mem_read_tlp(tlp)
        finally:
            del self.send
        if action == "poison" and collected:
            collected[0].ep = True
        if not (self.reorder or self.hold):
            for cpl in collected:
                await self.send(cpl)
            return
        nbytes = tlp.length * 4
        self.pending.append((nbytes, collected))
        self.requested_bytes += nbytes
        self.max_requested_bytes = max(self.max_requested_bytes, self.requested_bytes)
        self.max_reads_pending = max(self.max_reads_pending, len(self.pending))
        self._wake.set()

    async def _release(self):
        while True:
            if self.hold or not self.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.reorder:
                # Let a few reads gather so there is something to reorder.
                await Timer(self.rng.choice((1, 4, 8)), "ns")
                if self.hold or not self.pending:
                    continue
            i = self.rng.randrange(len(self.pending)) if self.reorder else 0
            nbytes, cpls = self.pending[i]
            await self.send(cpls.pop(0))
            if not cpls:
                self.pending.pop(i)
                self.requested_bytes -= nbytes
