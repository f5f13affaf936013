"""Client contexts from the host driver, in the Linux driver's order: create, copy, fill,
write-immediate, replicate, interrupt, stop, restart, destroy; rings that wrap, doorbells out
of order, slots not yet valid, many contexts at once, function stops during traffic.

Every destination has guard bytes around it that must survive.
"""

import random

import cocotb

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import DmaBaseOp, OpGroup
from sdxi_defs.regmap import GSR, GSV
from sdxi_defs.structures import CxtState
from sim.tb import SdxiTb
from sw.context import Completion
from sw.descriptors import copy_descriptor, encode

VARIANTS = ("default", "w256")
GUARD = 0x5A


def data(n, seed):
    return random.Random(seed).randbytes(n)


def guarded(t, n, offset=0):
    """A destination of ``n`` bytes at ``offset`` into a buffer of guard bytes."""
    buf = t.alloc_dma(n + offset + 128)
    buf.write(0, bytes([GUARD]) * buf.size)
    return buf, buf.addr + 64 + offset


def check_guarded(buf, offset, want):
    got = buf.read(0, buf.size)
    start = 64 + offset
    assert got[:start] == bytes([GUARD]) * start, "guard bytes before the destination changed"
    assert got[start:start + len(want)] == want, "destination differs"
    assert got[start + len(want):] == bytes([GUARD]) * (buf.size - start - len(want)), \
        "guard bytes after the destination changed"


def nop(cst=None, fe=0):
    return encode(dsc.DSC_DMAB_NOP, OpGroup.DMABASE, DmaBaseOp.NOP, cst=cst, fe=fe)


def copy(src, dst, n, cst=None, fe=0):
    """The driver's COPY descriptor, source first as the descriptor lists its buffers."""
    return copy_descriptor(dst, src, n, cst=cst, fe=fe)


async def started(dut, **card_kwargs):
    tb = SdxiTb(dut)
    card = await tb.card(**card_kwargs)
    await card.start()
    return tb, card, card.transport


