"""Bring-up in the Linux SDXI driver's order, checked against the spec's byte layouts.

Offsets and bit positions below are written from shared/sdxi-spec.md (sections 1, 3 and 7),
not taken from the project's definitions, so a wrong position shared by driver and gateware
fails here.
"""

import cocotb

from sim.tb import SdxiTb

VARIANTS = ("default", "w256")


def u64(buf, offset):
    return int.from_bytes(buf.read(offset, 8), "little")


def u32(buf, offset):
    return int.from_bytes(buf.read(offset, 4), "little")


@cocotb.test(timeout_time=20, timeout_unit="us")
async def outputs_known_after_reset(dut):
    """Every output of the export is 0 or 1 in every bit once reset is over, before any
    request, whichever language the simulator reads the export as (sim.runner)."""
    tb = SdxiTb(dut)
    await tb.wait_reset()
    outputs = [name for name, (direction, _) in tb.ports.items() if direction == "output"]
    assert len(outputs) > 20, outputs
    unknown = [name for name in outputs if not getattr(dut, name).value.is_resolvable]
    assert not unknown, f"outputs with X or Z after reset: {', '.join(unknown)}"


@cocotb.test(timeout_time=200, timeout_unit="us")
async def linux_bring_up(dut):
    tb = SdxiTb(dut)
    card = await tb.card()

    # The host finds the function stopped, then runs the full bring-up to the jump start.
    assert (await tb.bar0.read_qword(0x100)) & 0x7 == 0, "STS0.fn_gsv should be GSV_STOP"
    await card.start()
    assert (await tb.bar0.read_qword(0x100)) & 0x7 == 2, "STS0.fn_gsv should be GSV_ACTIVE"
    assert (await tb.bar0.read_qword(0x00)) & 0x3 == 3, "CTL0.fn_gsr reads back ACTIVE"
    assert (await tb.bar0.read_qword(0x00)) & 0x10, "CTL0.fn_err_intr_en set by error log init"

    # CTL2 carries CAP1's limits: max_buffer 3:0, max_akey_sz 15:12, max_cxt 31:16, opb 63:32.
    cap1 = await tb.bar0.read_qword(0x208)
    ctl2 = await tb.bar0.read_qword(0x10)
    assert ctl2 == cap1 & 0xFFFF_FFFF_FFFF_F00F, f"CTL2 {ctl2:#x} vs CAP1 {cap1:#x}"

    # MMIO_CXT_L2 (0x10000) points at the L2 table; L2[0] = L1 address | vl.
    l2 = card.l2_table
    assert await tb.bar0.read_qword(0x10000) == l2.addr
    assert u64(l2, 0) == card.l1_table.addr | 1

    # L1[0] (32 bytes): qword 0 = CXT_CTL address | ka (bit 1) | vl (bit 0); qword 1 = AKey
    # table address | akey_sz (0); dword 4: cxt_pasid 19:0 = 0, max_buffer 23:20; dword 5: opb.
    l1 = card.l1_table
    admin = card.admin.mem
    assert u64(l1, 0) == admin.cxt_ctl.addr | 0b11
    assert u64(l1, 8) == admin.akey_table.addr
    assert u32(l1, 16) == (cap1 & 0xF) << 20
    assert u32(l1, 20) == cap1 >> 32

    # CXT_CTL (64 bytes): ring | csa (5) | se (4) | vl (0); ds_ring_sz 1024 at byte 8;
    # CXT_STS address at byte 16 (bits 63:4); write-index address at byte 24 (bits 63:3).
    ctl = admin.cxt_ctl
    assert u64(ctl, 0) == admin.ring.addr | 0x31
    assert u32(ctl, 8) == 1024
    assert u64(ctl, 16) == admin.cxt_sts.addr
    assert u64(ctl, 24) == admin.write_index.addr
    assert ctl.read(32, 32) == bytes(32), "CXT_CTL bytes 32-63 are reserved"

    # CXT_STS: state CXTV_RUN (1) in byte 0, read_index 0 at byte 8; write index 0.
    assert admin.cxt_sts.read(0, 1) == b"\x01"
    assert u64(admin.cxt_sts, 8) == 0 and u64(admin.write_index, 0) == 0

    # Error log: ERR_CFG = log address | sz 1 (64 entries) << 1 | en; ERR_CTL.en; indexes 0.
    assert await tb.bar0.read_qword(0x20010) == card.error_log.addr | 0b11
    assert await tb.bar0.read_qword(0x20000) == 1
    assert await tb.bar0.read_qword(0x20020) == 0 and await tb.bar0.read_qword(0x20028) == 0

    # Jump start: the admin doorbell (BAR2 + 0) was written with 0.
    assert await tb.bar2.read_qword(0) == 0

    # Stopping brings the function back to GSV_STOP.
    await card.stop()
    assert (await tb.bar0.read_qword(0x100)) & 0x7 == 0


@cocotb.test(timeout_time=200, timeout_unit="us")
async def restart_after_stop(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    # Start, stop, start again: the second bring-up finds the function stopped and succeeds.
    await card.start()
    await card.stop()
    await card.start()
    assert (await tb.bar0.read_qword(0x100)) & 0x7 == 2
