"""RegisterFile built from the SDXI BAR0 register map.

The expected offsets and field masks below are written from sdxi-spec.md section 1 (Tables
9-2 to 9-13) and DESIGN.md's implementation registers, not taken from ``regmap``: a wrong bit
position in the map fails here.
"""

import random

import pytest

from hdl.common.regfile import RegisterFile
from sdxi_defs.regmap import BAR0_REGISTERS

from .pcie_helpers import bus_write, new_sim, run


ADDR_WIDTH = 15
ALL = 2**64 - 1

# name: (byte offset, RW mask, RO mask, RW1C mask, WO mask)
SPEC = {
    # fn_gsr 1:0, fn_pasid_vl 2, fn_err_intr_en 4, fn_pasid 27:8, fn_grp_id 63:32
    "CTL0": (0x00000, 0xFFFF_FFFF_0FFF_FF17, 0, 0, 0),
    # max_buffer 3:0, max_akey_sz 15:12, max_cxt 31:16, opb_000_avl 63:32
    "CTL2": (0x00010, 0xFFFF_FFFF_FFFF_F00F, 0, 0, 0),
    # fn_gsv 2:0
    "STS0": (0x00100, 0, 0x7, 0, 0),
    # sfunc 15:0, vf 16, cs_cap 18:17, db_stride 22:20, max_ds_ring_sz 28:24, max_rkey_sz 39:32
    "CAP0": (0x00200, 0, 0x0000_00FF_1F77_FFFF, 0, 0),
    # max_buffer 3:0, rkey_cap 4, rm 5, mmio64 6, max_errlog_sz 11:8, max_akey_sz 15:12,
    # max_cxt 31:16, opb_000_cap 63:32
    "CAP1": (0x00208, 0, 0xFFFF_FFFF_FFFF_FF7F, 0, 0),
    # minor 7:0, major 23:16
    "VERSION": (0x00210, 0, 0x00FF_00FF, 0, 0),
    # ptr 63:12
    "CXT_L2": (0x10000, 0xFFFF_FFFF_FFFF_F000, 0, 0, 0),
    # en 0, sz 4:1, ptr 63:12
    "RKEY": (0x10100, 0xFFFF_FFFF_FFFF_F01F, 0, 0, 0),
    # en 0
    "ERR_CTL": (0x20000, 0x1, 0, 0, 0),
    # sts 0, ovf 1, err 3 (RW1C)
    "ERR_STS": (0x20008, 0, 0, 0xB, 0),
    # en 0, sz 5:1, ptr 63:12
    "ERR_CFG": (0x20010, 0xFFFF_FFFF_FFFF_F03F, 0, 0, 0),
    "ERR_WRT": (0x20020, ALL, 0, 0, 0),
    "ERR_RD": (0x20028, ALL, 0, 0, 0),
    # implementation registers from 0x30000 (DESIGN.md section 2)
    "IMPL_BUILD_ID": (0x30000, 0, ALL, 0, 0),
    "IMPL_CYCLES": (0x30008, 0, ALL, 0, 0),
    "IMPL_DROPPED_WRITES": (0x30010, 0, ALL, 0, 0),
    "IMPL_UNSUPPORTED_REQS": (0x30018, 0, ALL, 0, 0),
    "IMPL_MSIX_RAISE": (0x30020, 0, 0, 0, 0x7FF),
    # descriptors decoded 31:0, decoder clocks 63:32
    "IMPL_PERF_DECODE": (0x30028, 0, ALL, 0, 0),
    # en 0, sz 5:1, ptr 63:12
    "IMPL_PASID_TABLE": (0x30030, 0xFFFF_FFFF_FFFF_F03F, 0, 0, 0),
    "IMPL_TLB_INV_ADDR": (0x30038, ALL, 0, 0, 0),
    # kind 1:0 and pasid 27:8 (WO), busy 63 (RO)
    "IMPL_TLB_INV": (0x30040, 0, 1 << 63, 0, 0x0FFF_FF03),
    "IMPL_PERF_TLB": (0x30048, 0, ALL, 0, 0),
    "IMPL_PERF_WALK": (0x30050, 0, 0xFFFF_FFFF, 0, 0),
}
STORED = [n for n, s in SPEC.items() if s[1] | s[3]]


