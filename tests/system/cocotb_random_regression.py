"""The seeded random regression (``sim/random_regression.py``): random descriptors over 16
contexts, every operation, pv = 0 and pv = 1 buffers on 4 KiB, 2 MiB and 1 GiB pages, fences,
wrapping rings, injected faults and stops, scored by the reference model and a write monitor.

``random_1000`` runs in the regression with a fixed seed; ``long_random_a``/``_b`` (marker
``long``, ``--long``) are the two halves of the 10,000-descriptor run (``./sdxi random`` runs
any size). ``--seed`` (SDXI_RANDOM_SEED) reproduces any of them.
"""

import cocotb

from sim.random_regression import Settings, run_regression


async def _run(dut, **defaults):
    await run_regression(dut, Settings.from_env(**defaults))


@cocotb.test(timeout_time=100, timeout_unit="ms")
async def random_1000(dut):
    await _run(dut, descriptors=1000)


@cocotb.test(timeout_time=1000, timeout_unit="ms")
async def long_random_a(dut):
    await _run(dut, descriptors=5000, shard=0)


@cocotb.test(timeout_time=1000, timeout_unit="ms")
async def long_random_b(dut):
    await _run(dut, descriptors=5000, shard=1)
