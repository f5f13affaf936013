"""Definitions the SDXI engine's hardware, host driver, documentation and tests share.

Pure Python with no dependency outside the standard library: a host with no HDL toolchain
imports these and the driver (``sw``) and nothing else. Like Linux's SDXI ``hw.h``/``mmio.h``,
this is the only layer the driver shares with the gateware.

- ``fields``: ``Field``, ``Register`` and ``Structure``, the tables everything else is made of;
- ``regmap``: BAR0 and BAR2: every register, field, bound and the BAR0 layout (SDXI 1.0
  section 9, implementation registers, the DMA exerciser's);
- ``structures``: the in-memory structures (context tables, CXT_CTL/CXT_STS, AKeys, CSTs, the
  error-log entry);
- ``descriptors``: descriptor layouts and operation groups (SDXI 1.0 chapter 6);
- ``errors``: error-log steps, sub-steps, reactions and classes, and the one table from DMA
  errors and translation faults to classes;
- ``page_tables``: the PASID table and x86-64 page-table formats of address spaces;
- ``ram_map``: where the implementation keeps things in its DMA RAM;
- ``metadata``: the schema of ``sdxi_engine.json``.
"""
