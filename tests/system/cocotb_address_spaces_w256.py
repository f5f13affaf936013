"""Copies between address spaces on the 256-bit datapath, where the walker's table lines
are 32 bytes (4 entries) and the RAM rows half as wide."""

import cocotb

from .cocotb_address_spaces import run_copies

VARIANTS = ("w256",)


@cocotb.test(timeout_time=2000, timeout_unit="us")
async def copies_within_and_across_spaces(dut):
    await run_copies(dut)
