"""Host-side steps shared by the DMA system tests: transfers checked with guard bytes."""

import random

from sim.tb import SdxiTb
from sw.exerciser import DmaExerciser

GUARD = 0xA5
ROW = {512: 64, 256: 32}


def pattern(n, seed):
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


async def setup(dut, **kwargs):
    tb = SdxiTb(dut, **kwargs)
    await tb.enumerate()
    t = tb.transport()
    return tb, t, DmaExerciser(t, poll_ns=100, timeout_ns=400_000)


async def check_write(x, t, length, dst_off, ram_off, seed):
    """RAM -> host buffer with guard bytes on both sides."""
    data = pattern(length, seed)
    await x.ram_write(ram_off, data)
    buf = t.alloc_dma(length + 256)
    buf.write(0, bytes([GUARD]) * buf.size)
    result = await x.write(ram_off, length, buf.addr + 64 + dst_off)
    assert result.error == 0, f"write error {result.error}"
    got = buf.read(0, buf.size)
    want = bytes([GUARD]) * (64 + dst_off) + data
    want += bytes([GUARD]) * (buf.size - len(want))
    assert got == want, f"write of {length} bytes to +{dst_off} from RAM {ram_off}"


async def check_read(x, t, row, length, src_off, seed):
    """Host buffer -> RAM, guard bytes around the RAM destination."""
    buf = t.alloc_dma(length + 256, 4096)
    data = pattern(length, seed)
    buf.write(0, bytes(buf.size))
    addr = buf.addr + 4096 - 64 + src_off if length < 64 else buf.addr + src_off
    buf_off = addr - buf.addr
    if buf_off + length > buf.size:
        addr, buf_off = buf.addr + src_off, src_off
    buf.write(buf_off, data)
    ram_off = 2 * row + (addr % row)            # congruent to the host address
    span = ram_off + length + 64
    await x.ram_write(0, bytes([GUARD]) * span)
    result = await x.read(addr, length, ram_off)
    assert result.error == 0, f"read error {result.error}"
    got = await x.ram_read(0, span)
    want = bytes([GUARD]) * ram_off + data + bytes([GUARD]) * (span - ram_off - length)
    assert got == want, f"read of {length} bytes from +{src_off}"
