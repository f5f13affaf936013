"""What a hostile or careless host can do, and the documented way each one ends: a RESET
written the moment the function reads ERROR, bus mastering cleared in the middle of traffic,
operands and structures that run past 2^64 - 1, a write index more than a ring ahead, control
registers above the capabilities, reserved descriptor bits set. Every test watches the root
complex (every write, and every read where it matters) and ends by bringing the card back:
``card.start()`` and a verified copy."""

import cocotb
from cocotb.utils import get_sim_time

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import DmaBaseOp, OpGroup, VendorOp
from sdxi_defs.errors import ErrClass, ErrStep, ErrSubStep
from sdxi_defs.regmap import GSR, GSV, REGISTERS_BY_NAME as REG
from sdxi_defs.structures import CXT_CTL, ERRLOG_HD_ENT, CxtState
from sw.descriptors import admin_start, encode
from sw.errors import ErrorLogLoss, SdxiOpError
from sw.exerciser import DmaExerciser

from .cocotb_context_errors import check_entry, expect_error, recover
from .cocotb_contexts import check_guarded, copy, data, guarded, nop, started
from .cocotb_virtual_contexts import logged

TOP = 1 << 64
PCI_COMMAND = 0x04
BUS_MASTER = 1 << 2


class Watch:
    """Every memory write (and read) the root complex receives, with its time in ns."""

    def __init__(self, tb):
        self.writes = []
        self.reads = []
        tb.rc.on_write = lambda tlp: self.writes.append((get_sim_time("ns"), tlp.address,
                                                          tlp.length * 4))
        tb.rc.fault = lambda tlp: self.reads.append((get_sim_time("ns"), tlp.address,
                                                     tlp.length * 4))

    def after(self, t_ns):
        return [w for w in self.writes if w[0] > t_ns]

    def touching(self, low, high):
        """Writes and reads with a byte in [low, high)."""
        return [a for a in self.writes + self.reads if a[1] < high and a[1] + a[2] > low]

    def writes_outside(self, buffers, host):
        """Writes into host memory (``host``, a buffer: MSI-X messages go elsewhere) that are
        not within one of ``buffers`` (whole dwords around each, as TLPs carry them)."""
        def inside(a, n, buf):
            return buf.addr & ~3 <= a and a + n <= (buf.addr + buf.size + 3) & ~3
        return [(hex(a), n) for _, a, n in self.writes
                if host.addr <= a < host.addr + host.size
                and not any(inside(a, n, b) for b in buffers)]


async def comes_back(card):
    """The function activates again and a new context copies correctly."""
    t = card.transport
    await card.start()
    cxt = await card.create_context()
    src = t.alloc_dma(1000)
    src.write(0, data(1000, 99))
    dst, dst_addr = guarded(t, 1000)
    await cxt.mem_copy(dst_addr, src.addr, 1000)
    check_guarded(dst, 0, src.read(0, 1000))
    await card.stop()


async def wait_gsv(card, wanted, what, timeout_ns):
    """Poll STS0 back to back until it reads one of ``wanted``; return (state, time)."""
    start = get_sim_time("ns")
    while True:
        gsv = await card.state()
        if gsv in wanted:
            return gsv, get_sim_time("ns")
        assert get_sim_time("ns") - start < timeout_ns, f"{what}: still {gsv.name}"


