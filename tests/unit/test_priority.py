"""lowest_set: the index of the lowest set bit, for widths that are and are not powers of 2."""

import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hdl.common.priority import lowest_set


@pytest.mark.parametrize("width", [1, 2, 5, 32, 37, 256])
def test_lowest_set(width):
    m = Module()
    value = Signal(width)
    index, any_ = lowest_set(m, value)
    sim = Simulator(m)

    async def tb(ctx):
        rng = random.Random(width)
        cases = [0, 1 << (width - 1), (1 << width) - 1]
        cases += [rng.getrandbits(width) & rng.getrandbits(width) & rng.getrandbits(width)
                  for _ in range(200)]
        for x in cases:
            ctx.set(value, x)
            assert ctx.get(any_) == (x != 0), hex(x)
            if x:
                assert ctx.get(index) == (x & -x).bit_length() - 1, hex(x)

    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("width", [1, 2, 3, 21, 128])
def test_round_robin_serves_the_first_requester_after_the_last(width):
    from hdl.common.priority import round_robin
    m = Module()
    requests = Signal(width)
    last = Signal(range(max(width, 2)))
    index, valid = round_robin(m, requests, last)
    sim = Simulator(m)

    async def tb(ctx):
        rng = random.Random(width)
        for _ in range(300):
            x = rng.getrandbits(width) & rng.getrandbits(width)
            prev = rng.randrange(width)
            ctx.set(requests, x)
            ctx.set(last, prev)
            assert ctx.get(valid) == (x != 0)
            if x:
                expected = next((prev + k) % width for k in range(1, width + 1)
                                if x >> ((prev + k) % width) & 1)
                assert ctx.get(index) == expected, (hex(x), prev)

    sim.add_testbench(tb)
    sim.run()
