"""Function state requests from the host through CTL0, read back in STS0."""

import cocotb

from sim.tb import SdxiTb

CTL0, STS0 = 0x00000, 0x00100
RESET, STOP_SF, STOP_HD, ACTIVE = 0, 1, 2, 3
GSV_STOP, GSV_ACTIVE = 0, 2


async def request(tb, gsr, other_fields=0):
    await tb.bar0.write_qword(CTL0, other_fields | gsr)


async def gsv(tb):
    value = await tb.bar0.read_qword(STS0)
    assert value >> 3 == 0, "STS0 reserved bits read 0"
    return value & 0x7


@cocotb.test(timeout_time=300, timeout_unit="us")
async def requests_and_no_ops(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    # RESET while stopped is harmless, and reads back as the last request.
    await request(tb, RESET)
    assert await gsv(tb) == GSV_STOP
    await request(tb, STOP_SF)
    assert await gsv(tb) == GSV_STOP, "STOP_SF while stopped is a no-op"
    # ACTIVE from STOP activates (the driver's bring-up writes it once the tables exist).
    await card.start()
    assert await gsv(tb) == GSV_ACTIVE
    assert await tb.bar0.read_qword(CTL0) & 3 == ACTIVE
    # A read-modify-write of other CTL0 fields writes ACTIVE again: no transition.
    await request(tb, ACTIVE, other_fields=0x1234_5678 << 32 | 0x10)
    assert await gsv(tb) == GSV_ACTIVE
    assert await tb.bar0.read_qword(CTL0) == 0x1234_5678 << 32 | 0x10 | ACTIVE
    # Soft stop, restart, hard stop, restart, RESET from ACTIVE.
    for stop in (STOP_SF, STOP_HD, RESET):
        await request(tb, stop)
        await card.wait_state({GSV_STOP}, f"request {stop} stops the function")
        await request(tb, ACTIVE)
        await card.wait_state({GSV_ACTIVE}, "reactivation")


@cocotb.test(timeout_time=300, timeout_unit="us")
async def driver_stop_routine(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    # The driver's stop routine from ACTIVE and (v3 behaviour) from STOP, where it writes RESET.
    await card.start()
    await card.stop()
    assert await gsv(tb) == GSV_STOP
    await card.stop()
    assert await gsv(tb) == GSV_STOP
    assert await tb.bar0.read_qword(CTL0) & 3 == RESET
