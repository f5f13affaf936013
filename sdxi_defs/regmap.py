"""The SDXI function's BAR0 and BAR2 register map: the one definition of every offset and field.

The host driver, the documentation generator and the tests read the same table the hardware
is built from. Offsets and bit positions follow SDXI 1.0
section 9 (Tables 9-2 to 9-13) as digested in ``shared/sdxi-spec.md`` section 1; registers from
``IMPL_BASE`` up are this implementation's own (docs/spec-choices.md, "BAR0 layout").

Access rule for every 64-bit register (docs/spec-choices.md, "Register access"):

* A read returns the whole register; a 32-bit read returns the addressed half.
* A write updates only the bytes whose byte enables are set; a 64-bit write is applied in one
  clock, a pair of 32-bit writes as two separate updates (low dword first, as Linux's
  ``lo_hi_writeq`` does).
* Reserved bits read 0 and ignore writes. ``RO`` fields ignore writes. ``RW1C`` fields clear
  the bits written as 1.
* A field with a bound (``at_most``, ``within``: what CAP0/CAP1 advertise) stores the written
  value clamped to it, and reads back the value in force.
"""

import enum

from .fields import Access, Field, Register


__all__ = [
    "BAR0_REGISTERS", "REGISTERS_BY_NAME",
    "IMPL_BASE", "MSIX_TABLE_OFFSET", "MSIX_PBA_OFFSET", "BAR0_LOG2_SIZE",
    "DMA_EXERCISER_BASE", "DMA_EXERCISER_BYTES", "DMA_RAM_WINDOW", "DMA_RAM_BYTES",
    "EXERCISER_REGISTERS", "DMA_EXERCISER_REGISTERS", "DMA_TIMEOUT_DEFAULT",
    "GSR", "GSV", "TlbInvalidateKind", "SDXI_CLASS_CODE", "PASID_TABLE_MAX_SZ", "doorbell_offset",
]


class GSR(enum.IntEnum):
    """MMIO_CTL0.fn_gsr: function state request (Table 9-2)."""
    RESET = 0
    STOP_SF = 1
    STOP_HD = 2
    ACTIVE = 3


class TlbInvalidateKind(enum.IntEnum):
    """IMPL_TLB_INV.kind: what a write to IMPL_TLB_INV drops from the TLB."""
    ALL = 0
    PASID = 1           #: every entry of ``pasid``
    PAGE = 2            #: the 4 KiB page at IMPL_TLB_INV_ADDR in ``pasid``


class GSV(enum.IntEnum):
    """MMIO_STS0.fn_gsv: function state (Table 9-5)."""
    STOP = 0
    INIT = 1
    ACTIVE = 2
    STOPG_SF = 3
    STOPG_HD = 4
    ERROR = 5


SDXI_CLASS_CODE = 0x120100  # processing accelerator, SDXI sub-class, prog-if 0

BAR0_LOG2_SIZE = 18          # 256 KiB
IMPL_BASE = 0x30000          # implementation registers (outside the spec's 0x00000-0x2FFFF)
DMA_EXERCISER_BASE = 0x31000  # DMA exerciser registers (hdl/pcie/dma_exerciser.py)
DMA_EXERCISER_BYTES = 0x100  # the register space the exerciser decodes
DMA_RAM_WINDOW = 0x34000     # host window onto the DMA RAM
DMA_RAM_BYTES = 0x4000       # 16 KiB: the window and the RAM
MSIX_TABLE_OFFSET = 0x38000  # 16 bytes per vector
MSIX_PBA_OFFSET = 0x3C000    # one bit per vector

RO, RW, RW1C, WO = Access.RO, Access.RW, Access.RW1C, Access.WO

PASID_TABLE_MAX_SZ = 20      # IMPL_PASID_TABLE.sz: at most 2^20 PASIDs

