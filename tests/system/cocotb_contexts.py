"""Client contexts from the host driver: create, copy, fill, write-immediate, interrupt, stop.

Every destination has guard bytes around it that must survive.
"""

import random

import cocotb

from sim.tb import SdxiTb
from sw.context import SdxiOpError

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


@cocotb.test(timeout_time=400, timeout_unit="us")
async def copy_fill_write_imm(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    t = card.transport
    await card.start()
    cxt = await card.create_context()

    src = t.alloc_dma(8192)
    payload = data(5000, 1)
    src.write(3, payload)
    dst, dst_addr = guarded(t, 5000, 7)
    await cxt.mem_copy(dst_addr, src.addr + 3, 5000)
    check_guarded(dst, 7, payload)

    fill, fill_addr = guarded(t, 1000, 5)
    pattern = bytes(range(1, 17))
    await cxt.fill(fill_addr, pattern, 1000)
    check_guarded(fill, 5, (pattern * 100)[:1000])

    imm, imm_addr = guarded(t, 13, 1)
    await cxt.write_imm(imm_addr, b"hello, sdxi!!")
    check_guarded(imm, 1, b"hello, sdxi!!")
    await cxt.wait_read_index(3)
    await card.destroy_context(cxt)
    await card.stop()
