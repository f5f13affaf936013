"""The DMA read and write engines from the host, through the exerciser.

Every destination carries guard bytes that must survive; the root complex is made to split,
reorder, hold, poison, drop and refuse completions; straddle is checked beat by beat.
"""

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