BAR0_REGISTERS = (
    Register("CTL0", 0x00000, spec="Table 9-2", fields=(
        Field("fn_gsr", 0, 2, RW, "function state request (GSR)"),
        Field("fn_pasid_vl", 2, 1, RW, "fn_pasid valid"),
        Field("fn_err_intr_en", 4, 1, RW, "interrupt (vector 0) on a transition to GSV_ERROR"),
        Field("fn_pasid", 8, 20, RW, "PASID for the function's own structure accesses"),
        Field("fn_grp_id", 32, 32, RW, "function group ID"),
    )),
    Register("CTL2", 0x00010, spec="Table 9-4", fields=(
        Field("max_buffer", 0, 4, RW, "software limit on data buffer size, 2^(n+21) bytes",
              at_most="CAP1.max_buffer"),
        Field("max_akey_sz", 12, 4, RW, "software limit on AKey table size",
              at_most="CAP1.max_akey_sz"),
        Field("max_cxt", 16, 16, RW, "software limit on the highest context ID",
              at_most="CAP1.max_cxt"),
        Field("opb_000_avl", 32, 32, RW, "operation groups made available",
              within="CAP1.opb_000_cap"),
    )),
    Register("STS0", 0x00100, spec="Table 9-5", fields=(
        Field("fn_gsv", 0, 3, RO, "function state (GSV)"),
    )),
    Register("CAP0", 0x00200, spec="Table 9-6", fields=(
        Field("sfunc", 0, 16, RO, "SDXI function number within its group"),
        Field("vf", 16, 1, RO, "function is an SR-IOV VF"),
        Field("cs_cap", 17, 2, RO, "completion-status capability"),
        Field("db_stride", 20, 3, RO, "doorbell stride = 4 KiB << db_stride"),
        Field("max_ds_ring_sz", 24, 5, RO, "largest ring = 1024 << n descriptors"),
        Field("max_rkey_sz", 32, 8, RO, "largest RKey table = 256 << n entries"),
    )),
    Register("CAP1", 0x00208, spec="Table 9-7", fields=(
        Field("max_buffer", 0, 4, RO, "largest data buffer = 2^(n+21) bytes"),
        Field("rkey_cap", 4, 1, RO, "RKeys (cross-function access) supported"),
        Field("rm", 5, 1, RO, "(meaning not public; reads 0)"),
        Field("mmio64", 6, 1, RO, "64-bit MMIO accesses supported"),
        Field("max_errlog_sz", 8, 4, RO, "largest ERR_CFG.sz accepted"),
        Field("max_akey_sz", 12, 4, RO, "largest AKey table = 256 << n entries"),
        Field("max_cxt", 16, 16, RO, "highest context ID"),
        Field("opb_000_cap", 32, 32, RO, "operation groups implemented"),
    )),
    Register("VERSION", 0x00210, spec="Table 9-8", fields=(
        Field("minor", 0, 8, RO),
        Field("major", 16, 8, RO),
    )),
    Register("CXT_L2", 0x10000, spec="Table 9-9", fields=(
        Field("ptr", 12, 52, RW, "4 KiB-aligned context L2 table, address bits 63:12"),
    )),
    Register("RKEY", 0x10100, spec="Table 9-10", fields=(
        Field("en", 0, 1, RW, "RKey table valid (stores 0 where CAP1.rkey_cap = 0)",
              at_most="CAP1.rkey_cap"),
        Field("sz", 1, 4, RW, "RKey table holds 256 << sz entries", at_most="CAP0.max_rkey_sz"),
        Field("ptr", 12, 52, RW, "4 KiB-aligned RKey table, address bits 63:12"),
    )),
    Register("ERR_CTL", 0x20000, spec="Table 9-11", fields=(
        Field("en", 0, 1, RW, "interrupt (vector 0) when ERR_STS.sts goes 0 -> 1"),
    )),
    Register("ERR_STS", 0x20008, spec="Table 9-12", fields=(
        Field("sts", 0, 1, RW1C, "an error has been logged"),
        Field("ovf", 1, 1, RW1C, "the error log overflowed"),
        Field("err", 3, 1, RW1C, "logging an error failed"),
    )),
    Register("ERR_CFG", 0x20010, spec="Table 9-13", fields=(
        Field("en", 0, 1, RW, "error log enabled"),
        Field("sz", 1, 5, RW, "error log holds 32 << sz entries", at_most="CAP1.max_errlog_sz"),
        Field("ptr", 12, 52, RW, "4 KiB-aligned error log ring, address bits 63:12"),
    )),
    Register("ERR_WRT", 0x20020, spec="section 3.4", fields=(
        Field("index", 0, 64, RW, "error log write index (function advances it)"),
    )),
    Register("ERR_RD", 0x20028, spec="section 3.4", fields=(
        Field("index", 0, 64, RW, "error log read index (software advances it)"),
    )),
    # Implementation registers: not SDXI, documented in docs/spec-choices.md.
    Register("IMPL_BUILD_ID", IMPL_BASE + 0x00, spec="implementation", fields=(
        Field("build_id", 0, 64, RO, "identifies the exported design (metadata 'build_id')"),
    )),
    Register("IMPL_CYCLES", IMPL_BASE + 0x08, spec="implementation", fields=(
        Field("count", 0, 64, RO, "free-running user-clock cycle counter, 0 at reset"),
    )),
    Register("IMPL_DROPPED_WRITES", IMPL_BASE + 0x10, spec="implementation", fields=(
        Field("count", 0, 64, RO, "64-bit write accesses dropped: unimplemented space or bad doorbell"),
    )),
    Register("IMPL_UNSUPPORTED_REQS", IMPL_BASE + 0x18, spec="implementation", fields=(
        Field("count", 0, 64, RO, "completer requests answered UR or dropped (I/O, atomic, "
                                  "locked, message, truncated)"),
    )),
    Register("IMPL_MSIX_RAISE", IMPL_BASE + 0x20, spec="implementation", fields=(
        Field("vector", 0, 11, WO, "raise this MSI-X vector (interrupt self-test), masks honoured"),
    )),
    Register("IMPL_PERF_DECODE", IMPL_BASE + 0x28, spec="implementation", fields=(
        Field("descriptors", 0, 32, RO, "descriptors the context engine has decoded and issued"),
        Field("cycles", 32, 32, RO, "clocks the decoder spent with a descriptor in hand"),
    )),
    Register("IMPL_PASID_TABLE", IMPL_BASE + 0x30, spec="implementation", fields=(
        Field("en", 0, 1, RW, "PASID table valid (else every pv = 1 access faults NO_PASID)"),
        Field("sz", 1, 5, RW, "the table holds 1 << sz 8-byte entries (sz 0 to 20)",
              at_most=PASID_TABLE_MAX_SZ),
        Field("ptr", 12, 52, RW, "4 KiB-aligned PASID table, address bits 63:12"),
    )),
    Register("IMPL_TLB_INV_ADDR", IMPL_BASE + 0x38, spec="implementation", fields=(
        Field("vaddr", 0, 64, RW, "virtual address of a PAGE invalidation"),
    )),
    Register("IMPL_TLB_INV", IMPL_BASE + 0x40, spec="implementation", fields=(
        Field("kind", 0, 2, WO, "a write invalidates the TLB: 0 all, 1 one PASID, 2 one 4 KiB "
                                "page (IMPL_TLB_INV_ADDR) of one PASID (TlbInvalidateKind)"),
        Field("pasid", 8, 20, WO, "PASID of a PASID or PAGE invalidation"),
        Field("busy", 63, 1, RO, "an invalidation (written or from SYNC) is not finished"),
    )),
    Register("IMPL_PERF_TLB", IMPL_BASE + 0x48, spec="implementation", fields=(
        Field("hits", 0, 32, RO, "TLB lookups that hit"),
        Field("misses", 32, 32, RO, "TLB lookups that walked (misses and refused accesses)"),
    )),
    Register("IMPL_PERF_WALK", IMPL_BASE + 0x50, spec="implementation", fields=(
        Field("cycles", 0, 32, RO, "clocks the TLB spent waiting for walks"),
    )),
)

