"""Seeded random descriptors for the random regression (``sim/random_regression.py``).

Every context of the regression owns the same kinds of memory (``ContextLayout``): a source
area nothing writes, a linear destination area, a destination area reached only through
shuffled 4 KiB pages, trap areas whose reads the host answers with an error, and one address
space (its PASID is the context's id) that sees them through windows of 4 KiB, 2 MiB and
1 GiB pages, with read-only, absent and supervisor pages after the 4 KiB window's
destination. ``TrafficGenerator`` draws batches of descriptors over them: every operation,
sizes from 1 byte to 1 MiB at any alignment, pv = 0 and pv = 1 operands through every window,
fences, and (where asked) descriptors that must fail, each of one known kind.

Destinations of one batch never overlap, so the result does not depend on how far the engine
overlaps descriptors; only a fenced descriptor may read what an earlier one of its batch
wrote.
"""

import enum
from dataclasses import dataclass, field

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import AdminOp, DmaBaseOp, IntrOp, OpGroup, SyncFilter, VendorOp
from sdxi_defs.errors import ReadError
from sw.descriptors import encode


__all__ = ["ContextLayout", "Key", "TrafficGenerator", "Planned", "draw_size", "map_windows",
           "akey_entries",
           "WINDOW_4K", "WINDOW_2M", "WINDOW_1G", "TRAP_KINDS", "TRAP_ERRORS", "KIB", "MIB",
           "GIB"]

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
PAGE = 4 * KIB
WINDOW_4K = 0x7100_0000_0000     #: src and dst4k on shuffled 4 KiB pages, then the traps
WINDOW_2M = 0x7200_0000_0000     #: src then dst on one 2 MiB page each
WINDOW_1G = 0x4000_0000_0000     #: one 1 GiB page over the frame holding all host memory
TRAP_PAGES = 4                   #: read-only, absent and supervisor pages, each
TAIL = 16 * KIB                  #: end of dst4k kept for descriptors that fault past it
# The linear destination area's last 4 KiB page is kept for descriptors that fail part-way.
#: The host's answer to a read of each trap area, and the error the engine must report.
TRAP_ERRORS = {"ur": ReadError.UR, "ca": ReadError.CA, "poison": ReadError.POISONED,
               "drop": ReadError.TIMEOUT}
TRAP_KINDS = tuple(TRAP_ERRORS)
MAX_BYTES = 1 * MIB


class Key(enum.IntEnum):
    """The AKey table of every context of the regression."""
    BUS = 0              #: pv = 0
    INTR = 1             #: iv = 1, the context's vector
    USER = 2             #: pv = 1, the context's PASID, user accesses
    SUPERVISOR = 3       #: pv = 1, the context's PASID, pr = 1
    INVALID = 4          #: vl = 0
    NO_PASID = 5         #: pv = 1, a PASID that is not bound
    INTR_OFF = 6         #: vl = 1 but iv = 0: no INTR through it
    OTHER_FUNCTION = 7   #: tgt_sfunc of a function the card does not have


OUT_OF_RANGE_KEY = 300           #: past a 256-entry table
UNBOUND_PASID = 63               #: a PASID no context's space is bound to
NO_SUCH_SFUNC = 0x7F             #: no card has a function of this sfunc


def akey_entries(layout):
    """The AKEY_ENT fields of each ``Key`` of ``layout``'s context."""
    pasid = layout.pasid
    return {
        Key.BUS: dict(vl=1),
        Key.INTR: dict(vl=1, iv=1, intr_num=layout.vector),
        Key.USER: dict(vl=1, pv=1, pasid=pasid),
        Key.SUPERVISOR: dict(vl=1, pv=1, pasid=pasid, pr=1),
        Key.INVALID: dict(vl=0, pv=1, pasid=pasid),
        Key.NO_PASID: dict(vl=1, pv=1, pasid=UNBOUND_PASID),
        Key.INTR_OFF: dict(vl=1, iv=0, intr_num=layout.vector),
        Key.OTHER_FUNCTION: dict(vl=1, tgt_sfunc=NO_SUCH_SFUNC),
    }


