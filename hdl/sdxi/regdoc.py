"""Generate docs/registers.md from the register map.

    python -m hdl.sdxi.regdoc > docs/registers.md
"""

from ..config import EngineConfig
from . import regmap


def render(config=EngineConfig()):
    lines = [
        "# Register reference",
        "",
        "Generated from `hdl/sdxi/regmap.py` by `python -m hdl.sdxi.regdoc`; do not edit.",
        "A test fails when this file and the register map disagree.",
        "",
        "## BAR0 layout",
        "",
        "| range | contents |",
        "|---|---|",
        f"| 0x00000-0x{regmap.IMPL_BASE - 1:05X} | SDXI function registers (SDXI 1.0 section 9) |",
        f"| 0x{regmap.IMPL_BASE:05X}-0x{regmap.DMA_EXERCISER_BASE - 1:05X} | implementation registers |",
        f"| 0x{regmap.DMA_EXERCISER_BASE:05X}-0x{regmap.DMA_EXERCISER_BASE + 0xFF:05X} | DMA exerciser "
        f"registers (docs/dma.md) |",
        f"| 0x{regmap.DMA_RAM_WINDOW:05X}-0x{regmap.DMA_RAM_WINDOW + regmap.DMA_RAM_BYTES - 1:05X} | "
        f"DMA RAM window (qword accesses while the exerciser is idle) |",
        f"| 0x{regmap.MSIX_TABLE_OFFSET:05X}-0x{regmap.MSIX_PBA_OFFSET - 1:05X} | MSI-X table "
        f"({config.msix_vectors} vectors in the default build, 16 bytes each) |",
        f"| 0x{regmap.MSIX_PBA_OFFSET:05X}-0x{(1 << regmap.BAR0_LOG2_SIZE) - 1:05X} | MSI-X PBA |",
        "",
        "Anything else in BAR0 reads 0; writes there are dropped and counted in "
        "IMPL_DROPPED_WRITES.",
        "",
        "## BAR2 layout",
        "",
        "Context *n*'s doorbell is the first qword at BAR2 + *n* x (4 KiB << CAP0.db_stride); "
        f"the default build has {config.contexts} contexts and a "
        f"{config.doorbell_stride}-byte stride.",
        "",
        "## Registers",
        "",
    ]
    limits = config.capability_limits()

    def bound(f):
        """What a bounded field's write is clamped to, in words (docs/spec-choices.md)."""
        if f.at_most is not None:
            b = f.at_most
            return f"; a larger value stores " + (f"{b} ({limits[b]})" if isinstance(b, str)
                                                  else f"{b}")
        if f.within is not None:
            return f"; bits outside {f.within} ({limits[f.within]:#x}) store 0"
        return ""

    for reg in regmap.BAR0_REGISTERS + regmap.DMA_EXERCISER_REGISTERS:
        lines += [f"### {reg.name} (0x{reg.offset:05X}, {reg.spec})", "",
                  "| bits | field | access | meaning |", "|---|---|---|---|"]
        for f in sorted(reg.fields, key=lambda f: f.lsb, reverse=True):
            bits = f"{f.lsb + f.width - 1}:{f.lsb}" if f.width > 1 else f"{f.lsb}"
            lines.append(f"| {bits} | {f.name} | {f.access.name} | {f.doc}{bound(f)} |")
        lines.append("")
    lines += ["Bits not listed are reserved: they read 0 and ignore writes.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
