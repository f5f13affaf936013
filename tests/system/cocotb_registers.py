"""BAR0 registers through the real completer, golden values written from the spec.

Offsets, reserved bits and access types come from shared/sdxi-spec.md section 1 (Tables 9-2
to 9-13) and DESIGN.md section 2; nothing here is read from the project's register map, so a
wrong offset or bit position in that map fails these tests.
"""

import random

import cocotb

from sdxi_defs.structures import sfunc_of
from sim.tb import SdxiTb

VARIANTS = ("default", "w256")

ONES = (1 << 64) - 1

# name: (offset, mask of bits that store a write) -- reserved bits 0 (sdxi-spec.md 1.2-1.8).
RW_REGISTERS = {
    "CTL2": (0x00010, 0xFFFF_FFFF_FFFF_F00F),     # 3:0, 15:12, 31:16, 63:32
    "CXT_L2": (0x10000, 0xFFFF_FFFF_FFFF_F000),   # 63:12
    "RKEY": (0x10100, 0xFFFF_FFFF_FFFF_F01F),     # en 0, sz 4:1, ptr 63:12
    "ERR_CTL": (0x20000, 0x0000_0000_0000_0001),
    "ERR_CFG": (0x20010, 0xFFFF_FFFF_FFFF_F03F),  # en 0, sz 5:1, ptr 63:12
    "ERR_WRT": (0x20020, ONES),
    "ERR_RD": (0x20028, ONES),
}
# CTL0 without fn_gsr: fn_pasid_vl 2, fn_err_intr_en 4, fn_pasid 27:8, fn_grp_id 63:32.
CTL0_OTHER_FIELDS = 0xFFFF_FFFF_0FFF_FF14
RO_REGISTERS = {"STS0": 0x00100, "CAP0": 0x00200, "CAP1": 0x00208, "VERSION": 0x00210}
ERR_STS = 0x20008
IMPL_CYCLES = 0x30008
IMPL_DROPPED_WRITES = 0x30010
IMPL_UNSUPPORTED_REQS = 0x30018
IMPL_BUILD_ID = 0x30000


async def started(dut):
    tb = SdxiTb(dut)
    await tb.enumerate()
    return tb


@cocotb.test(timeout_time=200, timeout_unit="us")
async def reset_values(dut):
    tb = await started(dut)
    bar0 = tb.bar0
    for name, (offset, _) in RW_REGISTERS.items():
        assert await bar0.read_qword(offset) == 0, f"{name} resets to 0"
    assert await bar0.read_qword(0x00000) == 0, "CTL0 resets to 0 (fn_gsr = RESET)"
    assert await bar0.read_qword(ERR_STS) == 0
    assert await bar0.read_qword(0x00100) == 0, "STS0: GSV_STOP, reserved 0"
    # VERSION: major 23:16 = 1, minor 7:0 = 0, rest reserved.
    assert await bar0.read_qword(0x00210) == 0x0001_0000

    # Capabilities equal the metadata and advertise what DESIGN.md section 2 asks.
    cap0 = await bar0.read_qword(0x00200)
    cap1 = await bar0.read_qword(0x00208)
    assert cap0 == int(tb.metadata["sdxi"]["cap0"], 0)
    assert cap1 == int(tb.metadata["sdxi"]["cap1"], 0)
    assert cap0 & 0xFFFF == sfunc_of(0), "CAP0.sfunc of function 0"
    assert 4096 << (cap0 >> 20 & 0x7) == tb.metadata["sdxi"]["doorbell_stride"]
    assert 1024 << (cap0 >> 24 & 0x1F) >= 16 * 1024, "rings of at least 16 Ki entries"
    assert cap0 & ~((0xFFFF) | (0x7 << 20) | (0x1F << 24) | (0xFF << 32) | (0x7 << 16)) == 0
    assert cap1 >> 16 & 0xFFFF == tb.metadata["sdxi"]["contexts"] - 1, "CAP1.max_cxt"
    assert cap1 & 0xF == 11, "CAP1.max_buffer: 4 GiB"
    assert cap1 >> 6 & 1, "CAP1.mmio64"
    assert cap1 >> 7 & 1 == 0, "CAP1 bit 7 reserved"
    assert await bar0.read_qword(IMPL_BUILD_ID) == int(tb.metadata["build_id"], 0)
    # Bring-up of the PCI side dropped nothing and sent nothing unsupported.
    assert await bar0.read_qword(IMPL_DROPPED_WRITES) == 0
    assert await bar0.read_qword(IMPL_UNSUPPORTED_REQS) == 0


def bounded_by_caps(cap0, cap1):
    """What each control register stores when written all ones: its defined bits, with the
    fields that CAP0/CAP1 bound clamped to the advertised value (docs/spec-choices.md,
    "Register access"). Positions from sdxi-spec.md 1.2-1.8: CAP0.max_rkey_sz 39:32; CAP1
    max_buffer 3:0, rkey_cap 4, max_errlog_sz 11:8, max_akey_sz 15:12, max_cxt 31:16,
    opb_000_cap 63:32."""
    def bits(value, lsb, width):
        return (value >> lsb) & ((1 << width) - 1)
    ptr = 0xFFFF_FFFF_FFFF_F000
    return {
        "CTL2": (bits(cap1, 0, 4) | bits(cap1, 12, 4) << 12 | bits(cap1, 16, 16) << 16 |
                 bits(cap1, 32, 32) << 32),
        "RKEY": bits(cap1, 4, 1) | min(bits(cap0, 32, 8), 15) << 1 | ptr,
        "ERR_CFG": 1 | bits(cap1, 8, 4) << 1 | ptr,
    }