@dataclass
class ContextLayout:
    """Bus addresses of one context's areas (sizes fixed by the class)."""
    cxt_id: int
    src: int             #: 2 MiB, 2 MiB aligned: random data, never written
    dst: int             #: 2 MiB, 2 MiB aligned: destinations through bus, 1 GiB, 2 MiB
    dst4k: int           #: 1 MiB: destinations through the 4 KiB window only
    spare: int           #: backs the read-only and supervisor pages
    traps: dict          #: kind -> 4 KiB area whose reads the host answers with that error
    frame_1g: int        #: the 1 GiB frame WINDOW_1G maps
    vector: int          #: the MSI-X vector of Key.INTR
    src_pages: list = field(default_factory=list)    #: 4 KiB window: virtual page -> frame
    dst4k_pages: list = field(default_factory=list)

    SRC_BYTES = 2 * MIB
    DST_BYTES = 2 * MIB
    DST4K_BYTES = 1 * MIB
    SPARE_BYTES = 2 * TRAP_PAGES * PAGE

    @property
    def pasid(self):
        return self.cxt_id

    @property
    def v_dst4k(self):
        return WINDOW_4K + self.SRC_BYTES

    @property
    def v_read_only(self):
        return self.v_dst4k + self.DST4K_BYTES

    @property
    def v_absent(self):
        return self.v_read_only + TRAP_PAGES * PAGE

    @property
    def v_supervisor(self):
        return self.v_absent + TRAP_PAGES * PAGE

    def areas(self):
        """Every area of the context as ``(bus address, bytes)``."""
        return [(self.src, self.SRC_BYTES), (self.dst, self.DST_BYTES),
                (self.dst4k, self.DST4K_BYTES), (self.spare, self.SPARE_BYTES)] + \
               [(addr, PAGE) for addr in self.traps.values()]


def map_windows(space, layout, rng):
    """Map ``layout``'s windows in ``space`` (an ``AddressSpace``): the 4 KiB window holds the
    source and dst4k pages, each area in a random order, then read-only, absent and
    supervisor pages; the 2 MiB window the source then the destination area; the 1 GiB window
    all of host memory."""
    for base, size, vaddr in ((layout.src, layout.SRC_BYTES, WINDOW_4K),
                              (layout.dst4k, layout.DST4K_BYTES, layout.v_dst4k)):
        frames = list(range(base, base + size, PAGE))
        rng.shuffle(frames)
        for i, frame in enumerate(frames):
            space.map(vaddr + i * PAGE, frame, PAGE)
    for i in range(TRAP_PAGES):
        space.map(layout.v_read_only + i * PAGE, layout.spare + i * PAGE, PAGE, writable=False)
        space.map(layout.v_supervisor + i * PAGE, layout.spare + (TRAP_PAGES + i) * PAGE, PAGE,
                  user=False)
    space.map(WINDOW_2M, layout.src, 2 * MIB, page_size=2 * MIB)
    space.map(WINDOW_2M + 2 * MIB, layout.dst, 2 * MIB, page_size=2 * MIB)
    space.map(WINDOW_1G, layout.frame_1g, GIB, page_size=GIB)


def draw_size(rng):
    """A transfer size from 1 byte to 1 MiB, small ones most often (as real traffic has it),
    log-uniform within each band."""
    band = rng.random()
    lo, hi = ((1, 64) if band < 0.55 else (65, 4 * KIB) if band < 0.87 else
              (4 * KIB + 1, 64 * KIB) if band < 0.983 else
              (64 * KIB + 1, 256 * KIB) if band < 0.9985 else (256 * KIB + 1, MAX_BYTES))
    if rng.random() < 0.1:
        return rng.choice((lo, hi))
    return min(hi, int(lo * (hi / lo) ** rng.random()))


@dataclass
class Planned:
    """One descriptor of a batch: its bytes, its CST (or None), what it is, and the fault it
    was drawn to meet (None: it must succeed)."""
    raw: bytes
    cst: object
    kind: str
    fault: str = None


