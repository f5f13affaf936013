"""Build-time parameters of the engine and every value derived from them.

One ``EngineConfig`` fixes a variant of the design. The capability register values, the BAR
sizes, the MSI-X geometry and the metadata file (``sdxi_engine.json``, DESIGN.md section 2; its
schema is ``sdxi_defs.metadata``) are all computed here, so the hardware, the simulation
harness and the Vivado scripts never retype them. The driver reads the same values from the
card's capability registers.
"""

import hashlib
import json
from dataclasses import dataclass, asdict

from sdxi_defs import regmap
from sdxi_defs.descriptors import OpGroup
from sdxi_defs.structures import sfunc_of


__all__ = ["EngineConfig", "VARIANTS", "DEFAULT_VARIANT", "FUNCTION_BITS"]


#: Width of a PCIe function number inside the engine: up to four physical functions (the hard
#: block's PFs 0-3) share it. A DMA request's function is its requester ID's function number.
FUNCTION_BITS = 2


IMPLEMENTED_GROUPS = (OpGroup.DMABASE, OpGroup.ADMIN, OpGroup.INTR, OpGroup.VENDOR)

# Tuple of (generation, lanes) the hard block runs at 250 MHz for each datapath width.
_LINK_FOR_WIDTH = {512: (3, 16), 256: (3, 8)}

# AXI-Stream tuser widths of pcie4c_uscale_plus (PG213), by datapath width.
TUSER_WIDTHS = {
    512: {"cq": 183, "cc": 81, "rq": 137, "rc": 161},
    256: {"cq": 88, "cc": 33, "rq": 62, "rc": 75},
}