@cocotb.test(timeout_time=1500, timeout_unit="us")
async def reset_from_error_waits_until_the_engine_has_stopped(dut):
    """Twelve contexts with work queued; a CXT_START of a context without an L1 entry sends
    the function to ERROR (step 3, re = 2). RESET is written as soon as ERROR is read. STOP
    must come only after the engine has written STOP_FN into every running context, and
    nothing may reach the host after STOP is read."""
    tb, card, t = await started(dut)
    src = t.alloc_dma(64 * 1024)
    src.write(0, data(64 * 1024, 1))
    cxts = [await card.create_context() for _ in range(12)]
    watch = Watch(tb)
    for cxt in cxts:
        dst = t.alloc_dma(64 * 1024)
        # Queued, not rung: the doorbells go with the admin descriptor below.
        first = cxt.reserve(16)
        for j in range(16):
            cxt.place(first + j, copy(src.addr + 4096 * j, dst.addr + 4096 * j, 4096))
    sts_addrs = {cxt.mem.cxt_sts.addr for cxt in cxts}
    unused = max(c.id for c in cxts) + 1               # its L1 entry is all zeros
    for cxt in cxts:
        await cxt.ring_doorbell()
    cst = card.admin.completion()
    await card.admin.submit([admin_start(unused, cst)])

    _, t_error = await wait_gsv(card, {GSV.ERROR}, "error", 200_000)
    await card.request(GSR.RESET)
    t_reset = get_sim_time("ns")
    _, t_stop = await wait_gsv(card, {GSV.STOP}, "reset from error", 200_000)
    tb.log.info("ERROR read at %.0f ns, RESET written at %.0f ns, STOP read at %.0f ns",
                t_error, t_reset, t_stop)
    assert t_reset - t_error < 1000, "RESET was not written in the microsecond ERROR was read"
    late_states = [w for w in watch.after(t_reset) if w[1] in sts_addrs]
    assert late_states, ("every context was stopped before RESET was written: the test does "
                         "not reach the window it is about")
    await t.sleep_ns(20_000)
    assert not watch.after(t_stop), f"writes after STOP was read: {watch.after(t_stop)[:4]}"
    for cxt in cxts:
        assert cxt.state() == CxtState.STOP_FN, f"context {cxt.id}: {cxt.state().name}"
    log = await card.read_error_log()
    assert [(e.step, e.sub_step, e.err_class, e.re, e.cxt_num) for e in log] == \
        [(ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.INVALID_ENTRY, 2, unused)], log
    await comes_back(card)


@cocotb.test(timeout_time=2500, timeout_unit="us")
async def bus_mastering_cleared_in_the_middle_of_traffic(dut):
    """The hard-block model drops the requests it has accepted once bus mastering is off,
    without reporting their sequence numbers. The DMA time-out ends every read and write that
    waits for them, so a soft stop, a hard stop and a RESET all finish, and nothing reaches the
    host after STOP is read; the card comes back once bus mastering is on again."""
    tb, card, t = await started(dut)
    await DmaExerciser(t).set_timeout(1000)            # clocks: 4 us
    src = t.alloc_dma(128 * 1024)
    src.write(0, data(128 * 1024, 2))
    watch = Watch(tb)
    cmd = await tb.pci.config_read_word(PCI_COMMAND)
    for gsr in (GSR.STOP_SF, GSR.STOP_HD, GSR.RESET):
        await card.start()
        cxts = [await card.create_context() for _ in range(4)]
        firsts = []
        for i, cxt in enumerate(cxts):
            dst = t.alloc_dma(32 * 1024)
            firsts.append(await cxt.submit([copy(src.addr + 32 * 1024 * i + 8192 * j,
                                                 dst.addr + 8192 * j, 8192)
                                            for j in range(4)]))
        await t.sleep_ns(1500)
        await tb.pci.config_write_word(PCI_COMMAND, cmd & ~BUS_MASTER)
        t_off = get_sim_time("ns")
        await card.request(gsr)
        _, t_stop = await wait_gsv(card, {GSV.STOP}, f"{gsr.name} with bus mastering off",
                                   150_000)
        tb.log.info("%s: STOP %.0f ns after bus mastering was cleared", gsr.name,
                    t_stop - t_off)
        done = sum(cxt.read_index() - first for cxt, first in zip(cxts, firsts))
        assert done < 16, "all the work finished before bus mastering was cleared"
        await t.sleep_ns(2000)
        assert not watch.after(t_stop), f"writes after STOP was read: {watch.after(t_stop)[:4]}"
        await tb.pci.config_write_word(PCI_COMMAND, cmd)
        await comes_back(card)


