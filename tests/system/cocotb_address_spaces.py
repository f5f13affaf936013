"""Address spaces (AKey pv = 1): copies within and between PASID address spaces the engine
translates itself, over scattered 4 KiB, 2 MiB and 1 GiB pages; translation faults on either
buffer at the first, middle and last page; the TLB's invalidation rules; and random mappings
scored by the driver's reference walk. Every destination is checked in full, guard bytes
included, through the host's view of the pages."""

import random

import cocotb

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import DmaBaseOp, OpGroup
from sdxi_defs.errors import FAULT_CLASS, ErrClass, ErrStep, ErrSubStep
from sdxi_defs.page_tables import Level
from sdxi_defs.structures import CxtState
from sim.tb import SdxiTb
from sw.context import Completion
from sw.descriptors import copy_descriptor, encode
from sw.errors import SdxiOpError

from .cocotb_context_errors import check_entry, recover
from .cocotb_contexts import data
from .sampling import cross_product, pairwise

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
BACKGROUND = 0xEE


def background(buf):
    buf.write(0, bytes([BACKGROUND]) * buf.size)


async def started(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    await card.start()
    cxt = await card.create_context()
    return tb, card, cxt


async def copy_and_check(cxt, dst_space, dst_buf, dst_off, src_space, src_buf, src_off, n):
    """Copy ``n`` bytes between virtual buffers; the destination buffer must hold the source
    bytes in the range and exactly what it held before everywhere else."""
    assert dst_off + n <= dst_buf.size and src_off + n <= src_buf.size, "outside the buffers"
    before = dst_buf.read(0, dst_buf.size)
    want = src_buf.read(src_off, n)
    await cxt.copy_between(dst_space, dst_buf.vaddr + dst_off, src_space,
                           src_buf.vaddr + src_off, n)
    got = dst_buf.read(0, dst_buf.size)
    expected = before[:dst_off] + want + before[dst_off + n:]
    assert got == expected, (f"copy of {n} bytes {src_buf.vaddr + src_off:#x} -> "
                             f"{dst_buf.vaddr + dst_off:#x}: first difference at byte "
                             f"{next(i for i in range(len(got)) if got[i] != expected[i])}")


@cocotb.test(timeout_time=2000, timeout_unit="us")
async def copies_within_and_across_spaces(dut):
    await run_copies(dut)


async def run_copies(dut):
    """The copies, fill and REPCOPYs below (also run on the 256-bit datapath, whose table
    lines hold 4 entries instead of 8)."""
    tb, card, cxt = await started(dut)
    t = card.transport
    a = await card.create_address_space(3)
    b = await card.create_address_space(7)

    # Process A: 5 scattered 4 KiB pages and a 2 MiB page; process B: 4 KiB pages, two 2 MiB
    # pages, and a 1 GiB page over all of host memory (the frame below it, 1 GiB aligned).
    a_small = a.map_buffer(0x7F00_0000_0000, 5 * 4 * KIB)
    a_large = a.map_buffer(0x7F00_4000_0000, 2 * MIB, page_size=2 * MIB)
    b_small = b.map_buffer(0x5555_0000_1000, 4 * 4 * KIB)
    b_large = b.map_buffer(0x5555_0020_0000, 4 * MIB, page_size=2 * MIB)
    memory = t.host_memory()
    frame = memory.addr & ~(GIB - 1)
    b.map(0x40_0000_0000, frame, GIB, page_size=GIB)
    phys = t.alloc_dma(3 * 4 * KIB)
    b_huge = type(b_small)(b, 0x40_0000_0000 + phys.addr - frame, phys.size)
    for buf in (a_small, a_large, b_small, b_large, b_huge):
        background(buf)
    a_small.write(0, data(a_small.size, 1))
    a_large.write(0, data(64 * KIB, 2))
    b_huge.write(0, data(b_huge.size, 3))
    assert phys.read(0, 64) == b_huge.read(0, 64), "the 1 GiB page does not reach host memory"

    cases = [
        # (what, dst space, dst, dst offset, src space, src, src offset, bytes)
        ("A 4K -> B 4K, odd offsets", b, b_small, 0x7F5, a, a_small, 0x123, 9000),
        ("A 4K -> B 2M, across two large pages", b, b_large, 0x1FF_F00, a, a_small, 0x40,
         4 * KIB),
        ("A 2M -> B 4K, whole pages", b, b_small, 0, a, a_large, 0x1000, 3 * 4 * KIB),
        ("B 1G -> A 4K", a, a_small, 0x2FFF, b, b_huge, 0x10, 6000),
        ("within A: 4K -> 2M", a, a_large, 0x10_0001, a, a_small, 0x2000, 8000),
        ("bus address -> B 4K", b, b_small, 0x100, None, None, 0, 5000),
        ("A 4K -> bus address", None, None, 0, a, a_small, 0x777, 5000),
        ("one byte at a page's end", b, b_small, 0xFFF, a, a_small, 0xFFF, 1),
    ]
    bus = t.alloc_dma(8 * KIB)
    bus.write(0, data(bus.size, 4))
    for what, dst_space, dst, dst_off, src_space, src, src_off, n in cases:
        dut._log.info("copy: %s", what)
        if src is None:
            src = _BusBuffer(bus)
        if dst is None:
            dst = _BusBuffer(t.alloc_dma(8 * KIB))
        await copy_and_check(cxt, dst_space, dst, dst_off, src_space, src, src_off, n)

    # A fill across three pages of B (the write side alone translated).
    pattern = data(16, 5)
    before = b_small.read(0, b_small.size)
    await cxt.fill(b_small.vaddr + 0x0F80, pattern, 2 * 4 * KIB + 0x100,
                   akey=cxt.akey_for(b))
    want = (pattern * (1 + 0x2100 // 16))[:0x2100]
    assert b_small.read(0, b_small.size) == before[:0xF80] + want + before[0xF80 + 0x2100:]

    # REPCOPY from a page of A into three blocks of B starting mid-page.
    await cxt.rep_copy(b_small.vaddr + 0x800, a_small.vaddr + 0x1000, 3,
                       src_akey=cxt.akey_for(a), dst_akey=cxt.akey_for(b))
    block = a_small.read(0x1000, 4 * KIB)
    assert b_small.read(0x800, 3 * 4 * KIB) == block * 3
    # A translated REPCOPY source must be one page: a block across two fails before it moves.
    before = b_large.read(0, 16 * KIB)
    cst = Completion(card)
    first = await cxt.submit([encode(dsc.DSC_DMAB_REPCOPY, OpGroup.DMABASE, DmaBaseOp.REPCOPY,
                                     cst=cst, count=1, akey0=cxt.akey_for(a),
                                     akey1=cxt.akey_for(b), addr0=a_small.vaddr + 0x10,
                                     addr1=b_large.vaddr)])
    try:
        await cst.wait("REPCOPY across pages", card.timing.completion_timeout())
    except SdxiOpError as e:
        check_entry(e.log[0], ErrStep.DATA_BUFFER, ErrSubStep.DVF, ErrClass.BAD_PARAMETER, cxt,
                    index=first, buf=0)
    else:
        raise AssertionError("a REPCOPY block across two translated pages completed")
    assert b_large.read(0, 16 * KIB) == before
    await recover(card, cxt, first)

    # A supervisor page of B: a user AKey may not write it (translation_faults), one with
    # pr = 1 (privileged) may.
    b.protect(b_small.vaddr + 3 * 4 * KIB, 4 * KIB, writable=True, user=False)
    await card.invalidate_tlb(pasid=b.pasid, vaddr=b_small.vaddr + 3 * 4 * KIB)
    before = b_small.read(0, b_small.size)
    await cxt.mem_copy(b_small.vaddr + 3 * 4 * KIB + 8, a_small.vaddr, 1000,
                       src_akey=cxt.akey_for(a), dst_akey=cxt.akey_for(b, privileged=True))
    assert b_small.read(0, b_small.size) == (before[:0x3008] + a_small.read(0, 1000) +
                                             before[0x3008 + 1000:])

    hits, misses, walk_cycles = await card.tlb_counters()
    dut._log.info("TLB: %d hits, %d misses, %d walk cycles", hits, misses, walk_cycles)
    assert misses > 0 and hits > 0


class _BusBuffer:
    """A bus-address buffer behind the same read/write/vaddr face as a VirtualBuffer."""

    def __init__(self, buf):
        self.buf, self.vaddr, self.size = buf, buf.addr, buf.size

    def read(self, offset, length):
        return self.buf.read(offset, length)

    def write(self, offset, data_):
        self.buf.write(offset, data_)


# ---- faults --------------------------------------------------------------------------------

PAGES = 3                         # each faulting copy covers three pages of each buffer
FAULTS = ("not present", "read-only", "supervisor", "upper level not present")
POSITIONS = (0, 1, 2)             # first, middle, last page


def fault_cases(sample):
    """Cases from ``sample`` over the dimensions, less reads of read-only pages (allowed)."""
    cases = sample({"kind": FAULTS, "buffer": ("src", "dst"), "position": POSITIONS})
    return [(c["kind"], c["buffer"], c["position"]) for c in cases
            if not (c["kind"] == "read-only" and c["buffer"] == "src")]


async def run_fault_cases(dut, cases):
    tb, card, cxt = await started(dut)
    t = card.transport
    bystander = await card.create_context()       # runs a copy beside every faulting one
    a = await card.create_address_space(1)
    b = await card.create_address_space(2)
    expected_class = {"not present": ErrClass.ATF_NOT_PRESENT, "read-only": ErrClass.ATF_WRITE,
                      "supervisor": ErrClass.ATF_USER,
                      "upper level not present": ErrClass.ATF_NOT_PRESENT}
    for i, (kind, buffer, position) in enumerate(cases):
        dut._log.info("fault: %s on the %s at page %d", kind, buffer, position)
        # Each case in its own 2 MiB regions, placed so that the faulting page starts a page
        # table of its own (an upper-level fault then hits that page and those after it only).
        base = (i + 1) * 4 * MIB + 2 * MIB - position * 4 * KIB
        src = a.map_buffer(0x1000_0000_0000 + base, PAGES * 4 * KIB)
        dst = b.map_buffer(0x2000_0000_0000 + base, PAGES * 4 * KIB)
        src.write(0, data(src.size, i))
        background(dst)
        # The destination's frames as they are before the fault is made.
        frames = [b.translate(dst.vaddr + page * 4 * KIB, user=False) for page in range(PAGES)]
        space, buf = (a, src) if buffer == "src" else (b, dst)
        va = buf.vaddr + position * 4 * KIB
        if kind == "not present":
            space.unmap(va, 4 * KIB)
        elif kind == "read-only":
            space.protect(va, 4 * KIB, writable=False, user=True)
        elif kind == "supervisor":
            space.protect(va, 4 * KIB, writable=True, user=False)
        else:
            table, index = space.entry(va, Level.PD)
            table.write_u64(8 * index, 0)
        cst = Completion(card)
        side_src, side_dst = t.alloc_dma(16 * KIB), t.alloc_dma(16 * KIB)
        side_src.write(0, data(16 * KIB, 1000 + i))
        side_cst = Completion(card)
        await bystander.submit([copy_descriptor(side_dst.addr, side_src.addr, 16 * KIB,
                                                cst=side_cst)])
        first = await cxt.submit([copy_descriptor(
            dst.vaddr, src.vaddr + 0x10, PAGES * 4 * KIB - 0x20, cst=cst,
            src_akey=cxt.akey_for(a), dst_akey=cxt.akey_for(b))])
        await side_cst.wait("the other context's copy", card.timing.completion_timeout(16 * KIB))
        assert side_dst.read(0, 16 * KIB) == side_src.read(0, 16 * KIB)
        try:
            await cst.wait(f"{kind} on the {buffer}", card.timing.completion_timeout(16 * KIB))
        except SdxiOpError as e:
            log = e.log
        else:
            raise AssertionError(f"{kind} on the {buffer} at page {position}: no error")
        assert len(log) == 1, log
        check_entry(log[0], ErrStep.DATA_BUFFER, ErrSubStep.ATF, expected_class[kind], cxt,
                    index=first, buf=0 if buffer == "src" else 1)
        assert cst.error() and cxt.state() == CxtState.ERR_FN
        assert cxt.read_index() == first
        # Nothing was written at or after the faulting page (on either side, the copy's
        # source and destination pages correspond, the source 16 bytes ahead).
        for page in range(position, PAGES):
            assert b.read_physical(frames[page], 4 * KIB) == bytes([BACKGROUND]) * (4 * KIB), \
                f"destination page {page} written despite the fault at page {position}"
        await recover(card, cxt, first)


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def translation_faults_sampled(dut):
    await run_fault_cases(dut, fault_cases(lambda dims: pairwise(dims, seed=5)))


@cocotb.test(timeout_time=20000, timeout_unit="us")
async def sweep_translation_faults(dut):
    await run_fault_cases(dut, fault_cases(cross_product))


# ---- the TLB's rules -------------------------------------------------------------------------

@cocotb.test(timeout_time=2000, timeout_unit="us")
async def tlb_reuse_and_invalidation(dut):
    tb, card, cxt = await started(dut)
    t = card.transport
    a = await card.create_address_space(4)
    b = await card.create_address_space(5)
    src = a.map_buffer(0x6000_0000_0000, 4 * 4 * KIB)
    dst = b.map_buffer(0x6100_0000_0000, 4 * 4 * KIB)
    src.write(0, data(src.size, 10))

    async def copy_all():
        await cxt.copy_between(b, dst.vaddr, a, src.vaddr, src.size)
        return dst.read(0, dst.size)

    assert await copy_all() == src.read(0, src.size)
    hits, misses, _ = await card.tlb_counters()
    assert misses == 8, f"a cold copy of 4 + 4 pages walked {misses} times"
    assert await copy_all() == src.read(0, src.size)
    hits2, misses2, _ = await card.tlb_counters()
    assert misses2 == misses and hits2 == hits + 8, "a repeated copy did not hit"

    async def remap(page):
        """Point a source page at a new frame with new contents; return what it holds."""
        frame = t.alloc_dma(4 * KIB)
        frame.write(0, data(4 * KIB, 100 + page))
        a.map(src.vaddr + page * 4 * KIB, frame.addr, 4 * KIB)
        return frame.read(0, 4 * KIB)

    def page_of(raw, page):
        return raw[page * 4 * KIB:(page + 1) * 4 * KIB]

    # Without an invalidation the old translation stays (documented): the old frame is read.
    old = page_of(await copy_all(), 1)
    new = await remap(1)
    assert page_of(await copy_all(), 1) == old, "a remap was seen without an invalidation"
    await card.invalidate_tlb(pasid=a.pasid, vaddr=src.vaddr + 4 * KIB)
    assert page_of(await copy_all(), 1) == new, "page invalidation not honoured"

    for page, invalidate in ((2, lambda: card.invalidate_tlb(pasid=a.pasid)),
                             (3, lambda: card.invalidate_tlb()),
                             (0, lambda: sync(card))):
        new = await remap(page)
        await invalidate()
        assert page_of(await copy_all(), page) == new, f"invalidation for page {page} not honoured"
    # A PASID invalidation leaves other address spaces' entries alone.
    _, before, _ = await card.tlb_counters()
    await card.invalidate_tlb(pasid=b.pasid + 1)
    await copy_all()
    _, after, _ = await card.tlb_counters()
    assert after == before, "an invalidation of another PASID dropped entries"


async def sync(card):
    """An admin SYNC over every context: it also invalidates the TLB."""
    from sdxi_defs.descriptors import SyncFilter
    from sw.descriptors import admin_sync
    cst = Completion(card)
    await card.admin.submit([admin_sync(0, 0, SyncFilter.FN, cst)])
    await cst.wait("SYNC", card.timing.completion_timeout())


# ---- random mappings scored by the reference walk --------------------------------------------

def first_fault(space, vaddr, n, write, privileged=False):
    """The offset and ``PageFault`` of the first page of ``n`` bytes at ``vaddr`` the reference
    walk refuses, or None."""
    offset = 0
    while offset < n:
        try:
            space.translate(vaddr + offset, write=write, user=not privileged)
        except Exception as e:          # PageFault
            return offset, e
        offset += 4 * KIB - (vaddr + offset) % (4 * KIB)
    return None


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def random_mappings_against_the_reference(dut):
    from sw.address_space import PageFault
    tb, card, cxt = await started(dut)
    rng = random.Random(77)
    spaces = [await card.create_address_space(p) for p in (8, 9)]
    buffers = []
    for space in spaces:
        # 12 scattered 4 KiB pages around a 2 MiB page, two read-only or supervisor.
        base = 0x3000_0000_0000 + space.pasid * GIB
        small = space.map_buffer(base + 2 * MIB - 6 * 4 * KIB, 6 * 4 * KIB)
        large = space.map_buffer(base + 2 * MIB, 2 * MIB, page_size=2 * MIB)
        after = space.map_buffer(base + 4 * MIB, 6 * 4 * KIB)
        for buf in (small, large, after):
            buf.write(0, data(buf.size, rng.randrange(1 << 30)))
        view = type(small)(space, small.vaddr, 2 * MIB + 12 * 4 * KIB)
        for page in rng.sample(range(12), 2):
            va = (small.vaddr + page * 4 * KIB if page < 6
                  else after.vaddr + (page - 6) * 4 * KIB)
            if rng.random() < 0.5:
                space.protect(va, 4 * KIB, writable=False, user=True)
            else:
                space.protect(va, 4 * KIB, writable=True, user=False)
        buffers.append((space, view))
    copies = 0
    for i in range(14):
        (s_space, s_view), (d_space, d_view) = rng.choice(buffers), rng.choice(buffers)
        n = rng.randrange(1, 12 * KIB)

        def offset():
            """Around either end of the large page, where the small pages are, or inside it."""
            edge = rng.choice((0, 2 * MIB - 8 * KIB + 6 * 4 * KIB, MIB))
            return min(edge + rng.randrange(0, 12 * KIB), s_view.size - n)
        s_off, d_off = offset(), offset()
        s_va, d_va = s_view.vaddr + s_off, d_view.vaddr + d_off
        src_fault = first_fault(s_space, s_va, n, write=False)
        dst_fault = first_fault(d_space, d_va, n, write=True)
        dut._log.info("random copy %d: %d bytes %#x (PASID %d) -> %#x (PASID %d)", i, n, s_va,
                      s_space.pasid, d_va, d_space.pasid)
        if src_fault is None and dst_fault is None:
            await copy_and_check(cxt, d_space, d_view, d_off, s_space, s_view, s_off, n)
            copies += 1
            continue
        # The engine meets the faults in address order, the source first at equal offsets.
        candidates = [(f[0], 0, f[1]) for f in (src_fault,) if f] + \
                     [(f[0], 1, f[1]) for f in (dst_fault,) if f]
        at, buf, fault = min(candidates, key=lambda c: (c[0], c[1]))
        cst = Completion(card)
        first = await cxt.submit([copy_descriptor(d_va, s_va, n, cst=cst,
                                                  src_akey=cxt.akey_for(s_space),
                                                  dst_akey=cxt.akey_for(d_space))])
        try:
            await cst.wait("random copy", card.timing.completion_timeout(n))
        except SdxiOpError as e:
            log = e.log
        else:
            raise AssertionError(f"random copy {i}: no fault ({fault})")
        assert isinstance(fault, PageFault)
        check_entry(log[0], ErrStep.DATA_BUFFER, ErrSubStep.ATF, FAULT_CLASS[fault.fault],
                    cxt, index=first, buf=buf)
        await recover(card, cxt, first)
    assert copies >= 4, f"only {copies} random copies were fault-free"