@dataclass(frozen=True)
class EngineConfig:
    data_width: int = 512
    functions: int = 1            # SDXI functions, each a PCIe physical function (1 to 4)
    rq_straddle: bool = True
    rc_straddle: int = 4          # completions per RC beat: 0 (off), 2 or 4
    max_cxt: int = 127            # highest context ID (CAP1.max_cxt)
    db_stride: int = 0            # doorbell stride = 4 KiB << db_stride
    max_ds_ring_sz: int = 4       # largest ring = 1024 << n descriptors
    max_akey_sz: int = 0          # largest AKey table = 256 << n entries
    max_buffer: int = 11          # largest data buffer = 2^(n+21) bytes
    max_errlog_sz: int = 10       # largest ERR_CFG.sz (log of 32 << sz entries)
    msix_vectors: int = 16
    vendor_id: int = 0x10EE       # the hard block's default identity (PG213)
    device_id: int = 0x903F
    max_payload_supported: int = 1024
    cpl_credit_headers: int = 256
    cpl_credit_bytes: int = 28672

    def __post_init__(self):
        if self.data_width not in _LINK_FOR_WIDTH:
            raise ValueError(f"data_width must be one of {sorted(_LINK_FOR_WIDTH)}, "
                             f"not {self.data_width}")
        if self.rq_straddle and self.data_width != 512:
            raise ValueError("RQ straddle needs the 512-bit interface")
        if self.rc_straddle not in (0, 2, 4):
            raise ValueError(f"rc_straddle must be 0, 2 or 4, not {self.rc_straddle}")
        if self.rc_straddle == 4 and self.data_width != 512:
            raise ValueError("four completions per RC beat need the 512-bit interface")
        if not 1 <= self.functions <= 1 << FUNCTION_BITS:
            raise ValueError(f"functions must be 1 to {1 << FUNCTION_BITS} (the hard block's "
                             f"physical functions), not {self.functions}")
        if not 1 <= self.max_cxt <= 0xFFFF:
            raise ValueError(f"max_cxt must be 1 to 65535, not {self.max_cxt}")
        if (self.max_cxt + 1) & self.max_cxt:
            raise ValueError(f"max_cxt + 1 must be a power of two (BAR2 size), not {self.max_cxt + 1}")
        if not 2 <= self.msix_vectors <= min(2048, 2 + self.max_cxt):
            raise ValueError(f"msix_vectors must be 2 to {min(2048, 2 + self.max_cxt)} "
                             f"(vector 0 plus one per context), not {self.msix_vectors}")
        if self.msix_vectors * 16 > regmap.MSIX_PBA_OFFSET - regmap.MSIX_TABLE_OFFSET:
            raise ValueError("MSI-X table does not fit below the PBA")

    # Derived values -----------------------------------------------------------------------------

    @property
    def contexts(self):
        return self.max_cxt + 1

    @property
    def context_bits(self):
        """Width of a context ID within its function; the engine numbers the contexts of all
        functions together as function * contexts + ID."""
        return max(1, (self.contexts - 1).bit_length())

    @property
    def pcie_generation(self):
        return _LINK_FOR_WIDTH[self.data_width][0]

    @property
    def pcie_lanes(self):
        return _LINK_FOR_WIDTH[self.data_width][1]

    @property
    def tuser_widths(self):
        return TUSER_WIDTHS[self.data_width]

    @property
    def doorbell_stride(self):
        return 4096 << self.db_stride

    @property
    def bar2_log2_size(self):
        return (self.contexts * self.doorbell_stride - 1).bit_length()

    @property
    def opb_000_cap(self):
        """Operation groups the context engine executes (docs/spec-choices.md)."""
        return sum(1 << g.opb_bit for g in IMPLEMENTED_GROUPS)

    def cap0_of(self, function):
        """CAP0 of one function: its sfunc follows from its PCIe function number
        (docs/spec-choices.md, "Functions")."""
        r = regmap.REGISTERS_BY_NAME["CAP0"]
        return r.encode(sfunc=sfunc_of(function), db_stride=self.db_stride,
                        max_ds_ring_sz=self.max_ds_ring_sz)

    @property
    def cap0(self):
        """CAP0 of function 0 (the others differ only in sfunc)."""
        return self.cap0_of(0)

    @property
    def cap1(self):
        r = regmap.REGISTERS_BY_NAME["CAP1"]
        # RKeys let one function of the card reach another's memory: with two or more.
        return r.encode(max_buffer=self.max_buffer, rkey_cap=int(self.functions > 1), mmio64=1,
                        max_errlog_sz=self.max_errlog_sz,
                        max_akey_sz=self.max_akey_sz, max_cxt=self.max_cxt,
                        opb_000_cap=self.opb_000_cap)

    def capability_limits(self):
        """The values of CAP0's and CAP1's fields by "REGISTER.field" name: what the bounds of
        the control registers (``Field.at_most``, ``Field.within``) refer to."""
        return {f"{name}.{field}": value
                for name, raw in (("CAP0", self.cap0), ("CAP1", self.cap1))
                for field, value in regmap.REGISTERS_BY_NAME[name].decode(raw).items()}

    @property
    def version(self):
        return regmap.REGISTERS_BY_NAME["VERSION"].encode(major=1, minor=0)

    @property
    def build_id(self):
        """64-bit identity of this variant: a hash of its parameters (IMPL_BUILD_ID)."""
        text = json.dumps(asdict(self), sort_keys=True).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")

    def metadata(self):
        """The contents of ``sdxi_engine.json`` (DESIGN.md section 2)."""
        return {
            "top": "sdxi_engine",
            "data_width": self.data_width,
            "build_id": f"{self.build_id:#018x}",
            "pcie": {
                "generation": self.pcie_generation,
                "lanes": self.pcie_lanes,
                "user_clk_mhz": 250,
                "alignment": "dword",
                "client_tag": True,
                "straddle": {"cq": False, "cc": False, "rq": self.rq_straddle,
                             "rc": self.rc_straddle},
                "extended_tag_supported": True,
                "max_payload_supported": self.max_payload_supported,
                "completion_credit": {"headers": self.cpl_credit_headers,
                                      "bytes": self.cpl_credit_bytes},
                "tuser_widths": dict(self.tuser_widths),
            },
            "bars": [
                {"index": 0, "log2_size": regmap.BAR0_LOG2_SIZE, "is_64bit": True,
                 "prefetchable": False},
                {"index": 2, "log2_size": self.bar2_log2_size, "is_64bit": True,
                 "prefetchable": False},
            ],
            "msix": {
                "mode": "external",
                "vectors": self.msix_vectors,
                "table_bar": 0, "table_offset": f"{regmap.MSIX_TABLE_OFFSET:#x}",
                "pba_bar": 0, "pba_offset": f"{regmap.MSIX_PBA_OFFSET:#x}",
            },
            "pci": {
                "vendor_id": f"{self.vendor_id:#06x}",
                "device_id": f"{self.device_id:#06x}",
                "class_code": f"{regmap.SDXI_CLASS_CODE:#08x}",
            },
            "sdxi": {
                "version": "1.0",
                "cap0": f"{self.cap0:#018x}",
                "cap1": f"{self.cap1:#018x}",
                "contexts": self.contexts,
                "doorbell_stride": self.doorbell_stride,
                "functions": self.functions,
            },
        }


VARIANTS = {
    "default": EngineConfig(functions=2),
    "single": EngineConfig(),
    "nostraddle": EngineConfig(rq_straddle=False, rc_straddle=0),
    "w256": EngineConfig(data_width=256, rq_straddle=False, rc_straddle=2),
}
DEFAULT_VARIANT = "default"
