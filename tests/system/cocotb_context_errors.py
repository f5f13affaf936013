"""Bad input ends in the error the spec names and never in a hang: each case below writes an
error-log entry (checked field by field), completes its CST with er = 1, leaves its context in
ERR_FN with the read index at the failed slot, and the context recovers after the driver
replaces the slot and stops and restarts it. A bad context table stops the function."""

import cocotb

from hdl.sdxi import descriptors as dsc
from hdl.sdxi.descriptors import (AdminOp, DmaBaseOp, ErrClass, ErrStep, ErrSubStep, IntrOp,
                                  OpGroup, VendorOp)
from hdl.sdxi.regmap import GSR, GSV
from hdl.sdxi.structures import CxtState
from sim.tb import SdxiTb
from sw.context import Completion, SdxiOpError, encode

from .cocotb_contexts import check_guarded, copy, data, guarded, nop


async def expect_error(card, cxt, make, step, sub_step, err_class, *, buf=None):
    """Submit ``make(cst)``; check the failure, the log entry and the recovery."""
    t = card.transport
    cst = Completion(card)
    t.clear_interrupt(0)
    first = await cxt.submit([make(cst)])
    try:
        await cst.wait("bad descriptor", card.timing.completion_timeout())
    except SdxiOpError as e:
        log = e.log
    else:
        raise AssertionError(f"{err_class.name}: the descriptor completed without error")
    assert len(log) == 1, log
    entry = log[0]
    assert (entry.step, entry.sub_step, entry.err_class) == (step, sub_step, err_class), str(entry)
    assert entry.re == 1 and entry.cv and entry.cxt_num == cxt.id, str(entry)
    assert entry.div and entry.dsc_index == first, str(entry)
    assert (entry.bv, entry.buf) == ((1, buf) if buf is not None else (0, 0)), str(entry)
    assert cxt.state() == CxtState.ERR_FN
    assert cxt.read_index() == first, "the read index moved past the failed slot"
    assert await t.wait_interrupt(0, 2000), "no error-log interrupt (vector 0)"

    # Recovery: replace the failed slot, stop and restart; the next copy runs.
    cxt.place(first, nop())
    await card.stop_context(cxt)
    await card.start_context(cxt)
    src = t.alloc_dma(256)
    src.write(0, data(256, first))
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
    cxt.set_akey(8, vl=1, pv=1, pasid=5)
    cxt.set_akey(9, vl=1, iv=0, intr_num=2)
    src = t.alloc_dma(4096)
    dst = t.alloc_dma(4096)
    DVF, DAF = ErrSubStep.DVF, ErrSubStep.DAF

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
        ("AKey with pv = 1", raw(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY,
                                 size=63, addr0=src.addr, addr1=dst.addr, akey1=8),
         ErrStep.AKEY, DVF, ErrClass.AKEY_UNSUPPORTED, 1),
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

    # An invalid admin context at activation: activation fails with an error-log entry.
    await card.stop()
    card.l1_table.write(0, bytes(8))                 # L1[0].vl = 0
    await card.request(GSR.ACTIVE)
    await card.wait_state({GSV.ERROR}, "activation with an invalid admin context")
    log = await card.read_error_log()
    assert [(e.step, e.re) for e in log] == [(ErrStep.CXT_L1, 2)], [str(e) for e in log]
    await card.stop()
