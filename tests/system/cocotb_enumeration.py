"""What the host sees of the function through configuration space (DESIGN.md section 2)."""

import cocotb
from cocotbext.pcie.core.caps import PciCapId

from sim.tb import SdxiTb

VARIANTS = ("default", "w256")

MSIX_CAP_ID = PciCapId.MSIX
assert MSIX_CAP_ID == 0x11


@cocotb.test(timeout_time=200, timeout_unit="us")
async def identity_and_bars(dut):
    tb = SdxiTb(dut)
    pci = await tb.enumerate()

    # Class code 0x120100: processing accelerator, SDXI sub-class, prog-if 0.
    class_rev = await pci.config_read_dword(0x08)
    assert class_rev >> 8 == 0x120100, f"class code {class_rev >> 8:#08x}"
    ids = await pci.config_read_dword(0x00)
    assert ids & 0xFFFF == int(tb.metadata["pci"]["vendor_id"], 0)
    assert ids >> 16 == int(tb.metadata["pci"]["device_id"], 0)

    # BAR0: 256 KiB, 64-bit memory, non-prefetchable.
    assert pci.bar_size[0] == 256 * 1024
    assert pci.bar_raw[0] & 0xF == 0b0100, f"BAR0 type bits {pci.bar_raw[0] & 0xF:#x}"
    # BAR2: one doorbell page per context, 64-bit, non-prefetchable.
    contexts = tb.metadata["sdxi"]["contexts"]
    stride = tb.metadata["sdxi"]["doorbell_stride"]
    assert pci.bar_size[2] == contexts * stride
    assert pci.bar_raw[2] & 0xF == 0b0100
    for index, bar in ((0, 0), (2, 1)):
        assert pci.bar_size[index] == 1 << tb.metadata["bars"][bar]["log2_size"]
    assert pci.bar_size[4] in (0, None), "no BAR4"


@cocotb.test(timeout_time=200, timeout_unit="us")
async def msix_capability(dut):
    tb = SdxiTb(dut)
    pci = await tb.enumerate()

    # MSI-X table in BAR0 at 0x38000 and PBA at 0x3C000 (BIR 0), vectors from the metadata.
    ctrl = await pci.capability_read_dword(MSIX_CAP_ID, 0)
    table = await pci.capability_read_dword(MSIX_CAP_ID, 4)
    pba = await pci.capability_read_dword(MSIX_CAP_ID, 8)
    assert (ctrl >> 16 & 0x7FF) + 1 == tb.metadata["msix"]["vectors"]
    assert ctrl >> 31 & 1, "MSI-X enabled by the host"
    assert table == 0x38000 | 0, f"table offset/BIR {table:#x}"
    assert pba == 0x3C000 | 0, f"PBA offset/BIR {pba:#x}"
    assert len(pci.msi_vectors) == tb.metadata["msix"]["vectors"]