@cocotb.test(timeout_time=400, timeout_unit="us")
async def copy_fill_write_imm_repcopy(dut):
    tb, card, t = await started(dut)
    cxt = await card.create_context()

    src = t.alloc_dma(8192)
    payload = data(5000, 1)
    src.write(3, payload)
    dst, dst_addr = guarded(t, 5000, 7)
    await cxt.mem_copy(dst_addr, src.addr + 3, 5000)
    check_guarded(dst, 7, payload)

    for size, n, off in ((8, 1, 0), (16, 1000, 5), (32, 4100, 3)):
        pattern = data(size, size)
        fill, fill_addr = guarded(t, n, off)
        await cxt.fill(fill_addr, pattern, n)
        check_guarded(fill, off, (pattern * (n // size + 1))[:n])

    imm, imm_addr = guarded(t, 13, 1)
    await cxt.write_imm(imm_addr, b"hello, sdxi!!")
    check_guarded(imm, 1, b"hello, sdxi!!")

    block = data(4096, 9)
    src.write(0, block)
    rep, rep_addr = guarded(t, 3 * 4096, 0)
    await cxt.rep_copy(rep_addr, src.addr, 3)
    check_guarded(rep, 0, block * 3)

    await cxt.wait_read_index(6)
    await card.destroy_context(cxt)
    await card.stop()


@cocotb.test(timeout_time=400, timeout_unit="us")
async def linux_flow_with_interrupt_and_stop(dut):
    """Copy then a fenced INTR (Linux's interrupt mode); data and CST reach the root complex
    before the MSI-X write. Then the two-slot stop, a restart that resumes, and teardown."""
    tb, card, t = await started(dut)
    cxt = await card.create_context(vector=3)
    assert cxt.state() == CxtState.RUN, "CXT_START sets CXT_STS.state to RUN"

    src = t.alloc_dma(4096)
    payload = data(3000, 2)
    src.write(0, payload)
    dst, dst_addr = guarded(t, 3000)
    cst = Completion(card)
    writes = []
    msi_base = tb.rc.msi_region.get_absolute_address(0) if hasattr(
        tb.rc.msi_region, "get_absolute_address") else 0x8000_0000
    tb.rc.on_write = lambda tlp: writes.append(
        "msi" if tlp.address >= msi_base and tlp.address < msi_base + 0x1000000 else
        "cst" if cst.addr <= tlp.address < cst.addr + 32 else
        "data" if dst_addr <= tlp.address < dst_addr + 3000 else "other")
    t.clear_interrupt(3)
    await cxt.submit([copy(src.addr, dst_addr, 3000, cst=cst),
                      encode(dsc.DSC_INTR, OpGroup.INTR, dsc.IntrOp.INTR, fe=1, akey=1)])
    assert await t.wait_interrupt(3, 40_000), "the INTR descriptor's vector never came"
    tb.rc.on_write = None
    assert cst.done() and not cst.error()
    check_guarded(dst, 0, payload)
    order = [w for w in writes if w != "other"]
    assert "msi" in order and order.index("msi") == len(order) - 1, order
    assert order.count("cst") == 2, "flags dword then signal"

    # The two-slot stop (CXT_STOP + SYNC(STOP) with the CST), soft and then hard, of a
    # context with 24 copies queued: it stops between two of them, having finished every
    # copy below its read index and started none above it.
    n = 24
    for hard in (False, True):
        dsts = [guarded(t, 1024) for _ in range(n)]
        first = await cxt.submit([copy(src.addr, d_addr, 1024) for _, d_addr in dsts])
        await card.stop_context(cxt, hard=hard)
        assert cxt.state() == CxtState.STOP_SW
        done = cxt.read_index() - first
        assert done < n, "the stop came after all the work: the test proves nothing"
        await t.sleep_ns(1000)
        assert cxt.read_index() == first + done, "a stopped context must not consume"
        for i, (d, _) in enumerate(dsts):
            check_guarded(d, 0, payload[:1024] if i < done else b"")
        # A restart resumes at the read index.
        await card.start_context(cxt)
        await cxt.wait_read_index(first + n)
        for d, _ in dsts:
            check_guarded(d, 0, payload[:1024])
    await card.destroy_context(cxt)
    await card.stop()


@cocotb.test(timeout_time=600, timeout_unit="us")
async def ring_wrap_doorbells_and_invalid_slots(dut):
    tb, card, t = await started(dut)
    src = t.alloc_dma(4096)
    src.write(0, data(4096, 3))
    # Rings of 1024, a size that is not a power of two, and the maximum; each starts a few
    # slots before a wrap (the engine takes the start index from CXT_STS.read_index).
    max_entries = 1024 << ((card.caps.cap0 >> 24) & 0x1F)
    for cxt_id, (entries, start) in enumerate(((1024, 1020), (1500, 5 * 1500 + 1495),
                                               (max_entries, max_entries - 3)), start=1):
        cxt = await card.create_context(cxt_id, ring_entries=entries, start_index=start)
        dst, dst_addr = guarded(t, 8 * 64)
        descs = [copy(src.addr + 64 * i, dst_addr + 64 * i, 64) for i in range(8)]
        first = await cxt.submit(descs)
        assert first == start
        await cxt.wait_read_index(start + 8)
        check_guarded(dst, 0, src.read(0, 512))
        # The ring really wrapped: slot 0 holds one of these descriptors.
        assert cxt.mem.ring.read(0, 1)[0] & 1

    # Out-of-order and duplicate doorbells; a slot left invalid below the write index.
    cxt = card.contexts[1]
    first = cxt.reserve(3)
    dst, dst_addr = guarded(t, 3 * 64)
    raws = [copy(src.addr + 64 * i, dst_addr + 64 * i, 64) for i in range(3)]
    cxt.place(first, raws[0])
    cxt.place(first + 1, raws[1], valid=False)
    cxt.place(first + 2, raws[2])
    await cxt.ring_doorbell(first + 3)
    await cxt.ring_doorbell(first + 1)        # smaller: must not move anything back
    await cxt.ring_doorbell(first + 3)        # duplicate
    await cxt.wait_read_index(first + 1)
    await t.sleep_ns(3000)
    assert cxt.read_index() == first + 1, "the engine consumed past a slot with vl = 0"
    assert cxt.state() == CxtState.RUN, "an invalid slot is not an error"
    cxt.place(first + 1, raws[1])
    await cxt.ring_doorbell(first + 3)
    await cxt.wait_read_index(first + 3)
    check_guarded(dst, 0, src.read(0, 192))
    await card.stop()


@cocotb.test(timeout_time=600, timeout_unit="us")
async def many_contexts_at_once(dut):
    tb, card, t = await started(dut)
    src = t.alloc_dma(64 * 1024)
    src.write(0, data(64 * 1024, 4))
    cxts = [await card.create_context(qos=i % 4) for i in range(8)]
    jobs = []
    for i, cxt in enumerate(cxts):
        dst, dst_addr = guarded(t, 16 * 256)
        first = await cxt.submit([copy(src.addr + 4096 * i + 256 * j, dst_addr + 256 * j, 256)
                                  for j in range(16)])
        jobs.append((cxt, first, dst, 4096 * i))
    for cxt, first, dst, off in jobs:
        await cxt.wait_read_index(first + 16, timeout_ns=200_000)
        check_guarded(dst, 0, src.read(off, 4096))
    await card.stop()


@cocotb.test(timeout_time=600, timeout_unit="us")
async def function_stop_during_traffic(dut):
    tb, card, t = await started(dut)
    src = t.alloc_dma(256 * 1024)
    src.write(0, data(256 * 1024, 5))
    for gsr in (GSR.STOP_SF, GSR.STOP_HD):
        cxt = await card.create_context()
        dsts = [guarded(t, 64 * 1024) for _ in range(4)]
        first = await cxt.submit([copy(src.addr + 64 * 1024 * i, d[1], 64 * 1024)
                                  for i, d in enumerate(dsts)])
        await t.sleep_ns(1000)
        await card.request(gsr)
        await card.wait_state({GSV.STOP}, "stop during traffic")
        assert cxt.state() == CxtState.STOP_FN
        done = cxt.read_index() - first
        assert done < 4, "the stop came after all the work: the test proves nothing"
        for i in range(done):
            check_guarded(dsts[i][0], 0, src.read(64 * 1024 * i, 64 * 1024))
        # Restart the function from scratch; a new context works.
        await card.start()
        again = await card.create_context()
        d, d_addr = guarded(t, 1000)
        await again.mem_copy(d_addr, src.addr, 1000)
        check_guarded(d, 0, src.read(0, 1000))
    await card.stop()


@cocotb.test(timeout_time=300, timeout_unit="us")
async def batching_and_ordering(dut):
    """n queued descriptors take at most ceil(n/8) + 1 ring reads."""
    tb, card, t = await started(dut)
    cxt = await card.create_context()
    ring = cxt.mem.ring
    ring_reads = []
    tb.rc.fault = lambda tlp: ring_reads.append(tlp.address) if (
        ring.addr <= tlp.address < ring.addr + ring.size) else None
    n = 20
    first = cxt.reserve(n)
    for i in range(n):
        cxt.place(first + i, nop())
    await cxt.ring_doorbell()
    await cxt.wait_read_index(first + n)
    tb.rc.fault = None
    assert len(ring_reads) <= (n + 7) // 8 + 1, f"{len(ring_reads)} ring reads for {n}"
    await card.stop()


@cocotb.test(timeout_time=300, timeout_unit="us")
async def descriptors_overlap_without_fence(dut):
    """With fe = 0, descriptor k + 1's source read leaves before descriptor k's CST write;
    with fe = 1 it waits for it."""
    from cocotb.utils import get_sim_time
    tb, card, t = await started(dut)
    cxt = await card.create_context()
    size = 16 * 1024
    src = [t.alloc_dma(size) for _ in range(2)]
    dst = [t.alloc_dma(size) for _ in range(2)]
    for i, s in enumerate(src):
        s.write(0, data(size, 20 + i))
    for fe in (0, 1):
        cst = Completion(card)
        first_read = []
        cst_write = []
        tb.rc.fault = lambda tlp: first_read.append(get_sim_time("ns")) if (
            not first_read and src[1].addr <= tlp.address < src[1].addr + size) else None
        tb.rc.on_write = lambda tlp: cst_write.append(get_sim_time("ns")) if (
            tlp.address == cst.addr) else None
        start = await cxt.submit([copy(src[0].addr, dst[0].addr, size, cst=cst),
                                  copy(src[1].addr, dst[1].addr, size, fe=fe)])
        await cxt.wait_read_index(start + 2)
        tb.rc.fault = tb.rc.on_write = None
        assert dst[0].read(0, size) == src[0].read(0, size)
        assert dst[1].read(0, size) == src[1].read(0, size)
        if fe:
            assert first_read[0] > cst_write[-1], "a fenced descriptor started early"
        else:
            assert first_read[0] < cst_write[-1], "descriptors did not overlap"
    await card.stop()
