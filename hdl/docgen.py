"""Generate the reference pages of docs/ from the definitions (``sdxi_defs``).

    python -m hdl.docgen          # rewrite docs/registers.md and docs/ram-map.md

A test fails when a page and the definitions disagree. The pages describe the default build
(``EngineConfig()``), which is why this lives beside the build parameters.
"""

import sys
from pathlib import Path

from sdxi_defs import regmap
from sdxi_defs.errors import FAULT_CLASS, READ_ERROR_CLASS, WRITE_ERROR_CLASS, ErrClass
from sdxi_defs.ram_map import RamLayout

from .config import EngineConfig


__all__ = ["PAGES", "render_registers", "render_ram_map", "render_error_classes"]

_HEADER = ("Generated from `{source}` by `python -m hdl.docgen`; do not edit.\n"
           "A test fails when this file and the definitions disagree.")


def render_registers(config=EngineConfig()):
    lines = [
        "# Register reference",
        "",
        _HEADER.format(source="sdxi_defs/regmap.py"),
        "",
        "## BAR0 layout",
        "",
        "| range | contents |",
        "|---|---|",
        f"| 0x00000-0x{regmap.IMPL_BASE - 1:05X} | SDXI function registers (SDXI 1.0 section 9) |",
        f"| 0x{regmap.IMPL_BASE:05X}-0x{regmap.DMA_EXERCISER_BASE - 1:05X} | implementation registers |",
        f"| 0x{regmap.DMA_EXERCISER_BASE:05X}-0x{regmap.DMA_EXERCISER_BASE + regmap.DMA_EXERCISER_BYTES - 1:05X} | DMA exerciser "
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


def render_ram_map(config=EngineConfig()):
    layout = RamLayout(config.data_width // 8)
    lines = [
        "# DMA RAM map",
        "",
        _HEADER.format(source="sdxi_defs/ram_map.py"),
        "",
        f"The DMA RAM holds {regmap.DMA_RAM_BYTES // 1024} KiB; the engine's map uses "
        f"0x{layout.bytes:04X} bytes of it (docs/context-engine.md says what each part is for).",
        "The host reaches the whole RAM through BAR0 from "
        f"0x{regmap.DMA_RAM_WINDOW:05X} while the function is stopped (docs/dma.md).",
        "",
        "| bytes | use |",
        "|---|---|",
    ]
    lines += [f"| 0x{r.start:04X}-0x{r.end - 1:04X} | {r.use} |" for r in layout.regions()]
    lines.append("")
    return "\n".join(lines)


def render_error_classes():
    lines = [
        "# Error classes",
        "",
        _HEADER.format(source="sdxi_defs/errors.py"),
        "",
        "ERRLOG_HD_ENT.err_class of every error this implementation logs; which step, sub-step",
        "and reaction goes with each is in docs/spec-choices.md (\"Errors\").",
        "",
        "| err_class | name |",
        "|---|---|",
    ]
    lines += [f"| 0x{c:02X} | {c.name} |" for c in ErrClass]
    for title, table in (("DMA read errors (ReadError)", READ_ERROR_CLASS),
                         ("DMA write errors (WriteError)", WRITE_ERROR_CLASS),
                         ("Translation faults (Fault)", FAULT_CLASS)):
        lines += ["", f"## {title}", "", "| code | error | err_class |", "|---|---|---|"]
        lines += [f"| {int(code)} | {code.name} | 0x{cls:02X} {cls.name} |"
                  for code, cls in table.items()]
    lines.append("")
    return "\n".join(lines)


#: Each generated page, by its path in the repository, and what renders it.
PAGES = {"docs/registers.md": render_registers, "docs/ram-map.md": render_ram_map,
         "docs/error-classes.md": render_error_classes}


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    for page, render in PAGES.items():
        (root / page).write_text(render())
        print(f"wrote {page}", file=sys.stderr)