@cocotb.test(timeout_time=1500, timeout_unit="us")
async def nothing_runs_past_the_top_of_the_address_space(dut):
    """An operand whose last byte would lie past 2^64 - 1 is a descriptor error (step 7, DVF,
    ADDRESS_WRAP, with the operand) before anything moves; one that ends exactly at 2^64 - 1
    runs. A ring that would wrap stops the function (step 4); an error log that would wrap is
    never written (ERR_STS.err)."""
    tb, card, t = await started(dut)
    cxt = await card.create_context(vector=2)
    src = t.alloc_dma(8192)
    src.write(0, data(8192, 3))
    dst = t.alloc_dma(16384)
    watch = Watch(tb)
    high = TOP - 0x10

    def raw(layout, group, sub, **f):
        return lambda cst: encode(layout, group, sub, cst=cst, **f)

    def copy_of(src_addr, dst_addr, n):
        return lambda cst: copy(src_addr, dst_addr, n, cst=cst)

    wrap = ErrClass.ADDRESS_WRAP
    cases = [
        ("COPY destination", copy_of(src.addr, high, 32), 1),
        ("COPY source", copy_of(high, dst.addr, 32), 0),
        ("COPY of 4 GiB from 0xFFFF_FFFF_0000_0001", copy_of(TOP - 0xFFFF_FFFF, dst.addr,
                                                            1 << 32), 0),
        ("FILL", raw(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, psz=0, size=511,
                     addr0=TOP - 0x100, pattern=0x1234), 0),
        ("WRT_IMM", raw(dsc.DSC_DMAB_WRT_IMM, OpGroup.DMABASE, DmaBaseOp.WRT_IMM, size=15,
                        addr0=TOP - 8, data=0xAB), 0),
        ("REPCOPY source", raw(dsc.DSC_DMAB_REPCOPY, OpGroup.DMABASE, DmaBaseOp.REPCOPY,
                               count=0, addr0=TOP - 0x800, addr1=dst.addr), 0),
        ("REPCOPY destination", raw(dsc.DSC_DMAB_REPCOPY, OpGroup.DMABASE, DmaBaseOp.REPCOPY,
                                    count=2, addr0=src.addr, addr1=TOP - 0x2000), 1),
    ]
    for what, make, buf in cases:
        dut._log.info("wrap case: %s", what)
        await expect_error(card, cxt, make, ErrStep.DESCRIPTOR, ErrSubStep.DVF, wrap, buf=buf)
    assert dst.read(0, 16384) == bytes(16384), "a refused descriptor wrote its destination"
    # Bus addresses below 4 KiB are never allocated (sw/cocotb_transport.py): every wrapped
    # range above lies there.
    assert not watch.touching(TOP - (1 << 32), TOP), "an access at the top of the space"
    assert not watch.touching(0, 0x1000), "an access at a wrapped address"

    # Ending exactly at 2^64 - 1 is allowed: the writes reach the top (the model drops them).
    await cxt.mem_copy(TOP - 32, src.addr, 32)
    top = watch.touching(TOP - 32, TOP)
    assert sum(n for _, _, n in top) == 32 and all(a + n <= TOP for _, a, n in top), top

    # A ring that would run past the top: the function stops when the context is started.
    await card.stop_context(cxt)
    ctl = CXT_CTL.decode(cxt.mem.cxt_ctl.read(0, 64))
    ctl["ds_ring_ptr"] = (TOP - 0x8000) >> 6            # 64 KiB of ring from 32 KiB below
    cxt.mem.cxt_ctl.write(0, CXT_CTL.encode(**ctl))
    cst = card.admin.completion()
    await card.admin.submit([admin_start(cxt.id, cst)])
    await card.wait_state({GSV.ERROR}, "ring past the top")
    log = await card.read_error_log()
    assert [(e.step, e.sub_step, e.err_class, e.re) for e in log] == \
        [(ErrStep.CXT_CTL, ErrSubStep.DVF, wrap, 2)], log
    assert not watch.touching(TOP - (1 << 32), TOP - 32) and not watch.touching(0, 0x1000)
    await card.stop()

    # An error log that would run past the top: the entry is not written, ERR_STS.err is set.
    await card.start()
    cxt = await card.create_context()
    await card.write_reg("ERR_CFG", REG["ERR_CFG"].encode(en=1, sz=2, ptr=(TOP - 0x1000) >> 12))
    cst = cxt.completion()
    first = await cxt.submit([encode(dsc.DSC_GENERIC, OpGroup.DMABASE, 9, cst=cst)])
    try:
        await cst.wait("bad opcode", card.timing.completion_timeout())
    except SdxiOpError as e:
        # The driver read ERR_STS: sts and err set, no entry (ERR_WRT did not move).
        assert e.log == [] and e.lost == [ErrorLogLoss.WRITE_FAILED], (e.log, e.lost)
    else:
        raise AssertionError("an unknown opcode completed")
    assert cxt.state() == CxtState.ERR_FN and cxt.read_index() == first
    assert not watch.touching(TOP - (1 << 32), TOP - 32) and not watch.touching(0, 0x1000)
    await card.stop()
    await comes_back(card)