def stored(name, value):
    """What ``name`` stores when ``value`` reaches its RW bits, the bounds above UNBOUNDED's
    aside: IMPL_PASID_TABLE.sz (5:1) is at most 20 whatever the capabilities."""
    value &= SPEC[name][1]
    if name == "IMPL_PASID_TABLE" and (value >> 1) & 0x1F > 20:
        value = (value & ~(0x1F << 1)) | 20 << 1
    return value
READ_ONLY = [n for n, s in SPEC.items() if s[2]]


def test_map_matches_spec_table():
    # Every register of the map is one of the table above, at its offset (and vice versa).
    assert {r.name: r.offset for r in BAR0_REGISTERS} == {n: s[0] for n, s in SPEC.items()}


# Bounds that clamp nothing, for the tests of plain storage; test_bounded_fields has its own.
UNBOUNDED = {f"{reg}.{field}": ALL
             for reg, field in (("CAP0", "max_rkey_sz"), ("CAP1", "max_buffer"),
                                ("CAP1", "max_akey_sz"), ("CAP1", "max_cxt"),
                                ("CAP1", "opb_000_cap"), ("CAP1", "rkey_cap"),
                                ("CAP1", "max_errlog_sz"))}


class Bench:
    def __init__(self, limits=UNBOUNDED):
        self.dut = RegisterFile(BAR0_REGISTERS, addr_width=ADDR_WIDTH, limits=limits)
        self.written = {n: 0 for n in SPEC}

    async def count_written(self, ctx):
        names = list(SPEC)
        async for _, _, *pulses in ctx.tick().sample(
                *(getattr(self.dut.written, n) for n in names)):
            for n, p in zip(names, pulses):
                self.written[n] += p

    def run(self, tb, name):
        sim = new_sim(self.dut)
        sim.add_process(self.count_written)
        sim.add_testbench(tb)
        run(sim, name)

    @staticmethod
    def qword(name_or_qword):
        return SPEC[name_or_qword][0] >> 3 if isinstance(name_or_qword, str) else name_or_qword

    async def write(self, ctx, name_or_qword, data, be=0xFF):
        await bus_write(ctx, self.dut.bus, self.qword(name_or_qword), data, be)

    async def read(self, ctx, name_or_qword):
        # Not bus_read: the address moves on before the data is sampled, to show it is held.
        bus = self.dut.bus
        ctx.set(bus.addr, self.qword(name_or_qword))
        ctx.set(bus.r_stb, 1)
        await ctx.tick()
        ctx.set(bus.r_stb, 0)
        ctx.set(bus.addr, 0x7FFF)       # data is held: the address may move on
        return ctx.get(bus.r_data)


def test_reset_values_and_read_timing():
    b = Bench()

    async def tb(ctx):
        # Every register reads 0 out of reset (RO inputs at 0), stored outputs are 0.
        for name in SPEC:
            assert await b.read(ctx, name) == 0, name
        for name in STORED:
            assert ctx.get(getattr(b.dut.stored, name)) == 0, name
        # Read data appears in the clock after r_stb, not before, and stays until the next read.
        ctx.set(b.dut.ro.IMPL_BUILD_ID, 0x1234_5678_9ABC_DEF0)
        ctx.set(b.dut.bus.addr, SPEC["IMPL_BUILD_ID"][0] >> 3)
        ctx.set(b.dut.bus.r_stb, 1)
        assert ctx.get(b.dut.bus.r_data) == 0, "read data before the clock edge"
        await ctx.tick()
        ctx.set(b.dut.bus.r_stb, 0)
        assert ctx.get(b.dut.bus.r_data) == 0x1234_5678_9ABC_DEF0
        ctx.set(b.dut.ro.IMPL_BUILD_ID, 0)
        await ctx.tick().repeat(3)
        assert ctx.get(b.dut.bus.r_data) == 0x1234_5678_9ABC_DEF0, "read data not held"

    b.run(tb, "regfile_reset")


def test_write_all_ones_reads_back_rw_mask():
    b = Bench()

    async def tb(ctx):
        for name, (offset, rw, ro, rw1c, wo) in SPEC.items():
            # All ones: RW bits take it; reserved, RO and WO bits ignore it; RW1C bits
            # (clear) stay 0.
            await b.write(ctx, name, ALL)
            want = stored(name, ALL) if rw else 0
            assert await b.read(ctx, name) == want, f"{name}: {await b.read(ctx, name):#x}"
            if rw | rw1c:
                assert ctx.get(getattr(b.dut.stored, name)) == want, name
            # Zeros clear the RW bits again.
            await b.write(ctx, name, 0)
            assert await b.read(ctx, name) == 0, name

    b.run(tb, "regfile_ones")


