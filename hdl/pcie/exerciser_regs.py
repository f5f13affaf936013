"""Register table of the DMA exerciser (pure Python: the driver and tests read it too)."""

from ..common.regdef import Access, Field, Register


__all__ = ["EXERCISER_REGISTERS", "DEFAULT_TIMEOUT"]

RO, RW, WO = Access.RO, Access.RW, Access.WO
DEFAULT_TIMEOUT = 1 << 24      # completion time-out in clocks when DMA_TIMEOUT is 0 (67 ms)


def _job(prefix, offset):
    return (
        Register(f"{prefix}_ADDR", offset + 0x00, fields=(Field("addr", 0, 64, RW, "host byte address"),)),
        Register(f"{prefix}_LEN", offset + 0x08, fields=(Field("length", 0, 24, RW, "bytes"),)),
        Register(f"{prefix}_RAM", offset + 0x10, fields=(Field("ram_addr", 0, 24, RW, "DMA RAM byte address"),)),
        Register(f"{prefix}_GO", offset + 0x18, fields=(Field("go", 0, 1, WO, "start the transfer"),)),
        Register(f"{prefix}_STATUS", offset + 0x20, fields=(
            Field("busy", 0, 1, RO, "transfer running"),
            Field("error", 8, 3, RO, "error of the last transfer (ReadError / WriteError)"),
            Field("cycles", 32, 32, RO, "clocks from GO to the engine's status"),
        )),
    )


#: Registers at offsets from the exerciser's base (placed by hdl/sdxi/regmap.py).
EXERCISER_REGISTERS = _job("DMA_RD", 0x00) + _job("DMA_WR", 0x28) + (
    Register("DMA_TIMEOUT", 0x50, fields=(Field("clocks", 0, 32, RW, "DMA time-out: read "
                                                "completions and write confirmations; 0: 2^24"),)),
    Register("DMA_RD_SPLIT", 0x60, fields=(Field("log2", 0, 4, RW, "cut reads at 1 << log2 bytes too (2-12; 0: MRRS only)"),)),
    Register("DMA_INFO", 0x58, fields=(
        Field("ext_tag", 0, 1, RO, "Extended Tag Field Enable seen through cfg_mgmt"),
        Field("outstanding", 16, 16, RO, "read completion bytes outstanding"),
    )),
)
