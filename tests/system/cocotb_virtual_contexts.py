"""Contexts whose own structures live in a PASID address space (L1 pv = 1): the ring, CXT_STS,
write index and CSTs are virtual memory the engine translates, a page of the ring at a time;
a page of any of them the engine may not use ends in the error docs/spec-choices.md names, and
the context runs again once the driver has mended the page and restarted it."""

import cocotb

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import AdminOp, OpGroup
from sdxi_defs.errors import ErrClass, ErrStep, ErrSubStep
from sdxi_defs.regmap import GSV
from sdxi_defs.structures import CxtState
from sw.address_space import HEAP_BASE
from sw.descriptors import admin_update, encode

from .cocotb_context_errors import check_entry
from .cocotb_contexts import check_guarded, copy, data, guarded, started

PAGE = 4096
SLOTS_PER_PAGE = PAGE // 64


async def copies_complete(card, cxt, first, pairs):
    """Wait for the read index to pass ``first + len(pairs)``; every destination then holds
    its source and its guard bytes are untouched."""
    await cxt.wait_read_index(first + len(pairs))
    for src, dst, _ in pairs:
        check_guarded(dst, 0, src.read(0, src.size))


def copies(t, count, seed, n=192):
    """``count`` (source, guarded destination, destination address) triples of ``n`` bytes."""
    out = []
    for i in range(count):
        src = t.alloc_dma(n)
        src.write(0, data(n, seed + i))
        dst, dst_addr = guarded(t, n)
        out.append((src, dst, dst_addr))
    return out


@cocotb.test(timeout_time=1500, timeout_unit="us")
async def context_structures_in_an_address_space(dut):
    tb, card, t = await started(dut)
    home = await card.create_address_space(20)
    data_space = await card.create_address_space(21)
    # A user context whose ring starts 8 slots before the end of its first page, so that the
    # first batches are cut at page boundaries.
    cxt = await card.create_context(space=home, start_index=SLOTS_PER_PAGE - 8)
    assert cxt.state() == CxtState.RUN, "CXT_STS (virtual) does not say RUN after CXT_START"
    _, misses_before, _ = await card.tlb_counters()

    # 150 copies without CSTs over three ring pages, then one with a CST (in the space).
    pairs = copies(t, 150, seed=100)
    first = cxt.reserve(len(pairs) + 1)
    for i, (src, _, dst_addr) in enumerate(pairs):
        cxt.place(first + i, copy(src.addr, dst_addr, src.size))
    last = cxt.completion()
    cxt.place(first + len(pairs), copy(pairs[0][0].addr, pairs[0][2], 192, cst=last))
    await cxt.ring_doorbell()
    await last.wait("copies through a virtual ring", card.timing.completion_timeout(64 << 10))
    await copies_complete(card, cxt, first, pairs + [pairs[0]])
    assert cxt.read_index() == first + len(pairs) + 1

    # Buffers of another address space, through an AKey, from the same context.
    src = data_space.map_buffer(0x4000_0000, 3 * PAGE)
    dst = data_space.map_buffer(0x5000_0000, 3 * PAGE)
    src.write(0, data(3 * PAGE, 7))
    await cxt.copy_between(data_space, dst.vaddr + 100, data_space, src.vaddr + 50, 2 * PAGE)
    assert dst.read(100, 2 * PAGE) == src.read(50, 2 * PAGE)
    assert dst.read(0, 100) == bytes(100)

    # A privileged context: its structures are on supervisor pages.
    kernel = await card.create_context(space=home, privileged=True)
    src = t.alloc_dma(1000)
    src.write(0, data(1000, 9))
    d, d_addr = guarded(t, 1000)
    await kernel.mem_copy(d_addr, src.addr, 1000)
    check_guarded(d, 0, src.read(0, 1000))
    hits, misses, _ = await card.tlb_counters()
    assert misses > misses_before and hits > 0, (hits, misses)
    assert await card.read_error_log() == []


async def logged(card, what):
    """The error-log entries of a context that has just stopped in ERR_FN (which it says
    before its entry is written), waiting up to 20 us for them."""
    for _ in range(100):
        log = await card.read_error_log()
        if log:
            return log
        await card.transport.sleep_ns(200)
    raise AssertionError(f"{what}: no error-log entry")


async def failed_with(card, cxt, step, err_class, *, index):
    """The context stops in ERR_FN with one entry: ``step``, ATF, ``err_class``, ``index``."""
    await cxt.wait_state({CxtState.ERR_FN}, err_class.name)
    log = await logged(card, err_class.name)
    assert len(log) == 1, [str(e) for e in log]
    check_entry(log[0], step, ErrSubStep.ATF, err_class, cxt, index=index)