def test_rw_fields_store_random_values():
    b = Bench()
    rng = random.Random(7)

    async def tb(ctx):
        for _ in range(3):
            values = {n: rng.getrandbits(64) for n in STORED}
            for n, v in values.items():
                await b.write(ctx, n, v)
            # Written in one pass, read back in another: registers do not alias.
            for n, v in values.items():
                assert await b.read(ctx, n) == stored(n, v), n
                assert ctx.get(getattr(b.dut.stored, n)) == stored(n, v), n

    b.run(tb, "regfile_random")


def test_ro_fields_come_from_inputs():
    b = Bench()
    rng = random.Random(8)

    async def tb(ctx):
        for name in READ_ONLY:
            ro = SPEC[name][2]
            value = rng.getrandbits(64)
            ctx.set(getattr(b.dut.ro, name), value)
            assert await b.read(ctx, name) == value & ro, name
            # A write changes nothing.
            await b.write(ctx, name, ~value & ALL)
            assert await b.read(ctx, name) == value & ro, name
            ctx.set(getattr(b.dut.ro, name), ALL)
            assert await b.read(ctx, name) == ro, name
            ctx.set(getattr(b.dut.ro, name), 0)

    b.run(tb, "regfile_ro")


@pytest.mark.parametrize("be, lanes", [(0x0F, 0x0000_0000_FFFF_FFFF),
                                       (0xF0, 0xFFFF_FFFF_0000_0000),
                                       (0x01, 0xFF), (0x80, 0xFF << 56), (0x3C, 0xFFFF_FFFF << 16)])
def test_byte_enables_touch_only_their_bytes(be, lanes):
    b = Bench()

    async def tb(ctx):
        for name in STORED:
            # From a known pattern, a write of all ones with ``be`` changes only those bytes.
            await b.write(ctx, name, 0x5A5A_5A5A_5A5A_5A5A)
            await b.write(ctx, name, ALL, be)
            want = stored(name, (0x5A5A_5A5A_5A5A_5A5A & ~lanes) | lanes)
            assert await b.read(ctx, name) == want, f"{name} be={be:#x}"
            # No byte enabled: no change at all.
            await b.write(ctx, name, 0, 0x00)
            assert await b.read(ctx, name) == want, f"{name} be=0"

    b.run(tb, f"regfile_be_{be:02x}")


def test_rw1c_err_sts():
    b = Bench()
    err_sts = b.dut.set.ERR_STS

    async def tb(ctx):
        # Events set bits; reserved bit 2 and bits above 3 cannot be set.
        ctx.set(err_sts, ALL)
        await ctx.tick()
        ctx.set(err_sts, 0)
        assert await b.read(ctx, "ERR_STS") == 0xB
        # Writing 0 keeps them; writing 1 clears exactly the bits written 1.
        await b.write(ctx, "ERR_STS", 0)
        assert await b.read(ctx, "ERR_STS") == 0xB
        await b.write(ctx, "ERR_STS", 0x2)
        assert await b.read(ctx, "ERR_STS") == 0x9
        # A clear of the low byte with its byte enable off does nothing.
        await b.write(ctx, "ERR_STS", 0xFF, be=0xFE)
        assert await b.read(ctx, "ERR_STS") == 0x9
        # A set in the same clock as a clearing write wins (no event lost) ...
        ctx.set(err_sts, 0x1)
        await b.write(ctx, "ERR_STS", 0xB)
        ctx.set(err_sts, 0)
        assert await b.read(ctx, "ERR_STS") == 0x1
        # ... while the other written bits are cleared.
        await b.write(ctx, "ERR_STS", 0x1)
        assert await b.read(ctx, "ERR_STS") == 0x0
        # A set while writing 0 to the bit: set.
        ctx.set(err_sts, 0x8)
        await b.write(ctx, "ERR_STS", 0x0)
        ctx.set(err_sts, 0)
        assert await b.read(ctx, "ERR_STS") == 0x8
        assert ctx.get(b.dut.stored.ERR_STS) == 0x8

    b.run(tb, "regfile_rw1c")