@cocotb.test(timeout_time=1500, timeout_unit="us")
async def a_write_index_more_than_a_ring_ahead_is_refused(dut):
    """A full ring (write index = read index + ring size) runs every slot once; one slot more
    is an error of the context (step 6, DVF, WRITE_INDEX_AHEAD, no descriptor index) before
    any slot runs, so no slot runs twice."""
    tb, card, t = await started(dut)
    cxt = await card.create_context()
    entries = cxt.mem.entries
    csts = {i: cxt.completion() for i in range(63, entries, 64)}     # a CST every 64 slots
    first = cxt.reserve(entries)
    for i in range(entries):
        cxt.place(first + i, nop(cst=csts.get(i)))
    await cxt.ring_doorbell()
    await cxt.wait_read_index(first + entries, timeout_ns=200_000)
    assert all(c.done() for c in csts.values())

    # The slots still hold valid NOPs; the producer claims one more than the ring holds.
    for cst in csts.values():
        cst.buf.write(0, bytes([1]))                   # signal = 1 again
    watch = Watch(tb)
    ahead = cxt.read_index() + entries + 1
    cxt.mem.write_index.write_u64(0, ahead)
    await cxt.ring_doorbell(ahead)
    await cxt.wait_state({CxtState.ERR_FN}, "write index a ring and one ahead")
    log = await logged(card, "write index a ring and one ahead")
    assert len(log) == 1, log
    check_entry(log[0], ErrStep.WRITE_INDEX, ErrSubStep.DVF, ErrClass.WRITE_INDEX_AHEAD, cxt)
    assert cxt.read_index() == first + entries, "a slot ran a second time"
    assert not any(c.done() for c in csts.values()), "a descriptor ran a second time"
    # Nothing but CXT_STS (ERR_FN) and the error log was written.
    assert not watch.writes_outside([cxt.mem.cxt_sts, card.error_log], t.host_memory()), \
        watch.writes_outside([cxt.mem.cxt_sts, card.error_log], t.host_memory())
    # The producer's index is mended; the context runs again.
    cxt.mem.write_index.write_u64(0, cxt.read_index())
    cxt.write_index = cxt.read_index()
    await recover(card, cxt)
    await card.stop()
    await comes_back(card)


