"""TLB in front of the page-table walker, tagged with the address space: (function, PASID)."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sdxi_defs.page_tables import Fault
from sdxi_defs.regmap import TlbInvalidateKind

from ..pcie.dma_layouts import FUNCTION_BITS
from .walker import PASID_BITS, WalkRequest, WalkResult


__all__ = ["Tlb", "Lookup", "Translation", "Invalidate"]

VPN_BITS = 36           #: virtual address bits 47:12
FRAME_BITS = 40         #: physical address bits 51:12


class Lookup(data.StructLayout):
    """An access to translate: a ``write`` or a read of ``vaddr``, ``user`` unless the AKey's
    pr bit is set.

    The address space is (``function``, ``pasid``): ``pasid`` in the PASID table of the PCIe
    function ``function``, whose view of host memory the tables are read in (with its
    requester ID). The same PASID of two functions is two unrelated address spaces.
    """

    def __init__(self):
        super().__init__({"function": FUNCTION_BITS, "pasid": PASID_BITS, "vaddr": 64,
                          "write": 1, "user": 1})


class Translation(data.StructLayout):
    """The physical address of a lookup, or its fault (``Fault``) and the level it was found
    at (``WRITE`` and ``USER`` come from the permissions of a translation)."""

    def __init__(self):
        super().__init__({"fault": 3, "level": 3, "paddr": 64})


class Invalidate(data.StructLayout):
    """Drop the entries of ``kind`` (``TlbInvalidateKind``): all of them, those of ``pasid``,
    or those of ``pasid`` for the page of ``vaddr``. There is no function: the PASID's
    entries of every function go (dropping more than asked is always safe)."""

    def __init__(self):
        super().__init__({"kind": 2, "pasid": PASID_BITS, "vaddr": 64})


class _Entry(data.StructLayout):
    def __init__(self):
        super().__init__({"function": FUNCTION_BITS, "pasid": PASID_BITS, "vpn": VPN_BITS,
                          "frame": FRAME_BITS, "rw": 1, "us": 1})


class Tlb(wiring.Component):
    """Translates one lookup per clock on hits; a miss asks the walker and waits.

    ``sets`` x ``ways`` entries of one 4 KiB page each: a translation from a 2 MiB or 1 GiB
    page is kept for the 4 KiB page that was asked for (as many IOTLBs splinter large pages),
    so every entry is indexed the same way, by the low bits of the virtual page number, and
    tagged with its address space: a lookup hits only an entry of its own function and PASID.
    A hit costs no throughput: the set is read in the clock a lookup is taken and judged in
    the next, while the next lookup's set is read. Replacement is round-robin per set.
    Faults are not cached: an access a translation refuses walks again from memory (and the
    new walk replaces the entry), a walk's fault is not kept, and a refusal from a walk that
    used the walker's cached paths or table lines is checked by a walk from memory, so a page
    the host has just made present or writable is seen without an invalidation.

    Invalidations (``invalidate``) wait for the lookup in flight; ALL takes one clock, PASID
    two clocks per set, PAGE two clocks. They ignore the function: a PASID or PAGE invalidation
    drops the matching entries of every function (more than asked, which is always safe).
    Entries are never changed by anything else: a page the host remaps without invalidating
    keeps its old translation until evicted.

    ``hits``, ``misses`` and ``walk_cycles`` count since reset; ``invalidating`` is high while
    an invalidation that has been taken is still running.
    """

    def __init__(self, *, sets=64, ways=4):
        if sets & (sets - 1) or not 1 <= ways <= 16:
            raise ValueError("sets must be a power of two and ways 1 to 16")
        self._sets, self._ways = sets, ways
        super().__init__({
            "lookup": In(stream.Signature(Lookup())),
            "result": Out(stream.Signature(Translation())),
            "invalidate": In(stream.Signature(Invalidate())),
            "walk": Out(stream.Signature(WalkRequest())),
            "walked": In(stream.Signature(WalkResult())),
            "hits": Out(32),
            "misses": Out(32),
            "walk_cycles": Out(32),
            "invalidating": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        sets, ways = self._sets, self._ways
        set_bits = (sets - 1).bit_length()
        valid = [Signal(sets, name=f"valid{w}") for w in range(ways)]
        victim = Memory(shape=range(ways), depth=sets, init=[]) if ways > 1 else None
        arrays = []
        for w in range(ways):
            m.submodules[f"way{w}"] = mem = Memory(shape=_Entry(), depth=sets, init=[])
            arrays.append((mem.read_port(domain="sync"), mem.write_port()))
        if victim is not None:
            m.submodules.victim = victim
            v_rd, v_wr = victim.read_port(domain="sync"), victim.write_port()

        def set_of(vaddr):
            return vaddr[12:12 + set_bits]

        # Stage B: the lookup whose set was read in the previous clock.
        b_full = Signal()
        b = Signal(Lookup())
        b_set = Signal(set_bits)
        m.d.comb += b_set.eq(set_of(b.vaddr))
        vpn = b.vaddr[12:12 + VPN_BITS]

        hit_way = Signal(range(max(ways, 2)))
        hit = Signal()
        found = Signal(_Entry())
        for w, (rd, _) in reversed(list(enumerate(arrays))):
            e = Signal(_Entry(), name=f"e{w}")
            m.d.comb += e.eq(rd.data)
            with m.If(valid[w].bit_select(b_set, 1) & (e.function == b.function) &
                      (e.pasid == b.pasid) & (e.vpn == vpn)):
                m.d.comb += [hit.eq(1), hit_way.eq(w), found.eq(e)]

        def permitted(entry_rw, entry_us):
            return (~b.write | entry_rw) & (~b.user | entry_us)

        refill_way = Signal(range(max(ways, 2)))
        refill_hit = Signal()            # replace the entry that refused, not a victim

        def judge(entry_rw, entry_us, frame, level):
            """The result for stage B's lookup through a translation."""
            return [self.result.payload.fault.eq(Mux(~b.write | entry_rw,
                                                     Mux(~b.user | entry_us, Fault.NONE,
                                                         Fault.USER),
                                                     Fault.WRITE)),
                    self.result.payload.level.eq(level),
                    self.result.payload.paddr.eq(Cat(b.vaddr[:12], frame))]

        # Index the arrays: by the lookup being taken, or by an invalidation sweep.
        rd_set = Signal(set_bits)
        m.d.comb += rd_set.eq(b_set)     # stage B keeps its set unless something else is read
        for rd, _ in arrays:
            m.d.comb += rd.addr.eq(rd_set)
        if victim is not None:
            m.d.comb += v_rd.addr.eq(rd_set)

        walk_res = Signal(WalkResult())
        inv = Signal(Invalidate())
        sweep = Signal(set_bits + 1)
        walking = Signal()
        fresh = Signal()                 # the walk must not use cached table data
        filled_way = Signal(range(max(ways, 2)))
        m.d.comb += [self.walk.payload.function.eq(b.function),
                     self.walk.payload.pasid.eq(b.pasid), self.walk.payload.vaddr.eq(b.vaddr),
                     self.walk.payload.fresh.eq(fresh)]
        with m.If(walking):
            m.d.sync += self.walk_cycles.eq(self.walk_cycles + 1)

        with m.FSM():
            with m.State("RUN"):
                take = Signal()
                with m.If(b_full):
                    with m.If(hit & permitted(found.rw, found.us)):
                        m.d.comb += [self.result.valid.eq(1), *judge(found.rw, found.us,
                                                                     found.frame, 1)]
                        with m.If(self.result.ready):
                            m.d.comb += take.eq(1)
                            m.d.sync += [b_full.eq(0), self.hits.eq(self.hits + 1)]
                    with m.Else():
                        m.d.sync += [self.misses.eq(self.misses + 1), refill_hit.eq(hit),
                                     refill_way.eq(hit_way), fresh.eq(hit)]
                        m.next = "WALK"
                with m.Else():
                    m.d.comb += take.eq(1)
                # A new lookup enters when stage B moves on; invalidations go first.
                with m.If(take):
                    with m.If(self.invalidate.valid):
                        m.d.comb += self.invalidate.ready.eq(1)
                        m.d.sync += [inv.eq(self.invalidate.payload), sweep.eq(0)]
                        m.next = "INVALIDATE"
                    with m.Else():
                        m.d.comb += [self.lookup.ready.eq(1),
                                     rd_set.eq(set_of(self.lookup.payload.vaddr))]
                        with m.If(self.lookup.valid):
                            m.d.sync += [b.eq(self.lookup.payload), b_full.eq(1)]

            with m.State("WALK"):
                m.d.comb += [self.walk.valid.eq(1), walking.eq(1)]
                with m.If(self.walk.ready):
                    m.next = "WALK_WAIT"
            with m.State("WALK_WAIT"):
                m.d.comb += [self.walked.ready.eq(1), walking.eq(1), rd_set.eq(b_set)]
                with m.If(self.walked.valid):
                    m.d.sync += walk_res.eq(self.walked.payload)
                    m.next = "FILL"
            with m.State("FILL"):
                # The victim way of this set was read in the last clock (rd_set = b_set).
                way = Signal(range(max(ways, 2)))
                m.d.comb += way.eq(Mux(refill_hit, refill_way,
                                       v_rd.data if victim is not None else 0))
                with m.If(walk_res.fault == Fault.NONE):
                    # A large page's frame plus the 4 KiB page's offset into it.
                    big = Signal(FRAME_BITS)
                    m.d.comb += big.eq(walk_res.frame | (vpn & Mux(walk_res.level == 3,
                                                                    (1 << 18) - 1,
                                                                    Mux(walk_res.level == 2,
                                                                        (1 << 9) - 1, 0))))
                    entry = Signal(_Entry())
                    m.d.comb += [entry.function.eq(b.function), entry.pasid.eq(b.pasid),
                                 entry.vpn.eq(vpn), entry.frame.eq(big),
                                 entry.rw.eq(walk_res.rw), entry.us.eq(walk_res.us)]
                    for w, (_, wr) in enumerate(arrays):
                        m.d.comb += [wr.addr.eq(b_set), wr.data.eq(entry),
                                     wr.en.eq(way == w)]
                        with m.If(way == w):
                            m.d.sync += valid[w].bit_select(b_set, 1).eq(1)
                    if victim is not None:
                        m.d.comb += [v_wr.addr.eq(b_set), v_wr.en.eq(~refill_hit),
                                     v_wr.data.eq(Mux(way == ways - 1, 0, way + 1))]
                    m.d.sync += [walk_res.frame.eq(big), filled_way.eq(way)]
                with m.Elif(refill_hit):
                    # The entry that refused no longer translates: drop it.
                    for w in range(ways):
                        with m.If(refill_way == w):
                            m.d.sync += valid[w].bit_select(b_set, 1).eq(0)
                m.next = "RESPOND"
            with m.State("RESPOND"):
                refused = (walk_res.fault != Fault.NONE) | ~permitted(walk_res.rw, walk_res.us)
                with m.If(refused & walk_res.cached):
                    # Refuse only on what memory holds now: walk again from memory, replacing
                    # the entry just filled.
                    m.d.sync += [fresh.eq(1),
                                 refill_hit.eq(refill_hit | (walk_res.fault == Fault.NONE)),
                                 refill_way.eq(Mux(walk_res.fault == Fault.NONE, filled_way,
                                                   refill_way))]
                    m.next = "WALK"
                with m.Else():
                    m.d.comb += self.result.valid.eq(1)
                    with m.If(self.result.ready):
                        m.d.sync += b_full.eq(0)
                        m.next = "RUN"
                with m.If(walk_res.fault == Fault.NONE):
                    m.d.comb += judge(walk_res.rw, walk_res.us, walk_res.frame, walk_res.level)
                with m.Else():
                    m.d.comb += [self.result.payload.fault.eq(walk_res.fault),
                                 self.result.payload.level.eq(walk_res.level)]

            with m.State("INVALIDATE"):
                m.d.comb += self.invalidating.eq(1)
                with m.If(inv.kind == TlbInvalidateKind.ALL):
                    m.d.sync += [v.eq(0) for v in valid]
                    m.next = "RUN"
                with m.Else():
                    # Read one set (the page's, or each in turn), then clear its matches.
                    page_set = set_of(inv.vaddr)
                    m.d.comb += rd_set.eq(Mux(inv.kind == TlbInvalidateKind.PAGE, page_set,
                                              sweep[:set_bits]))
                    m.next = "INVALIDATE_SET"
            with m.State("INVALIDATE_SET"):
                m.d.comb += self.invalidating.eq(1)
                at = Signal(set_bits)
                m.d.comb += at.eq(Mux(inv.kind == TlbInvalidateKind.PAGE, set_of(inv.vaddr),
                                      sweep[:set_bits]))
                for w, (rd, _) in enumerate(arrays):
                    e = Signal(_Entry(), name=f"inv_e{w}")
                    m.d.comb += e.eq(rd.data)
                    # Any function's: invalidations name no function.
                    match = (e.pasid == inv.pasid) & ((inv.kind == TlbInvalidateKind.PASID) |
                                                       (e.vpn == inv.vaddr[12:12 + VPN_BITS]))
                    with m.If(match):
                        m.d.sync += valid[w].bit_select(at, 1).eq(0)
                last = (inv.kind == TlbInvalidateKind.PAGE) | (sweep == sets - 1)
                with m.If(last):
                    m.next = "RUN"
                with m.Else():
                    m.d.sync += sweep.eq(sweep + 1)
                    m.next = "INVALIDATE"
        return m
