"""Decoded capability registers (MMIO_CAP0, MMIO_CAP1, MMIO_VERSION)."""

from dataclasses import dataclass

from sdxi_defs.descriptors import OpGroup
from sdxi_defs.regmap import REGISTERS_BY_NAME


__all__ = ["Capabilities"]

CAP0 = REGISTERS_BY_NAME["CAP0"]
CAP1 = REGISTERS_BY_NAME["CAP1"]
VERSION = REGISTERS_BY_NAME["VERSION"]


@dataclass(frozen=True)
class Capabilities:
    cap0: int
    cap1: int
    version: int

    @property
    def version_major(self):
        return VERSION["major"].get(self.version)

    @property
    def version_minor(self):
        return VERSION["minor"].get(self.version)

    @property
    def sfunc(self):
        return CAP0["sfunc"].get(self.cap0)

    @property
    def doorbell_stride(self):
        return 4096 << CAP0["db_stride"].get(self.cap0)

    @property
    def max_ring_entries(self):
        return 1024 << CAP0["max_ds_ring_sz"].get(self.cap0)

    @property
    def max_buffer_bytes(self):
        return 1 << (CAP1["max_buffer"].get(self.cap1) + 21)

    @property
    def max_akeys(self):
        return 256 << CAP1["max_akey_sz"].get(self.cap1)

    @property
    def max_cxt(self):
        return CAP1["max_cxt"].get(self.cap1)

    @property
    def max_errlog_entries(self):
        return 32 << CAP1["max_errlog_sz"].get(self.cap1)

    @property
    def mmio64(self):
        return bool(CAP1["mmio64"].get(self.cap1))

    @property
    def rkey(self):
        return bool(CAP1["rkey_cap"].get(self.cap1))

    @property
    def op_groups(self):
        """The operation groups CAP1.opb_000_cap advertises (``OpGroup``)."""
        return OpGroup.in_mask(CAP1["opb_000_cap"].get(self.cap1))

    def describe(self):
        groups = ", ".join(g.spec_name for g in self.op_groups) or "none"
        return "\n".join([
            f"  SDXI version       {self.version_major}.{self.version_minor}",
            f"  CAP0 / CAP1        {self.cap0:#018x} / {self.cap1:#018x}",
            f"  function (sfunc)   {self.sfunc}",
            f"  contexts           {self.max_cxt + 1} (IDs 0-{self.max_cxt})",
            f"  doorbell stride    {self.doorbell_stride} bytes",
            f"  ring entries       1024 to {self.max_ring_entries}",
            f"  AKeys per context  up to {self.max_akeys}",
            f"  max buffer         {self.max_buffer_bytes >> 20} MiB",
            f"  error log          up to {self.max_errlog_entries} entries",
            f"  64-bit MMIO        {'yes' if self.mmio64 else 'no'}",
            f"  RKeys              {'yes' if self.rkey else 'no'}",
            f"  operation groups   {groups}",
        ])