@cocotb.test(timeout_time=2000, timeout_unit="us")
async def faults_on_context_structures(dut):
    tb, card, t = await started(dut)
    home = await card.create_address_space(30)
    cxt = await card.create_context(space=home)
    bystander = await card.create_context()
    ring = cxt.mem.ring

    # ---- the ring: its second page is not present ----------------------------------------------
    second = ring.addr + PAGE
    home.unmap(second, PAGE)
    await card.invalidate_tlb(home.pasid, second)
    pairs = copies(t, SLOTS_PER_PAGE + 8, seed=200)
    first = cxt.reserve(len(pairs))
    for i, (src, _, dst_addr) in enumerate(pairs[:SLOTS_PER_PAGE]):
        cxt.place(first + i, copy(src.addr, dst_addr, src.size))
    await cxt.ring_doorbell()
    await failed_with(card, cxt, ErrStep.DESCRIPTOR, ErrClass.ATF_NOT_PRESENT,
                      index=SLOTS_PER_PAGE)
    await copies_complete(card, cxt, first, pairs[:SLOTS_PER_PAGE])
    for _, dst, _ in pairs[SLOTS_PER_PAGE:]:
        check_guarded(dst, 0, b"")
    # The driver maps the page again, writes its descriptors and restarts the context.
    home.map_buffer(second, PAGE)
    for i, (src, _, dst_addr) in enumerate(pairs[SLOTS_PER_PAGE:], start=SLOTS_PER_PAGE):
        cxt.place(first + i, copy(src.addr, dst_addr, src.size))
    await card.stop_context(cxt)
    await card.start_context(cxt)
    await cxt.ring_doorbell()
    await copies_complete(card, cxt, first, pairs)

    # ---- a CST on a read-only page: nothing moves, nothing is written to it ----------------------
    cst = cxt.completion()
    home.protect(cst.addr & -PAGE, PAGE, writable=False, user=True)
    await card.invalidate_tlb(home.pasid, cst.addr)
    (src, dst, dst_addr), = copies(t, 1, seed=300, n=4096)
    other, = copies(t, 1, seed=301, n=4096)
    slot = await cxt.submit([copy(src.addr, dst_addr, 4096, cst=cst)])
    await bystander.mem_copy(other[2], other[0].addr, 4096)     # another context keeps going
    check_guarded(other[1], 0, other[0].read(0, 4096))
    await failed_with(card, cxt, ErrStep.CST_BLK, ErrClass.ATF_WRITE, index=slot)
    assert not cst.done() and not cst.error(), "the read-only CST was written"
    check_guarded(dst, 0, b"")
    assert cxt.read_index() == slot
    home.protect(cst.addr & -PAGE, PAGE, writable=True, user=True)
    await card.stop_context(cxt)
    await card.start_context(cxt)
    await cxt.ring_doorbell()
    await cst.wait("the copy once its CST is writable", card.timing.completion_timeout(4096))
    check_guarded(dst, 0, src.read(0, 4096))

    # ---- the write index on a supervisor page: reported when the context next reads it -------
    await card.stop_context(cxt)
    wi = cxt.mem.write_index.addr
    home.protect(wi & -PAGE, PAGE, writable=True, user=False)
    await card.invalidate_tlb(home.pasid, wi)
    await card.start_context(cxt)
    (src, dst, dst_addr), = copies(t, 1, seed=400)
    slot = await cxt.submit([copy(src.addr, dst_addr, src.size)])
    await failed_with(card, cxt, ErrStep.WRITE_INDEX, ErrClass.ATF_USER, index=None)
    check_guarded(dst, 0, b"")
    home.protect(wi & -PAGE, PAGE, writable=True, user=True)
    await card.stop_context(cxt)
    await card.start_context(cxt)
    await cxt.ring_doorbell()
    await copies_complete(card, cxt, slot, [(src, dst, dst_addr)])

    # ---- CXT_STS read-only when the context starts: the function stops (step 5, re = 2) -----------
    await card.stop_context(cxt)
    sts = cxt.mem.cxt_sts.addr
    home.protect(sts & -PAGE, PAGE, writable=False, user=True)
    await card.invalidate_tlb(home.pasid, sts)
    await card.admin.submit([encode(dsc.DSC_CXT_START, OpGroup.ADMIN, AdminOp.CXT_START_NM,
                                    fe=1, cxt_start=cxt.id, cxt_end=cxt.id)])
    await card.wait_state({GSV.ERROR}, "CXT_STS on a read-only page")
    log = await card.read_error_log()
    assert [(e.step, e.sub_step, e.err_class, e.re, e.cxt_num) for e in log] == [
        (ErrStep.CXT_STS, ErrSubStep.ATF, ErrClass.ATF_WRITE, 2, cxt.id)], [str(e) for e in log]
    assert cxt.state() == CxtState.STOP_SW, "the read-only CXT_STS was written"

    # ---- the same on the refresh after CXT_UPD of a running context ------------------------------
    # The function then stops every running context (STOP_FN to its CXT_STS): nothing may go
    # to the virtual address as if it were a bus address.
    await card.start()
    cxt = await card.create_context(space=home)
    (src, dst, dst_addr), = copies(t, 1, seed=500)
    await cxt.mem_copy(dst_addr, src.addr, src.size)
    stray = []
    tb.rc.on_write = lambda tlp: stray.append(tlp.address) if tlp.address >= HEAP_BASE else None
    sts = cxt.mem.cxt_sts.addr
    home.protect(sts & -PAGE, PAGE, writable=False, user=True)
    await card.invalidate_tlb(home.pasid, sts)
    done = card.admin.completion()
    await card.admin.submit([admin_update(cxt.id, cxt.id, done)])
    await done.wait("CXT_UPD", card.timing.completion_timeout())
    await cxt.submit([copy(src.addr, dst_addr, src.size)])
    await card.wait_state({GSV.ERROR}, "CXT_STS on a read-only page at a refresh")
    log = await card.read_error_log()
    assert [(e.step, e.sub_step, e.err_class, e.re, e.cxt_num) for e in log] == [
        (ErrStep.CXT_STS, ErrSubStep.ATF, ErrClass.ATF_WRITE, 2, cxt.id)], [str(e) for e in log]
    await t.sleep_ns(5000)
    assert stray == [], f"writes to virtual addresses taken as bus addresses: {stray}"
    assert cxt.state() == CxtState.RUN, "the read-only CXT_STS was written"
