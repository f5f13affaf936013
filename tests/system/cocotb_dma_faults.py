"""The DMA engines against a misbehaving root complex: split, reordered, held, poisoned, lost
and refused completions; Max_Payload_Size and Max_Read_Request_Size settings; tags and the
completion credit. The default variant only: none of this depends on the datapath width."""

import cocotb

from .dma_helpers import GUARD, ROW, check_read, check_write, setup

@cocotb.test(timeout_time=4000, timeout_unit="us")
async def completions_split_and_reordered(dut):
    tb, t, x = await setup(dut)
    row = ROW[tb.metadata["data_width"]]
    # Completions on every 64-byte boundary, released in random order across reads.
    tb.rc.split_on_all_rcb = True
    tb.rc.reorder = True
    await tb.set_device_control(mrrs=128)
    for i, (length, off) in enumerate(((3000, 5), (1024, 0), (777, 33))):
        await check_read(x, t, row, length, off, seed=200 + i)
    assert tb.rc.max_reads_pending > 1, "completions of several reads were pending together"


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def payload_and_read_request_sizes(dut):
    tb, t, x = await setup(dut)
    row = ROW[tb.metadata["data_width"]]
    for mps, mrrs in ((128, 128), (512, 4096), (256, 1024)):
        await tb.set_device_control(mps=mps, mrrs=mrrs)
        await check_write(x, t, 3000, 1, 5, seed=mps)
        await check_read(x, t, row, 3000, 9, seed=mrrs)


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def error_completions(dut):
    tb, t, x = await setup(dut)
    row = ROW[tb.metadata["data_width"]]
    buf = t.alloc_dma(8192)
    await x.set_timeout(2000)      # clocks: a lost completion ends the read in 8 us
    for fault, error in (("ur", 1), ("ca", 2), ("poison", 3), ("drop", 4)):
        first = []

        def plan(tlp, fault=fault, first=first):
            if not first:
                first.append(tlp)
                return fault
            return None
        tb.rc.fault = plan
        result = await x.read(buf.addr, 2048, 0)
        assert result.error == error, f"{fault}: error {result.error}, expected {error}"
        tb.rc.fault = None
        # The engine goes on: the next read is good.
        await check_read(x, t, row, 1000, 3, seed=hash(fault) & 0xFF)


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def bus_mastering_off(dut):
    tb, t, x = await setup(dut)
    buf = t.alloc_dma(4096)
    buf.write(0, bytes([GUARD]) * 4096)
    cmd = await tb.pci.config_read_word(0x04)
    await tb.pci.config_write_word(0x04, cmd & ~0x4)
    await t.sleep_ns(100)
    assert (await x.read(buf.addr, 256, 0)).error == 6
    assert (await x.write(0, 256, buf.addr)).error == 1
    assert buf.read(0, 4096) == bytes([GUARD]) * 4096, "nothing written"
    await tb.pci.config_write_word(0x04, cmd)
    await t.sleep_ns(100)
    await check_write(x, t, 300, 1, 0, seed=7)


@cocotb.test(timeout_time=4000, timeout_unit="us")
async def tags_and_completion_credit(dut):
    tb, t, x = await setup(dut)
    credit = tb.metadata["pcie"]["completion_credit"]
    buf = t.alloc_dma(24576)
    # 128-byte reads: each may come back as two completions (64-byte boundaries), so the
    # header budget allows credit_headers / 2 reads and the byte budget bytes / 128.
    # Enumeration may already have set Extended Tag Field Enable: start without it.
    await tb.set_device_control(mrrs=128, ext_tag=False)
    assert (await x.info())["ext_tag"] == 0

    async def held_read():
        tb.rc.max_reads_pending = 0
        tb.rc.max_requested_bytes = 0
        tb.rc.hold = True
        go = cocotb.start_soon(x.read(buf.addr, 24576, 0))
        await t.sleep_ns(3000)
        pending = tb.rc.max_reads_pending
        tb.rc.release()
        assert (await go).error == 0
        return pending

    # 32 tags without extended tags; then as many reads as the credit allows.
    assert await held_read() == 32
    await tb.set_device_control(ext_tag=True)
    assert (await x.info())["ext_tag"] == 1
    pending = await held_read()
    assert pending > 32, f"only {pending} reads outstanding with extended tags"
    assert pending == min(credit["bytes"] // 128, credit["headers"] // 2, 256), pending
    assert tb.rc.max_requested_bytes <= credit["bytes"], (tb.rc.max_requested_bytes, credit)