class TrafficGenerator:
    """Batches of random descriptors for one context. ``new_cst()`` returns a fresh
    completion (anything with a 32-byte aligned ``addr``)."""

    OPS = (("copy", 40), ("fill", 15), ("imm", 10), ("repcopy", 6), ("nop", 5), ("intr", 5))
    FAULTS = ("akey_range", "akey_invalid", "akey_other_function", "no_pasid", "read_only",
              "absent_write", "absent_read", "user_on_supervisor", "imm_size", "fill_pattern",
              "opcode", "address_wrap", "repcopy_unaligned", "intr_off", "admin_in_client",
              "host_ur", "host_ca", "host_poison", "host_drop")

    def __init__(self, rng, layout, new_cst, *, fault_rate=0.02, drop_rate=0.4, first_sizes=()):
        self.rng = rng
        self.layout = layout
        self.new_cst = new_cst
        self.fault_rate = fault_rate
        self.drop_rate = drop_rate           # a lost completion costs a DMA time-out
        self.first_sizes = list(first_sizes)  # COPYs of these sizes come first

    # ---- addressing -------------------------------------------------------------------------

    def _pv1_key(self):
        return self.rng.choice((Key.USER, Key.SUPERVISOR))

    def _linear(self, area, base, offset):
        """(akey, address) of byte ``offset`` of a linear area through a random window."""
        lay, window = self.layout, self.rng.choice(("bus", "bus", "1g", "2m"))
        if window == "bus":
            return Key.BUS, base + offset
        if window == "1g":
            return self._pv1_key(), WINDOW_1G + base + offset - lay.frame_1g
        return self._pv1_key(), WINDOW_2M + (0 if area == "src" else 2 * MIB) + offset

    def _source(self, n):
        """A source of ``n`` bytes in the source area, through any window."""
        offset = self.rng.randrange(self.layout.SRC_BYTES - n + 1)
        if self.rng.random() < 0.25:
            return self._pv1_key(), WINDOW_4K + offset
        return self._linear("src", self.layout.src, offset)

    def _gap(self):
        r = self.rng.random()
        return 0 if r < 0.3 else self.rng.randrange(64) if r < 0.8 else self.rng.randrange(PAGE)

    def _destination(self, n, room):
        """A destination of ``n`` bytes not overlapping the batch's others, or None when the
        areas are full. ``room`` holds the next free offset of each destination area."""
        if self.rng.random() < 0.25:
            start = room["dst4k"] + self._gap()
            if start + n <= self.layout.DST4K_BYTES - TAIL:
                room["dst4k"] = start + n
                return self._pv1_key(), self.layout.v_dst4k + start
        start = room["dst"] + self._gap()
        if start + n > self.layout.DST_BYTES - PAGE:
            return None
        room["dst"] = start + n
        return self._linear("dst", self.layout.dst, start)

    # ---- descriptors ------------------------------------------------------------------------

    def batch(self, count, *, faults=True):
        """``count`` descriptors (fewer if the destination areas fill up)."""
        room = {"dst": 0, "dst4k": 0}
        written = []            # (akey, address, bytes) of earlier successful destinations
        out = []
        for _ in range(count):
            cst = self.new_cst() if self.rng.random() < 0.6 else None
            fe = int(self.rng.random() < 0.1)
            if faults and self.rng.random() < self.fault_rate and not self.first_sizes:
                out.append(self._fault(cst, fe))
                continue
            planned = self._operation(cst, fe, room, written)
            if planned is None:
                break
            out.append(planned)
        return out

    def _operation(self, cst, fe, room, written):
        rng = self.rng
        kind = rng.choices([k for k, _ in self.OPS], [w for _, w in self.OPS])[0]
        if self.first_sizes:
            kind = "copy"
        if kind == "nop":
            return Planned(encode(dsc.DSC_DMAB_NOP, OpGroup.DMABASE, DmaBaseOp.NOP, cst=cst,
                                  fe=fe), cst, kind)
        if kind == "intr":
            return Planned(encode(dsc.DSC_INTR, OpGroup.INTR, IntrOp.INTR, cst=cst, fe=fe,
                                  akey=Key.INTR), cst, kind)
        if kind == "repcopy":
            blocks = (rng.randrange(1, MAX_BYTES // dsc.REPCOPY_BLOCK + 1) if rng.random() < 0.01
                      else rng.choice((1, 1, 2, 3, 4, rng.randrange(1, 17))))
            n = blocks * dsc.REPCOPY_BLOCK
        elif kind == "imm":
            n = rng.randrange(1, dsc.WRT_IMM_MAX + 1)
        else:
            n = self.first_sizes.pop(0) if self.first_sizes else draw_size(rng)
        dst = self._destination(n, room)
        if dst is None:
            return None
        dkey, daddr = dst
        if kind == "fill":
            raw = encode(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, cst=cst, fe=fe,
                         size=n - 1, psz=rng.randrange(3), akey0=dkey, addr0=daddr,
                         pattern=rng.getrandbits(256))
        elif kind == "imm":
            raw = encode(dsc.DSC_DMAB_WRT_IMM, OpGroup.DMABASE, DmaBaseOp.WRT_IMM, cst=cst,
                         fe=fe, size=n - 1, akey0=dkey, addr0=daddr, data=rng.getrandbits(256))
        elif kind == "repcopy":
            skey, saddr = self._source(dsc.REPCOPY_BLOCK)
            if skey != Key.BUS:
                saddr -= saddr % PAGE      # a translated source block lies in one page
            raw = encode(dsc.DSC_DMAB_REPCOPY, OpGroup.DMABASE, DmaBaseOp.REPCOPY, cst=cst,
                         fe=fe, count=n // dsc.REPCOPY_BLOCK - 1, akey0=skey, akey1=dkey,
                         addr0=saddr, addr1=daddr)
        else:
            fitting = [w for w in written if w[2] >= n]
            if fe and fitting and rng.random() < 0.5:
                skey, saddr, _ = rng.choice(fitting)    # what an earlier descriptor wrote
            else:
                skey, saddr = self._source(n)
            raw = self._copy(cst, fe, skey, saddr, dkey, daddr, n)
        written.append((dkey, daddr, n))
        return Planned(raw, cst, kind)

    def _copy(self, cst, fe, skey, saddr, dkey, daddr, n):
        return encode(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY, cst=cst, fe=fe,
                      size=n - 1, akey0=skey, akey1=dkey, addr0=saddr, addr1=daddr)

    def _fault(self, cst, fe):
        """A descriptor that must fail, of a random kind. What it writes before it fails goes
        to the end of dst4k or the linear area's last page, which the batch's other
        descriptors never write; descriptors that fail before moving data name any
        destination."""
        rng, lay = self.rng, self.layout
        kinds = [k for k in self.FAULTS if k != "host_drop" or rng.random() < self.drop_rate]
        kind = rng.choice(kinds)
        tail = lay.v_dst4k + lay.DST4K_BYTES - rng.randrange(1, PAGE)   # before read-only
        n = rng.randrange(1, 3 * PAGE)
        if kind == "akey_range":
            raw = self._copy(cst, fe, Key.BUS, lay.src, OUT_OF_RANGE_KEY, lay.dst, 64)
        elif kind == "akey_invalid":
            raw = self._copy(cst, fe, Key.INVALID, lay.src, Key.BUS, lay.dst, 64)
        elif kind == "akey_other_function":
            raw = self._copy(cst, fe, Key.BUS, lay.src, Key.OTHER_FUNCTION, lay.dst, 64)
        elif kind == "no_pasid":
            raw = self._copy(cst, fe, Key.NO_PASID, WINDOW_4K, Key.BUS, lay.dst, 64)
        elif kind == "read_only":       # writes reach the read-only pages past dst4k
            skey, saddr = self._source(n + PAGE)
            raw = self._copy(cst, fe, skey, saddr, self._pv1_key(), tail, n + PAGE)
        elif kind == "absent_write":    # a FILL into absent pages
            raw = encode(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, cst=cst, fe=fe,
                         size=n - 1, psz=2, akey0=self._pv1_key(),
                         addr0=lay.v_absent + rng.randrange(PAGE), pattern=rng.getrandbits(256))
        elif kind == "absent_read":     # a source that runs from read-only into absent pages
            length = lay.v_read_only - tail
            src = lay.v_absent - rng.randrange(length)
            raw = self._copy(cst, fe, self._pv1_key(), src, self._pv1_key(), tail, length)
        elif kind == "user_on_supervisor":
            raw = self._copy(cst, fe, Key.USER, lay.v_supervisor + rng.randrange(PAGE),
                             Key.BUS, lay.dst + lay.DST_BYTES - PAGE, rng.randrange(1, PAGE))
        elif kind == "imm_size":
            raw = encode(dsc.DSC_DMAB_WRT_IMM, OpGroup.DMABASE, DmaBaseOp.WRT_IMM, cst=cst,
                         fe=fe, size=rng.randrange(dsc.WRT_IMM_MAX, 1 << 16), akey0=Key.BUS,
                         addr0=lay.dst)
        elif kind == "fill_pattern":
            raw = encode(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, cst=cst, fe=fe,
                         size=63, psz=3, akey0=Key.BUS, addr0=lay.dst)
        elif kind == "opcode":
            raw = encode(dsc.DSC_DMAB_NOP, OpGroup.DMABASE, 0x0F, cst=cst, fe=fe)
        elif kind == "address_wrap":
            raw = self._copy(cst, fe, Key.BUS, lay.src, Key.BUS, (1 << 64) - rng.randrange(1, n),
                             n)
        elif kind == "repcopy_unaligned":
            raw = encode(dsc.DSC_DMAB_REPCOPY, OpGroup.DMABASE, DmaBaseOp.REPCOPY, cst=cst,
                         fe=fe, count=0, akey0=self._pv1_key(),
                         addr0=WINDOW_4K + rng.randrange(1, PAGE), akey1=Key.BUS, addr1=lay.dst)
        elif kind == "intr_off":
            raw = encode(dsc.DSC_INTR, OpGroup.INTR, IntrOp.INTR, cst=cst, fe=fe,
                         akey=Key.INTR_OFF)
        elif kind == "admin_in_client":
            raw = encode(dsc.DSC_SYNC, OpGroup.ADMIN, AdminOp.SYNC, cst=cst, fe=fe,
                         flt=SyncFilter.CXT, cxt_start=lay.cxt_id, cxt_end=lay.cxt_id)
        else:                           # host_ur, host_ca, host_poison, host_drop
            trap = lay.traps[kind[len("host_"):]]
            off = rng.randrange(PAGE)
            raw = self._copy(cst, fe, Key.BUS, trap + off, Key.BUS,
                             lay.dst + lay.DST_BYTES - PAGE, rng.randrange(1, PAGE - off + 1))
        return Planned(raw, cst, "fault", kind)
