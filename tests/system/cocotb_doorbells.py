"""BAR2 doorbells from the host: decode, monotonic latching, 32-bit pairs, dropped writes."""

import random

import cocotb

from sim.tb import SdxiTb

VARIANTS = ("default", "w256")

IMPL_DROPPED_WRITES = 0x30010


async def setup(dut):
    tb = SdxiTb(dut)
    await tb.enumerate()
    stride = tb.metadata["sdxi"]["doorbell_stride"]
    contexts = tb.metadata["sdxi"]["contexts"]
    return tb, stride, contexts


@cocotb.test(timeout_time=300, timeout_unit="us")
async def decode_per_context(dut):
    tb, stride, contexts = await setup(dut)
    ids = [0, 1, 2, 5, 64, contexts - 1]
    # Each context's doorbell is the first qword of its page and holds only its own writes.
    for i in ids:
        await tb.bar2.write_qword(i * stride, 1000 + i)
    for i in ids:
        assert await tb.bar2.read_qword(i * stride) == 1000 + i, f"context {i}"
    for i in (3, 4, 63, contexts - 2):
        assert await tb.bar2.read_qword(i * stride) == 0, f"context {i} untouched"


@cocotb.test(timeout_time=300, timeout_unit="us")
async def monotonic(dut):
    tb, stride, _ = await setup(dut)
    db = 7 * stride
    # Out-of-order and duplicate doorbells never move the value backwards.
    await tb.bar2.write_qword(db, 10)
    await tb.bar2.write_qword(db, 5)
    await tb.bar2.write_qword(db, 10)
    assert await tb.bar2.read_qword(db) == 10
    await tb.bar2.write_qword(db, 1 << 40)
    await tb.bar2.write_qword(db, 1 << 33)
    assert await tb.bar2.read_qword(db) == 1 << 40

    # Concurrent submitters ring with shuffled values: the doorbell ends at the largest.
    db = 9 * stride
    values = list(range(1, 40))
    random.Random(3).shuffle(values)
    for v in values:
        await tb.bar2.write_qword(db, v)
    assert await tb.bar2.read_qword(db) == 39


@cocotb.test(timeout_time=300, timeout_unit="us")
async def dword_pairs(dut):
    tb, stride, _ = await setup(dut)
    db = 3 * stride
    await tb.bar2.write_qword(db, 0xFFFF_FFF0)
    # lo_hi_writeq of 0x1_0000_0010: the low half alone is smaller, the pair lands whole.
    await tb.bar2.write_dword(db, 0x10)
    assert await tb.bar2.read_qword(db) == 0xFFFF_FFF0
    await tb.bar2.write_dword(db + 4, 0x1)
    assert await tb.bar2.read_qword(db) == 0x1_0000_0010
    # A low-half write without carry lands on its own (a 32-bit-only producer).
    await tb.bar2.write_dword(db, 0x20)
    assert await tb.bar2.read_qword(db) == 0x1_0000_0020


@cocotb.test(timeout_time=300, timeout_unit="us")
async def dropped_writes(dut):
    tb, stride, _ = await setup(dut)
    db = 2 * stride
    await tb.bar2.write_qword(db, 100)
    dropped = await tb.bar0.read_qword(IMPL_DROPPED_WRITES)
    # Partial dwords are not a doorbell value; the rest of the page is not a doorbell.
    await tb.bar2.write(db, b"\xff\xff")
    await tb.bar2.write(db + 4, b"\xff")
    await tb.bar2.write_qword(db + 8, 500)
    await tb.bar2.write_qword(db + stride - 8, 500)
    assert await tb.bar2.read_qword(db) == 100
    assert await tb.bar2.read_qword(db + 8) == 0
    assert await tb.bar0.read_qword(IMPL_DROPPED_WRITES) == dropped + 4
