"""Bad input ends in the error the spec names and never in a hang: each case below writes an
error-log entry (checked field by field), completes its CST with er = 1, leaves its context in
ERR_FN with the read index at the failed slot, and the context recovers after the driver
replaces the slot and stops and restarts it. A bad context table stops the function."""

import cocotb

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import AdminOp, DmaBaseOp, IntrOp, OpGroup, VendorOp
from sdxi_defs.errors import ErrClass, ErrStep, ErrSubStep
from sdxi_defs.regmap import GSR, GSV
from sdxi_defs.structures import CXT_CTL, ERRLOG_HD_ENT, CxtState
from sim.tb import SdxiTb
from sw.context import Completion
from sw.descriptors import admin_start, encode
from sw.errors import ErrorLogLoss, SdxiOpError

from .cocotb_contexts import check_guarded, copy, data, guarded, nop


async def expect_error(card, cxt, make, step, sub_step, err_class, *, buf=None):
    """Submit ``make(cst)``; check the failure, the log entry and the recovery."""
    t = card.transport
    cst = cxt.completion()
    t.clear_interrupt(0)
    first = await cxt.submit([make(cst)])
    try:
        await cst.wait("bad descriptor", card.timing.completion_timeout())
    except SdxiOpError as e:
        log = e.log
    else:
        raise AssertionError(f"{err_class.name}: the descriptor completed without error")
    assert len(log) == 1, log
    check_entry(log[0], step, sub_step, err_class, cxt, index=first, buf=buf)
    assert cxt.state() == CxtState.ERR_FN
    assert cxt.read_index() == first, "the read index moved past the failed slot"
    assert await t.wait_interrupt(0, 2000), "no error-log interrupt (vector 0)"
    await recover(card, cxt, first)


def check_entry(entry, step, sub_step, err_class, cxt, *, index=None, buf=None):
    """A context error's log entry: re = 1, the context, the slot (if any), the operand."""
    assert (entry.step, entry.sub_step, entry.err_class) == (step, sub_step, err_class), str(entry)
    assert entry.re == 1 and entry.cv and entry.cxt_num == cxt.id, str(entry)
    assert (entry.div, entry.dsc_index) == ((1, index) if index is not None else (0, 0)), \
        str(entry)
    assert (entry.bv, entry.buf) == ((1, buf) if buf is not None else (0, 0)), str(entry)


async def recover(card, cxt, failed=None):
    """Replace the ``failed`` slot (if given) by a NOP, stop and restart the context: the
    next copy runs."""
    t = card.transport
    if failed is not None:
        cxt.place(failed, nop())
    await card.stop_context(cxt)
    await card.start_context(cxt)
    src = t.alloc_dma(256)
    src.write(0, data(256, cxt.read_index()))
    dst, dst_addr = guarded(t, 256)
    await cxt.mem_copy(dst_addr, src.addr, 256)
    check_guarded(dst, 0, src.read(0, 256))