@cocotb.test(timeout_time=1000, timeout_unit="us")
async def error_log_size_above_the_capability_is_clamped(dut):
    """ERR_CFG.sz above CAP1.max_errlog_sz stores max_errlog_sz (and reads back so); the log
    wraps at that size: an entry with ERR_WRT = 40 000 lands in slot 40 000 mod 32 Ki, inside
    the largest log the host may configure."""
    tb, card, t = await started(dut)
    cxt = await card.create_context()
    max_sz = REG["CAP1"].decode(card.caps.cap1)["max_errlog_sz"]
    entries = 32 << max_sz
    log_buf = t.alloc_dma(entries * 64)
    await card.write_reg("ERR_CFG", 0)
    await card.write_reg("ERR_WRT", 40_000)
    await card.write_reg("ERR_RD", 40_000)
    await card.write_reg("ERR_CFG", REG["ERR_CFG"].encode(en=1, sz=max_sz + 1,
                                                          ptr=log_buf.addr >> 12))
    cfg = REG["ERR_CFG"].decode(await card.read_reg("ERR_CFG"))
    assert (cfg["en"], cfg["sz"], cfg["ptr"]) == (1, max_sz, log_buf.addr >> 12), cfg
    watch = Watch(tb)
    cst = cxt.completion()
    await cxt.submit([encode(dsc.DSC_GENERIC, OpGroup.DMABASE, 9, cst=cst)])
    await cxt.wait_state({CxtState.ERR_FN}, "bad opcode")
    for _ in range(100):                # the entry is written after ERR_FN
        if await card.read_reg("ERR_WRT") != 40_000:
            break
        await t.sleep_ns(200)
    assert await card.read_reg("ERR_WRT") == 40_001
    # Every write in the span a log of the size written (sz + 1) would cover, but the CST's.
    span = (log_buf.addr, log_buf.addr + 2 * entries * 64)
    log_writes = [(a, n) for _, a, n in watch.writes
                  if a < span[1] and a + n > span[0] and not cst.addr <= a < cst.addr + 32]
    slot = log_buf.addr + (40_000 % entries) * 64
    assert log_writes and all(slot <= a and a + n <= slot + 64 for a, n in log_writes), \
        (hex(slot), [(hex(a), n) for a, n in log_writes])
    entry = ERRLOG_HD_ENT.decode(log_buf.read((40_000 % entries) * 64, 64))
    assert (entry["vl"], entry["err_class"]) == (1, ErrClass.UNKNOWN_OPCODE), entry
    await card.stop()
    await comes_back(card)


@cocotb.test(timeout_time=600, timeout_unit="us")
async def reserved_descriptor_bits_are_ignored(dut):
    """Every bit that no field of a descriptor's layout defines is set; the descriptors run as
    if they were clear (docs/spec-choices.md, "Descriptors")."""
    tb, card, t = await started(dut)
    cxt = await card.create_context()
    src = t.alloc_dma(4096)
    src.write(0, data(4096, 5))

    def with_reserved(layout, raw):
        defined = 0
        for f in layout.fields:
            defined |= f.mask
        value = int.from_bytes(raw, "little") | (~defined & ((1 << 512) - 1))
        return value.to_bytes(64, "little")

    copy_dst, copy_addr = guarded(t, 1000, offset=3)
    fill_dst, fill_addr = guarded(t, 300)
    imm_dst, imm_addr = guarded(t, 20)
    csts = [cxt.completion() for _ in range(4)]
    pattern = bytes(range(8))
    descriptors = [
        with_reserved(dsc.DSC_DMAB_COPY, copy(src.addr + 5, copy_addr, 1000, cst=csts[0])),
        with_reserved(dsc.DSC_VENDOR_FILL, encode(
            dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, cst=csts[1], psz=0, size=299,
            addr0=fill_addr, pattern=int.from_bytes(pattern, "little"))),
        with_reserved(dsc.DSC_DMAB_WRT_IMM, encode(
            dsc.DSC_DMAB_WRT_IMM, OpGroup.DMABASE, DmaBaseOp.WRT_IMM, cst=csts[2], size=19,
            addr0=imm_addr, data=int.from_bytes(bytes(range(20)), "little"))),
        with_reserved(dsc.DSC_DMAB_NOP, nop(cst=csts[3])),
    ]
    watch = Watch(tb)
    first = await cxt.submit(descriptors)
    for cst in csts:
        await cst.wait("descriptor with reserved bits set", card.timing.completion_timeout())
    await cxt.wait_read_index(first + 4)
    check_guarded(copy_dst, 3, src.read(5, 1000))
    check_guarded(fill_dst, 0, (pattern * 38)[:300])
    check_guarded(imm_dst, 0, bytes(range(20)))
    # Every write went to a destination, a CST or a CXT_STS (the admin context's read index
    # is written back at the next turn): no reserved bit sent one elsewhere.
    exact = [t.host_memory().view(addr - t.host_memory().addr, n)
             for addr, n in ((copy_addr, 1000), (fill_addr, 300), (imm_addr, 20))]
    allowed = exact + [c.buf for c in csts] + [cxt.mem.cxt_sts, card.admin.mem.cxt_sts]
    assert not watch.writes_outside(allowed, t.host_memory()), \
        watch.writes_outside(allowed, t.host_memory())
    await card.stop()
    await comes_back(card)