def test_write_only_register_and_written_strobes():
    b = Bench()

    async def tb(ctx):
        # A write to IMPL_MSIX_RAISE pulses ``written`` for one clock, in the clock after the
        # write, with its data; it reads 0.
        bus = b.dut.bus
        ctx.set(bus.addr, SPEC["IMPL_MSIX_RAISE"][0] >> 3)
        ctx.set(bus.w_data, 0x5)
        ctx.set(bus.w_be, 0x03)
        ctx.set(bus.w_stb, 1)
        assert ctx.get(b.dut.written.IMPL_MSIX_RAISE) == 0
        await ctx.tick()
        ctx.set(bus.w_stb, 0)
        ctx.set(bus.w_data, 0)
        assert ctx.get(b.dut.written.IMPL_MSIX_RAISE) == 1
        assert ctx.get(b.dut.write_data) == 0x5 and ctx.get(b.dut.write_be) == 0x03
        await ctx.tick()
        assert ctx.get(b.dut.written.IMPL_MSIX_RAISE) == 0
        assert await b.read(ctx, "IMPL_MSIX_RAISE") == 0
        # A write strobe with no byte enabled is not a write.
        await b.write(ctx, "IMPL_MSIX_RAISE", 0x5, be=0)
        # Each register's strobe pulses for writes to it only.
        for name in SPEC:
            await b.write(ctx, name, 0, be=0x10)
        await ctx.tick()

    b.run(tb, "regfile_wo")
    for name in SPEC:
        assert b.written[name] == (2 if name == "IMPL_MSIX_RAISE" else 1), name


def _w_hit_check(addresses):
    b = Bench()
    reg_qwords = {s[0] >> 3 for s in SPEC.values()}

    async def tb(ctx):
        for q in addresses:
            ctx.set(b.dut.bus.addr, q)
            assert ctx.get(b.dut.bus.w_hit) == (q in reg_qwords), f"w_hit at {8 * q:#x}"

    b.run(tb, "regfile_w_hit")


def test_w_hit_exactly_on_registers():
    # Every qword address of the 15-bit space: hit exactly on the register offsets.
    _w_hit_check(range(1 << ADDR_WIDTH))


def test_bounded_fields_store_what_the_capabilities_allow():
    """A control field above what CAP0/CAP1 advertise stores the advertised value (bits of an
    operation-group set outside it store 0); a value within the bound is stored as written,
    by 64-bit and by 32-bit writes (docs/spec-choices.md, "Register access")."""
    caps = {"CAP0.max_rkey_sz": 3, "CAP1.max_buffer": 11, "CAP1.max_akey_sz": 2,
            "CAP1.max_cxt": 127, "CAP1.opb_000_cap": 0x2B, "CAP1.rkey_cap": 0,
            "CAP1.max_errlog_sz": 10}
    b = Bench(caps)
    ptr = 0xFFFF_FFFF_FFFF_F000
    # Written from the spec's field positions: all ones stores each bound.
    clamped = {
        "CTL2": 11 | 2 << 12 | 127 << 16 | 0x2B << 32,
        "RKEY": 0 | 3 << 1 | ptr,                      # en 0, sz 4:1, ptr
        "ERR_CFG": 1 | 10 << 1 | ptr,                  # en 0, sz 5:1, ptr
        "IMPL_PASID_TABLE": 1 | 20 << 1 | ptr,         # sz at most 20
    }
    within = {"CTL2": 9 | 1 << 12 | 5 << 16 | 0x0A << 32, "RKEY": 2 << 1 | 0x1000,
              "ERR_CFG": 1 | 1 << 1 | 0x5000, "IMPL_PASID_TABLE": 1 | 20 << 1 | 0x2000}

    async def tb(ctx):
        for name, want in clamped.items():
            await b.write(ctx, name, ALL)
            assert await b.read(ctx, name) == want, f"{name}: {await b.read(ctx, name):#x}"
            assert ctx.get(getattr(b.dut.stored, name)) == want, name
            await b.write(ctx, name, within[name])
            assert await b.read(ctx, name) == within[name], name
        # A 32-bit write of the low dword clamps too and leaves the high dword alone.
        await b.write(ctx, "ERR_CFG", 1 | 11 << 1, be=0x0F)
        assert await b.read(ctx, "ERR_CFG") == 1 | 10 << 1
        await b.write(ctx, "CTL2", ALL, be=0xF0)
        assert await b.read(ctx, "CTL2") == (within["CTL2"] & 0xFFFF_FFFF) | 0x2B << 32

    b.run(tb, "regfile_bounded")