@cocotb.test(timeout_time=200, timeout_unit="us")
async def access_types(dut):
    tb = await started(dut)
    bar0 = tb.bar0
    bounded = bounded_by_caps(await bar0.read_qword(0x00200), await bar0.read_qword(0x00208))
    # RW registers keep exactly their defined bits; reserved bits read 0; a field above its
    # capability stores the capability.
    for name, (offset, mask) in RW_REGISTERS.items():
        await bar0.write_qword(offset, ONES)
        got = await bar0.read_qword(offset)
        want = bounded.get(name, mask)
        assert got == want, f"{name}: wrote all ones, read {got:#x}, expected {want:#x}"
        await bar0.write_qword(offset, 0)
        assert await bar0.read_qword(offset) == 0, f"{name} clears"

    # CTL0 (fn_gsr kept at RESET so no state change is requested).
    await bar0.write_qword(0x00000, ONES & ~0x3)
    assert await bar0.read_qword(0x00000) == CTL0_OTHER_FIELDS
    assert await bar0.read_qword(0x00100) == 0, "still GSV_STOP"
    await bar0.write_qword(0x00000, 0)

    # Read-only registers ignore writes.
    for name, offset in RO_REGISTERS.items():
        before = await bar0.read_qword(offset)
        await bar0.write_qword(offset, ONES)
        assert await bar0.read_qword(offset) == before, f"{name} is read-only"

    # ERR_STS is RW1C: software writing ones cannot set it.
    await bar0.write_qword(ERR_STS, ONES)
    assert await bar0.read_qword(ERR_STS) == 0


@cocotb.test(timeout_time=200, timeout_unit="us")
async def dword_and_byte_access(dut):
    tb = await started(dut)
    bar0 = tb.bar0
    # Low then high dword, as lo_hi_writeq does: each half lands on its own.
    await bar0.write_dword(0x10000, 0x1234_5000)
    assert await bar0.read_qword(0x10000) == 0x1234_5000
    await bar0.write_dword(0x10004, 0xABCD)
    assert await bar0.read_qword(0x10000) == 0xABCD_1234_5000
    assert await bar0.read_dword(0x10004) == 0xABCD
    assert await bar0.read_dword(0x10000) == 0x1234_5000
    # A single byte write changes one byte; reserved bits 11:0 stay 0.
    await bar0.write(0x10005, b"\x77")
    assert await bar0.read_qword(0x10000) == 0x77CD_1234_5000
    await bar0.write(0x10000, b"\xFF")
    assert await bar0.read_qword(0x10000) == 0x77CD_1234_5000
    # Unaligned multi-byte read across the two halves.
    assert await bar0.read(0x10003, 3) == bytes([0x12, 0xCD, 0x77])


@cocotb.test(timeout_time=400, timeout_unit="us")
async def reads_spanning_registers(dut):
    tb = await started(dut)
    bar0 = tb.bar0
    values = {off: await bar0.read_qword(off) for off in (0x200, 0x208, 0x210)}
    # One 24-byte read returns CAP0, CAP1 and VERSION back to back.
    raw = await bar0.read(0x200, 24)
    assert [int.from_bytes(raw[i:i + 8], "little") for i in (0, 8, 16)] == list(values.values())

    # Program a few registers, then read whole 4 KiB pages in one call: the host splits at its
    # read request size and the engine splits completions at the Max_Payload_Size.
    # (CTL2 and RKEY within what CAP1 advertises, so they store as written.)
    await bar0.write_qword(0x10, 0x0000_0029_0042_000A)
    await bar0.write_qword(0x10000, 0xDEAD_B000)
    await bar0.write_qword(0x10100, 0xBEEF_F000)
    expected_page0 = bytearray(4096)
    for off, value in ((0x10, 0x0000_0029_0042_000A), (0x200, values[0x200]),
                       (0x208, values[0x208]), (0x210, values[0x210])):
        expected_page0[off:off + 8] = value.to_bytes(8, "little")
    assert await bar0.read(0x0, 4096) == bytes(expected_page0)
    page16 = bytearray(4096)
    page16[0:8] = (0xDEAD_B000).to_bytes(8, "little")
    page16[0x100:0x108] = (0xBEEF_F000).to_bytes(8, "little")
    assert await bar0.read(0x10000, 4096) == bytes(page16)

    # Random lengths and alignments inside those pages agree with the page images.
    rng = random.Random(2)
    for _ in range(12):
        start = rng.randrange(0, 4096 - 1)
        length = rng.randrange(1, min(700, 4096 - start) + 1)
        got = await bar0.read(start, length)
        assert got == bytes(expected_page0[start:start + length]), f"read {length} at {start:#x}"


@cocotb.test(timeout_time=200, timeout_unit="us")
async def unimplemented_space(dut):
    tb = await started(dut)
    bar0 = tb.bar0
    dropped = await bar0.read_qword(IMPL_DROPPED_WRITES)
    # Holes in the spec's space and in the implementation space read 0 and drop writes.
    for offset in (0x00008, 0x00218, 0x10008, 0x2FFF8, 0x30100, 0x31100, 0x33FF8):
        await bar0.write_qword(offset, ONES)
        assert await bar0.read_qword(offset) == 0, f"{offset:#x} reads 0"
    assert await bar0.read_qword(IMPL_DROPPED_WRITES) == dropped + 7
    # The cycle counter runs.
    first = await bar0.read_qword(IMPL_CYCLES)
    second = await bar0.read_qword(IMPL_CYCLES)
    assert second > first > 0