@cocotb.test(timeout_time=1000, timeout_unit="us")
async def descriptor_errors_and_recovery(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    t = card.transport
    await card.start()
    # The memory right after the 256-entry AKey table holds a valid-looking entry.
    tables = t.alloc_dma(8192)
    tables.write(4096, bytes([1]) + bytes(15))       # AKEY_ENT with vl = 1
    cxt = await card.create_context(vector=2, akey_table=tables.view(0, 4096))
    cxt.set_akey(7, vl=0)
    cxt.set_akey(8, vl=1, tgt_sfunc=3)
    cxt.set_akey(9, vl=1, iv=0, intr_num=2)
    cxt.set_akey(10, vl=1, pv=1, pasid=5)
    src = t.alloc_dma(4096)
    dst = t.alloc_dma(4096)
    DVF, DAF, ATF = ErrSubStep.DVF, ErrSubStep.DAF, ErrSubStep.ATF

    def raw(layout, group, sub, **f):
        return lambda cst: encode(layout, group, sub, cst=cst, **f)

    cases = [
        ("atomic group", raw(dsc.DSC_GENERIC, OpGroup.ATOMIC, 1),
         ErrStep.DESCRIPTOR, DVF, ErrClass.UNKNOWN_OPCODE, None),
        ("DmaBase subtype 9", raw(dsc.DSC_GENERIC, OpGroup.DMABASE, 9),
         ErrStep.DESCRIPTOR, DVF, ErrClass.UNKNOWN_OPCODE, None),
        ("admin outside context 0", raw(dsc.DSC_CXT_START, OpGroup.ADMIN, AdminOp.CXT_START_NM,
                                        cxt_start=1, cxt_end=1),
         ErrStep.DESCRIPTOR, DVF, ErrClass.ADMIN_NOT_CXT0, None),
        ("write-immediate of 33 bytes", raw(dsc.DSC_DMAB_WRT_IMM, OpGroup.DMABASE,
                                            DmaBaseOp.WRT_IMM, size=32, addr0=dst.addr),
         ErrStep.DESCRIPTOR, DVF, ErrClass.SIZE, None),
        ("fill pattern code 3", raw(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL,
                                    psz=3, size=63, addr0=dst.addr),
         ErrStep.DESCRIPTOR, DVF, ErrClass.BAD_PARAMETER, None),
        ("AKey past the table", raw(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY,
                                    size=63, addr0=src.addr, addr1=dst.addr, akey1=256),
         ErrStep.AKEY, DVF, ErrClass.AKEY_RANGE, 1),
        ("invalid AKey", raw(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY,
                             size=63, addr0=src.addr, addr1=dst.addr, akey0=7),
         ErrStep.AKEY, DVF, ErrClass.AKEY_INVALID, 0),
        ("AKey for another function", raw(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY,
                                          size=63, addr0=src.addr, addr1=dst.addr, akey1=8),
         ErrStep.AKEY, DVF, ErrClass.AKEY_UNSUPPORTED, 1),
        ("pv = 1 with no PASID table", raw(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY,
                                           size=63, addr0=src.addr, addr1=dst.addr, akey1=10),
         ErrStep.DATA_BUFFER, ATF, ErrClass.ATF_NO_PASID, 1),
        ("interrupt AKey with iv = 0", raw(dsc.DSC_INTR, OpGroup.INTR, IntrOp.INTR, akey=9),
         ErrStep.AKEY, DVF, ErrClass.AKEY_INVALID, 0),
    ]
    for what, make, step, sub_step, err_class, buf in cases:
        dut._log.info("error case: %s", what)
        await expect_error(card, cxt, make, step, sub_step, err_class, buf=buf)
    assert dst.read(0, 4096) == bytes(4096), "a failed descriptor wrote its destination"

    # A data access failure: the source read is answered Unsupported Request.
    tb.rc.fault = lambda tlp: "ur" if src.addr <= tlp.address < src.addr + 4096 else None
    await expect_error(card, cxt, lambda cst: copy(src.addr, dst.addr, 3000, cst=cst),
                       ErrStep.DATA_BUFFER, DAF, ErrClass.READ_UR, buf=0)
    tb.rc.fault = None
    assert dst.read(0, 4096) == bytes(4096)

    # Operation groups: a context without the vendor group may not fill.
    only_dma = 1 << OpGroup.DMABASE.opb_bit
    limited = await card.create_context(opb=only_dma, max_buffer=0)
    await expect_error(card, limited, raw(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL,
                                          size=63, addr0=dst.addr),
                       ErrStep.DESCRIPTOR, DVF, ErrClass.GROUP_DISABLED)
    # ... and with max_buffer 0 (2 MiB) a copy of 2 MiB + 1 is too large.
    await expect_error(card, limited, raw(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY,
                                          size=2 << 20, addr0=src.addr, addr1=dst.addr),
                       ErrStep.DESCRIPTOR, DVF, ErrClass.SIZE)
    # The first context kept running through all of it.
    d2, d2_addr = guarded(t, 100)
    await cxt.mem_copy(d2_addr, src.addr, 100)
    check_guarded(d2, 0, src.read(0, 100))
    await card.stop()


@cocotb.test(timeout_time=400, timeout_unit="us")
async def bad_context_table_stops_the_function(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    await card.start()
    # Context 5's L1 entry is left invalid; starting it is a table error (step 3).
    cst = Completion(card)
    await card.admin.submit([encode(dsc.DSC_CXT_START, OpGroup.ADMIN, AdminOp.CXT_START_NM,
                                    cst=cst, fe=1, cxt_start=5, cxt_end=5)])
    await card.wait_state({GSV.ERROR}, "table error")
    log = await card.read_error_log()
    assert len(log) == 1
    e = log[0]
    assert (e.step, e.sub_step, e.err_class, e.re, e.cxt_num) == (
        ErrStep.CXT_L1, ErrSubStep.DVF, ErrClass.INVALID_ENTRY, 2, 5), str(e)
    assert not cst.done()
    # Reset and bring the function up again: it works.
    await card.start()
    cxt = await card.create_context()
    t = card.transport
    src = t.alloc_dma(512)
    src.write(0, data(512, 7))
    d, d_addr = guarded(t, 512)
    await cxt.mem_copy(d_addr, src.addr, 512)
    check_guarded(d, 0, src.read(0, 512))

    # A ring size below the 1024-descriptor minimum in CXT_CTL, found on CXT_START.
    await card.stop_context(cxt)
    ctl = CXT_CTL.decode(cxt.mem.cxt_ctl.read(0, 64))
    cxt.mem.cxt_ctl.write(0, CXT_CTL.encode(**dict(ctl, ds_ring_sz=1000)))
    await card.admin.submit([admin_start(cxt.id, Completion(card))])
    await card.wait_state({GSV.ERROR}, "a ring of 1000 descriptors")
    log = await card.read_error_log()
    assert [(e.step, e.sub_step, e.err_class, e.re, e.cxt_num) for e in log] == [
        (ErrStep.CXT_CTL, ErrSubStep.DVF, ErrClass.BAD_FIELD, 2, cxt.id)], [str(e) for e in log]

    # An invalid admin context at activation: activation fails with an error-log entry.
    await card.stop()
    card.l1_table.write(0, bytes(8))                 # L1[0].vl = 0
    await card.request(GSR.ACTIVE)
    await card.wait_state({GSV.ERROR}, "activation with an invalid admin context")
    log = await card.read_error_log()
    assert [(e.step, e.re) for e in log] == [(ErrStep.CXT_L1, 2)], [str(e) for e in log]
    await card.stop()


@cocotb.test(timeout_time=600, timeout_unit="us")
async def dma_errors_on_context_structures(dut):
    """A read of the write index, the ring or an AKey entry answered UR, CA or poisoned ends
    the context with a step 6, 7 or 11 entry; once the cause is gone and the context restarted,
    the descriptor that could not run runs. A CXT_CTL read that fails on CXT_START stops the
    function (step 4, re = 2)."""
    tb = SdxiTb(dut)
    card = await tb.card()
    t = card.transport
    await card.start()
    cxt = await card.create_context()
    src = t.alloc_dma(4096)
    src.write(0, data(4096, 11))
    mem = cxt.mem
    cases = [
        # what fails, how, the entry's step and class, whether it names the slot (and a CST)
        (mem.write_index, "ur", ErrStep.WRITE_INDEX, ErrClass.READ_UR, False),
        (mem.ring, "ca", ErrStep.DESCRIPTOR, ErrClass.READ_CA, False),
        (mem.akey_table, "poison", ErrStep.AKEY, ErrClass.READ_POISONED, True),
    ]
    for region, how, step, err_class, names_slot in cases:
        dut._log.info("a %s read of %s", how, step.name)
        tb.rc.fault = lambda tlp, r=region, how=how: how if (
            r.addr <= tlp.address < r.addr + r.size) else None
        t.clear_interrupt(0)
        cst = Completion(card)
        dst, dst_addr = guarded(t, 300)
        first = await cxt.submit([copy(src.addr, dst_addr, 300, cst=cst)])
        # The context stops, then the entry is logged (vector 0), then the CST says er = 1
        # if the descriptor was read (the AKey case); otherwise there is no CST.
        await cxt.wait_state({CxtState.ERR_FN}, f"failed {step.name} read")
        assert await t.wait_interrupt(0, 2000), "no error-log interrupt (vector 0)"
        if names_slot:
            assert await cst.settle("the failed descriptor", card.timing.completion_timeout())
        else:
            assert not cst.done()
        tb.rc.fault = None
        assert cxt.read_index() == first
        log = await card.read_error_log()
        assert len(log) == 1, log
        check_entry(log[0], step, ErrSubStep.DAF, err_class, cxt,
                    index=first if step != ErrStep.WRITE_INDEX else None,
                    buf=0 if step == ErrStep.AKEY else None)
        check_guarded(dst, 0, b"")
        # The host mends nothing but the link: the same descriptor runs after a restart.
        await recover(card, cxt)
        check_guarded(dst, 0, src.read(0, 300))
        assert cst.done() and not cst.error()

    # Context tables: a CXT_CTL read answered UR while starting a context.
    other = await card.create_context()
    await card.stop_context(other)
    ctl = other.mem.cxt_ctl
    tb.rc.fault = lambda tlp: "ur" if ctl.addr <= tlp.address < ctl.addr + ctl.size else None
    await card.admin.submit([admin_start(other.id, Completion(card))])
    await card.wait_state({GSV.ERROR}, "a failed CXT_CTL read")
    tb.rc.fault = None
    log = await card.read_error_log()
    assert [(e.step, e.sub_step, e.err_class, e.re, e.cxt_num) for e in log] == [
        (ErrStep.CXT_CTL, ErrSubStep.DAF, ErrClass.READ_UR, 2, other.id)], [str(e) for e in log]
    await card.stop()


@cocotb.test(timeout_time=600, timeout_unit="us")
async def error_log_disabled_full_and_wrapping(dut):
    """ERR_CFG.en = 0 or a full log discards the entry and sets ERR_STS.ovf (and sts: the
    function attempted to log), and the failing context reacts as always; once the host has read the log, entries land again, wrapping to
    slot 0. Each error here is a copy through an invalid AKey."""
    tb = SdxiTb(dut)
    card = await tb.card()
    t = card.transport
    await card.start()
    cxt = await card.create_context()
    cxt.set_akey(7, vl=0)
    src = t.alloc_dma(4096)
    log_mem = card.error_log
    entries = log_mem.size // 64
    marker = bytes([0xEE]) * log_mem.size
    log_mem.write(0, marker)

    async def fail():
        cst = Completion(card)
        first = await cxt.submit([encode(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY,
                                         cst=cst, size=63, addr0=src.addr, addr1=src.addr,
                                         akey0=7)])
        assert await cst.settle("a copy through an invalid AKey",
                                card.timing.completion_timeout())
        assert cxt.state() == CxtState.ERR_FN and cxt.read_index() == first
        await recover(card, cxt, first)
        return first

    async def regs():
        return [await card.read_reg(r) for r in ("ERR_STS", "ERR_WRT", "ERR_RD")]

    STS, OVF = 0b1, 0b10
    # Disabled: nothing is written and ERR_WRT stays; sts ("attempted to log", with its
    # vector 0) and ovf are set.
    await card.update_reg("ERR_CFG", en=0)
    t.clear_interrupt(0)
    await fail()
    assert await regs() == [STS | OVF, 0, 0]
    assert log_mem.read(0, log_mem.size) == marker
    assert await t.wait_interrupt(0, 1000), "no vector 0 for the discarded entry"
    assert await card.read_error_log() == []
    assert card.error_log_lost == [ErrorLogLoss.OVERFLOW]

    # A log the host has left 62 entries unread in (ERR_WRT and ERR_RD set while disabled).
    await card.write_reg("ERR_WRT", entries - 2)
    await card.update_reg("ERR_CFG", en=1)
    t.clear_interrupt(0)
    firsts = [await fail() for _ in range(2)]
    assert await regs() == [STS, entries, 0]
    assert await t.wait_interrupt(0, 1000), "no vector 0 for the first entry"
    for slot, first in zip((entries - 2, entries - 1), firsts):
        e = ERRLOG_HD_ENT.decode(log_mem.read(64 * slot, 64))
        assert (e["vl"], e["err_class"], e["dsc_index"]) == (1, ErrClass.AKEY_INVALID, first)
    # Full: the third entry is discarded.
    await fail()
    assert await regs() == [STS | OVF, entries, 0]
    assert log_mem.read(0, 64) == marker[:64], "an entry overwrote an unread one"

    # The host reads the two it has not seen (ERR_RD = 62 declares the rest read).
    await card.write_reg("ERR_RD", entries - 2)
    log = await card.read_error_log()
    assert [e.index for e in log] == [entries - 2, entries - 1]
    assert card.error_log_lost == [ErrorLogLoss.OVERFLOW]
    assert await regs() == [0, entries, entries]
    # Room again: the next entry is index 64, in slot 0.
    first = await fail()
    log = await card.read_error_log()
    assert len(log) == 1 and log[0].index == entries and not card.error_log_lost, log
    check_entry(log[0], ErrStep.AKEY, ErrSubStep.DVF, ErrClass.AKEY_INVALID, cxt,
                index=first, buf=0)
    assert log_mem.read(0, 64) != marker[:64]
    await card.stop()
