"""The one table from DMA errors and translation faults to error classes, and the gateware
look-ups built from it (``hdl/sdxi/error_classes.py``)."""

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hdl.common.lookup import lookup
from hdl.sdxi.error_classes import class_of_fault, class_of_read_error, class_of_write_error
from sdxi_defs.errors import (FAULT_CLASS, READ_ERROR_CLASS, WRITE_ERROR_CLASS, ErrClass,
                              ReadError, WriteError)
from sdxi_defs.page_tables import Fault


@pytest.mark.parametrize("table, codes", [(READ_ERROR_CLASS, ReadError),
                                          (WRITE_ERROR_CLASS, WriteError), (FAULT_CLASS, Fault)])
def test_every_failure_has_one_class(table, codes):
    # Every code but the success code (0) has a class, of the group its kind belongs to.
    assert set(table) == {c for c in codes if c != 0}
    for code, err_class in table.items():
        assert isinstance(err_class, ErrClass)
        if codes is Fault:
            assert err_class.name == f"ATF_{code.name}" and ErrClass.is_translation(err_class)
        else:
            assert err_class >> 4 == 0x3 and not ErrClass.is_translation(err_class)
    bus_master_off = ErrClass.BUS_MASTER_OFF
    assert READ_ERROR_CLASS[ReadError.BUS_MASTER_OFF] == bus_master_off
    assert WRITE_ERROR_CLASS[WriteError.BUS_MASTER_OFF] == bus_master_off


def test_no_two_failures_share_a_class_but_bus_mastering_off():
    classes = [*READ_ERROR_CLASS.values(), *WRITE_ERROR_CLASS.values(), *FAULT_CLASS.values()]
    shared = {c for c in classes if classes.count(c) > 1}
    assert shared == {ErrClass.BUS_MASTER_OFF} and classes.count(ErrClass.BUS_MASTER_OFF) == 2


@pytest.mark.parametrize("build, codes, table", [
    (class_of_read_error, ReadError, READ_ERROR_CLASS),
    (class_of_write_error, WriteError, WRITE_ERROR_CLASS),
    (class_of_fault, Fault, FAULT_CLASS)])
def test_gateware_lookup_matches_the_table(build, codes, table):
    width = max(codes).bit_length()
    code = Signal(width)
    m = Module()
    out = Signal(8)
    m.d.comb += out.eq(build(code))
    sim = Simulator(m)
    seen = {}

    async def bench(ctx):
        for value in range(1 << width):
            ctx.set(code, value)
            seen[value] = ctx.get(out)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {v: table.get(v, 0) for v in range(1 << width)}


def test_lookup_refuses_what_it_cannot_hold():
    with pytest.raises(ValueError, match="cannot be reached by a 2-bit index"):
        lookup({4: 1}, Signal(2), 8)
    with pytest.raises(ValueError, match="does not fit in 4 bits"):
        lookup({1: 0x10}, Signal(2), 4)
