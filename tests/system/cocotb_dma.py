"""The DMA read and write engines from the host, through the exerciser.

Every destination carries guard bytes that must survive; the root complex is made to split,
reorder, hold, poison, drop and refuse completions; straddle is checked beat by beat.
"""

import itertools
import random

import cocotb
from cocotb.triggers import RisingEdge

from .dma_helpers import ROW, check_read, check_write, pattern, setup

VARIANTS = ("default", "nostraddle", "w256")

@cocotb.test(timeout_time=4000, timeout_unit="us")
async def write_lengths_and_alignments(dut):
    tb, t, x = await setup(dut)
    # Lengths around dword, row and MPS edges, and ones ending a byte before/after 4 KiB.
    cases = [(1, 0, 8), (1, 3, 13), (2, 3, 5), (5, 1, 62), (63, 2, 1), (64, 0, 0), (65, 61, 7),
             (255, 1, 200), (256, 0, 64), (257, 3, 3), (1000, 2, 100), (4000, 31, 90),
             (4096 - 64 - 1, 0, 0), (4096 - 64 + 1, 0, 8)]
    for i, (length, dst_off, ram_off) in enumerate(cases):
        await check_write(x, t, length, dst_off, ram_off, seed=i)


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def read_lengths_and_alignments(dut):
    tb, t, x = await setup(dut)
    row = ROW[tb.metadata["data_width"]]
    cases = [(1, 0), (1, 3), (3, 2), (4, 0), (63, 1), (64, 0), (65, 63), (511, 5), (512, 0),
             (513, 7), (2000, 17), (4095, 1)]
    for i, (length, src_off) in enumerate(cases):
        await check_read(x, t, row, length, src_off, seed=100 + i)


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def straddle_is_real(dut):
    tb, t, x = await setup(dut)
    straddle = tb.metadata["pcie"]["straddle"]
    wide = tb.metadata["data_width"] == 512
    rq_two = rc_three = 0

    async def monitor():
        nonlocal rq_two, rc_three
        while True:
            await RisingEdge(dut.clk)
            if wide and dut.m_axis_rq_tvalid.value and dut.m_axis_rq_tready.value:
                if (int(dut.m_axis_rq_tuser.value) >> 20) & 3 == 3:       # is_sop[1:0]
                    rq_two += 1
            if wide and dut.s_axis_rc_tvalid.value and dut.s_axis_rc_tready.value:
                if bin((int(dut.s_axis_rc_tuser.value) >> 64) & 0xF).count("1") >= 3:
                    rc_three += 1
    cocotb.start_soon(monitor())
    # Many 4-byte reads in flight: requests pair up on RQ, completions crowd RC beats.
    await tb.set_device_control(ext_tag=True)
    await x.set_read_split(2)                   # 4-byte reads
    buf = t.alloc_dma(4096)
    buf.write(0, pattern(4096, 9))
    # Completions held, then let go at once: they queue up and share RC beats.
    tb.rc.hold = True
    go = cocotb.start_soon(x.read(buf.addr, 1024, 0))
    await t.sleep_ns(2000)
    tb.rc.release()
    assert (await go).error == 0
    assert await x.ram_read(0, 1024) == pattern(4096, 9)[:1024]
    if wide and straddle["rq"]:
        assert rq_two > 0, "no RQ beat carried two read requests"
    if wide and straddle["rc"] == 4:
        assert rc_three > 0, "no RC beat carried three or more completions"
    if not wide or not straddle["rq"]:
        assert rq_two == 0


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def stalls_on_all_four_interfaces(dut):
    tb, t, x = await setup(dut)
    row = ROW[tb.metadata["data_width"]]
    rng = random.Random(5)
    # The hard-block model holds each interface back at random: CQ and RC stop offering
    # beats, RQ and CC stop taking them.
    for port in (tb.dev.cq_source, tb.dev.rc_source, tb.dev.rq_sink, tb.dev.cc_sink):
        port.set_pause_generator(itertools.cycle([rng.random() < 0.3 for _ in range(97)]))
    for i, (length, off) in enumerate(((1, 3), (200, 1), (3000, 62), (4096, 0))):
        await check_write(x, t, length, off, 7 * i, seed=300 + i)
        await check_read(x, t, row, length, off, seed=400 + i)


@cocotb.test(timeout_time=8000, timeout_unit="us")
async def transfers_of_64_kib(dut):
    tb, t, x = await setup(dut)
    size = 64 * 1024
    ram = x.ram_bytes
    # Write: the RAM is 16 KiB, so the 64 KiB come from it four times over (it wraps).
    image = pattern(ram, 31)
    await x.ram_write(0, image)
    buf = t.alloc_dma(size + 128)
    buf.write(0, bytes([0xA5]) * buf.size)
    assert (await x.write(100, size, buf.addr + 64 + 3)).error == 0
    want = bytes(image[(100 + k) % ram] for k in range(size))
    assert buf.read(64 + 3, size) == want
    assert buf.read(0, 67) == bytes([0xA5]) * 67 and buf.read(64 + 3 + size, 61) == bytes([0xA5]) * 61
    # Read: 64 KiB into the wrapping RAM; its last 16 KiB are what the RAM holds after.
    data = pattern(size, 32)
    src = t.alloc_dma(size + 4096)
    src.write(5, data)
    assert (await x.read(src.addr + 5, size, (src.addr + 5) % 64)).error == 0
    start = (src.addr + 5) % 64
    got = await x.ram_read(0, ram)
    for k in range(size - ram, size):
        assert got[(start + k) % ram] == data[k], f"byte {k}"
