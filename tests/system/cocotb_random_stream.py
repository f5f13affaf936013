"""A seeded random stream of mixed descriptors across several contexts, scored by the Python
reference model (sim/reference_model.py): every destination byte, every CST, every read index
and context state must match what the model says the function must leave behind."""

import random

import cocotb

from sdxi_defs import descriptors as dsc
from sdxi_defs.descriptors import DmaBaseOp, IntrOp, OpGroup, VendorOp
from sdxi_defs.structures import CST_BLK, CxtState
from sim.reference_model import ContextModel, HostMemory
from sim.tb import SdxiTb
from sw.context import Completion
from sw.descriptors import encode

SRC_BYTES = 16 * 1024
DST_BYTES = 48 * 1024


def random_descriptor(rng, src, dst_next, cst):
    """One random descriptor and the destination bytes it claims (disjoint from the others,
    so the result does not depend on the order of descriptors without fences)."""
    kind = rng.choice(["copy"] * 4 + ["fill"] * 2 + ["imm", "nop", "rep", "intr"])
    if kind == "copy":
        n = rng.choice([1, 7, 64, 100, 511, 1500, 2049, 4096, 5000])
        s = src.addr + rng.randrange(SRC_BYTES - n)
        return encode(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY, cst=cst, size=n - 1,
                      addr0=s, addr1=dst_next + rng.randrange(8)), n + 8
    if kind == "fill":
        n = rng.choice([1, 8, 33, 64, 777, 3000])
        psz = rng.randrange(3)
        return encode(dsc.DSC_VENDOR_FILL, OpGroup.VENDOR, VendorOp.FILL, cst=cst, size=n - 1,
                      psz=psz, addr0=dst_next + rng.randrange(8),
                      pattern=rng.getrandbits(256)), n + 8
    if kind == "imm":
        n = rng.randrange(1, 33)
        return encode(dsc.DSC_DMAB_WRT_IMM, OpGroup.DMABASE, DmaBaseOp.WRT_IMM, cst=cst,
                      size=n - 1, addr0=dst_next + rng.randrange(8),
                      data=rng.getrandbits(256)), n + 8
    if kind == "rep":
        s = src.addr + rng.randrange(SRC_BYTES - 4096)
        return encode(dsc.DSC_DMAB_REPCOPY, OpGroup.DMABASE, DmaBaseOp.REPCOPY, cst=cst,
                      count=1, addr0=s, addr1=dst_next), 8192
    if kind == "intr":
        return encode(dsc.DSC_INTR, OpGroup.INTR, IntrOp.INTR, cst=cst, akey=1), 0
    return encode(dsc.DSC_DMAB_NOP, OpGroup.DMABASE, DmaBaseOp.NOP, cst=cst), 0


@cocotb.test(timeout_time=2000, timeout_unit="us")
async def random_stream_scored_by_reference_model(dut):
    rng = random.Random(2026)
    tb = SdxiTb(dut)
    card = await tb.card()
    t = card.transport
    await card.start()
    model_mem = HostMemory()
    runs = []
    for c in range(3):
        cxt = await card.create_context(vector=1 + c)
        src, dst = t.alloc_dma(SRC_BYTES), t.alloc_dma(DST_BYTES)
        src.write(0, rng.randbytes(SRC_BYTES))
        dst.write(0, bytes([0xC3]) * DST_BYTES)
        for buf in (src, dst, cxt.mem.akey_table):
            model_mem.write(buf.addr, buf.read(0, buf.size))
        descs, csts, used = [], [], 0
        bad_at = rng.randrange(10, 30) if c == 1 else None    # one context meets a bad AKey
        for i in range(32):
            cst = Completion(card) if rng.random() < 0.5 or i == 31 else None
            if i == bad_at:
                raw, n = encode(dsc.DSC_DMAB_COPY, OpGroup.DMABASE, DmaBaseOp.COPY, cst=cst,
                                size=63, addr0=src.addr, addr1=dst.addr + used,
                                akey1=rng.choice([3, 300])), 64
            else:
                raw, n = random_descriptor(rng, src, dst.addr + used, cst)
            if used + n > DST_BYTES:
                raw, n = encode(dsc.DSC_DMAB_NOP, OpGroup.DMABASE, DmaBaseOp.NOP, cst=cst), 0
            used += n
            descs.append(raw)
            csts.append(cst)
        for cst in csts:
            if cst:
                model_mem.write(cst.addr, cst.buf.read(0, 32))
        model = ContextModel(model_mem, akey_table=cxt.mem.akey_table.addr)
        expect = model.run(cxt.write_index, descs)
        runs.append((cxt, dst, descs, csts, expect))
    # Submit everything, then ring every doorbell: the contexts run interleaved.
    for cxt, dst, descs, csts, expect in runs:
        start = cxt.reserve(len(descs))
        for i, raw in enumerate(descs):
            cxt.place(start + i, raw)
    for cxt, *_ in runs:
        await cxt.ring_doorbell()
    for cxt, dst, descs, csts, expect in runs:
        await cxt.wait_read_index(expect.read_index, timeout_ns=400_000)
        if expect.state == CxtState.ERR_FN:
            await t.sleep_ns(2000)
        assert cxt.read_index() == expect.read_index
        assert cxt.state() == expect.state, (cxt.id, cxt.state(), expect.error)
        assert dst.read(0, DST_BYTES) == model_mem.read(dst.addr, DST_BYTES), \
            f"context {cxt.id}: destination differs from the reference model"
        for cst in csts:
            if cst is None:
                continue
            got = CST_BLK.decode(cst.buf.read(0, 32))
            if cst.addr in expect.csts:
                assert got["signal"] == 0 and got["er"] == expect.csts[cst.addr], \
                    (cxt.id, hex(cst.addr), got)
            else:
                assert got["signal"] == 1, "a CST after the failed descriptor was completed"
    log = await card.read_error_log()
    assert len(log) == 1 and log[0].err_class == runs[1][4].error, [str(e) for e in log]
    await card.stop()

