"""MSI-X from the host: the table the root complex programs, delivery, masks, PBA."""

import cocotb
from cocotbext.pcie.core.caps import PciCapId

from sim.tb import SdxiTb

VARIANTS = ("default", "w256")

TABLE = 0x38000
PBA = 0x3C000


async def card_with_vectors(dut):
    tb = SdxiTb(dut)
    card = await tb.card()
    return tb, card


async def set_msix_control(tb, *, enable=None, function_mask=None):
    """Set MSI-X Enable (bit 15) / Function Mask (bit 14) of Message Control."""
    ctrl = await tb.pci.capability_read_word(PciCapId.MSIX, 2)
    if enable is not None:
        ctrl = (ctrl & ~0x8000) | (0x8000 if enable else 0)
    if function_mask is not None:
        ctrl = (ctrl & ~0x4000) | (0x4000 if function_mask else 0)
    await tb.pci.capability_write_word(PciCapId.MSIX, 2, ctrl)
    # The hard block samples its configuration every clock; give it a few.
    await tb.transport().sleep_ns(40)


@cocotb.test(timeout_time=400, timeout_unit="us")
async def table_and_delivery(dut):
    tb, card = await card_with_vectors(dut)
    vectors = tb.metadata["msix"]["vectors"]
    # The root complex wrote address and data of every vector and unmasked it.
    for k in range(vectors):
        addr = await tb.bar0.read_qword(TABLE + 16 * k)
        data_ctrl = await tb.bar0.read_qword(TABLE + 16 * k + 8)
        assert addr == tb.pci.msi_vectors[k].addr, f"vector {k} address"
        assert data_ctrl == tb.pci.msi_vectors[k].data, f"vector {k} data, unmasked"
    # Every vector, raised through the self-test register, reaches the host.
    for k in range(vectors):
        assert await card.interrupt_self_test(k), f"vector {k} not delivered"
    assert await tb.bar0.read_qword(PBA) == 0


@cocotb.test(timeout_time=400, timeout_unit="us")
async def vector_mask_and_pba(dut):
    tb, card = await card_with_vectors(dut)
    k = 3
    # Mask vector 3 (vector control bit 0), raise it: held back, its PBA bit set.
    await tb.bar0.write_dword(TABLE + 16 * k + 12, 1)
    assert await tb.bar0.read_dword(TABLE + 16 * k + 12) == 1
    assert not await card.interrupt_self_test(k), "a masked vector must not be sent"
    assert await tb.bar0.read_qword(PBA) == 1 << k
    # Other vectors still go through.
    assert await card.interrupt_self_test(5)
    # Unmask: the pending message goes out and the PBA bit clears.
    tb.transport().clear_interrupt(k)
    await tb.bar0.write_dword(TABLE + 16 * k + 12, 0)
    assert await tb.transport().wait_interrupt(k, 10_000), "pending vector sent on unmask"
    assert await tb.bar0.read_qword(PBA) == 0
    # Writes to the PBA are ignored.
    await tb.bar0.write_qword(PBA, 0xFFFF)
    assert await tb.bar0.read_qword(PBA) == 0


@cocotb.test(timeout_time=400, timeout_unit="us")
async def function_mask_and_disable(dut):
    tb, card = await card_with_vectors(dut)
    # Function Mask holds every vector pending until it is cleared.
    await set_msix_control(tb, function_mask=True)
    assert not await card.interrupt_self_test(2)
    assert not await card.interrupt_self_test(6)
    assert await tb.bar0.read_qword(PBA) == (1 << 2) | (1 << 6)
    t = tb.transport()
    await set_msix_control(tb, function_mask=False)
    assert await t.wait_interrupt(2, 10_000) and await t.wait_interrupt(6, 10_000)
    assert await tb.bar0.read_qword(PBA) == 0
    # With MSI-X disabled a raise is dropped: nothing now, nothing after re-enabling.
    await set_msix_control(tb, enable=False)
    assert not await card.interrupt_self_test(4)
    assert await tb.bar0.read_qword(PBA) == 0
    await set_msix_control(tb, enable=True)
    assert not await t.wait_interrupt(4, 2_000)
    # A vector number beyond the table is ignored.
    await tb.bar0.write_qword(0x30020, tb.metadata["msix"]["vectors"])
    assert await tb.bar0.read_qword(PBA) == 0
    assert await card.interrupt_self_test(1)