REGISTERS_BY_NAME = {r.name: r for r in BAR0_REGISTERS}


DMA_TIMEOUT_DEFAULT = 1 << 24  # DMA time-out in clocks while DMA_TIMEOUT is 0 (67 ms)


def _job(prefix, offset):
    """The five registers of one exerciser transfer direction."""
    return (
        Register(f"{prefix}_ADDR", offset + 0x00, fields=(
            Field("addr", 0, 64, RW, "host byte address"),)),
        Register(f"{prefix}_LEN", offset + 0x08, fields=(
            Field("length", 0, 24, RW, "bytes"),)),
        Register(f"{prefix}_RAM", offset + 0x10, fields=(
            Field("ram_addr", 0, 24, RW, "DMA RAM byte address"),)),
        Register(f"{prefix}_GO", offset + 0x18, fields=(
            Field("go", 0, 1, WO, "start the transfer"),)),
        Register(f"{prefix}_STATUS", offset + 0x20, fields=(
            Field("busy", 0, 1, RO, "transfer running"),
            Field("error", 8, 3, RO, "error of the last transfer (ReadError / WriteError)"),
            Field("cycles", 32, 32, RO, "clocks from GO to the engine's status"),
        )),
    )


#: The DMA exerciser's registers (docs/dma.md), at offsets from DMA_EXERCISER_BASE: the
#: exerciser decodes them itself.
EXERCISER_REGISTERS = _job("DMA_RD", 0x00) + _job("DMA_WR", 0x28) + (
    Register("DMA_TIMEOUT", 0x50, fields=(
        Field("clocks", 0, 32, RW, "DMA time-out: read completions and write confirmations; "
                                   f"0: 2^{DMA_TIMEOUT_DEFAULT.bit_length() - 1}"),)),
    Register("DMA_RD_SPLIT", 0x60, fields=(
        Field("log2", 0, 4, RW, "cut reads at 1 << log2 bytes too (2-12; 0: MRRS only)"),)),
    Register("DMA_INFO", 0x58, fields=(
        Field("ext_tag", 0, 1, RO, "Extended Tag Field Enable seen through cfg_mgmt"),
        Field("outstanding", 16, 16, RO, "read completion bytes outstanding"),
    )),
)
assert all(r.offset < DMA_EXERCISER_BYTES for r in EXERCISER_REGISTERS)


#: The DMA exerciser's registers at their BAR0 offsets.
DMA_EXERCISER_REGISTERS = tuple(
    Register(r.name, DMA_EXERCISER_BASE + r.offset, r.fields, spec="implementation", doc=r.doc)
    for r in EXERCISER_REGISTERS)


def doorbell_offset(cxt_id, db_stride):
    """Offset in BAR2 of context ``cxt_id``'s doorbell (sdxi-spec.md section 1.9)."""
    return cxt_id * (4096 << db_stride)
