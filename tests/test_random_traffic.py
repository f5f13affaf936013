"""The random regression's own parts without a simulator: the reference model's rules for
translated buffers and host read errors, the traffic generator against the model, and the
write monitor's byte ranges."""

import random

from cocotbext.pcie.core.tlp import Tlp, TlpType

from sdxi_defs.errors import ErrClass
from sdxi_defs.structures import AKEY_ENT
from sim.random_traffic import (MIB, PAGE, TRAP_ERRORS, TRAP_KINDS, ContextLayout, Key,
                                TrafficGenerator, akey_entries, map_windows)
from sim.reference_model import ContextModel, FlatMemory
from sim.write_monitor import WriteMonitor
from sw.address_space import AddressSpace
from sw.descriptors import copy_descriptor, fill_descriptor, repcopy_descriptor
from tests.unit.mmu_helpers import BASE
from tests.unit.mmu_helpers import FlatMemory as HostMemory


class _Cst:
    def __init__(self, addr):
        self.addr = addr


def _context(rng):
    """One context of the regression over test memory: its layout, model and generator."""
    host = HostMemory(size=24 * MIB)
    layout = ContextLayout(cxt_id=3, src=host.alloc(2 * MIB, 2 * MIB).addr,
                           dst=host.alloc(2 * MIB, 2 * MIB).addr,
                           dst4k=host.alloc(ContextLayout.DST4K_BYTES).addr,
                           spare=host.alloc(ContextLayout.SPARE_BYTES).addr,
                           traps={kind: host.alloc(PAGE).addr for kind in TRAP_KINDS},
                           frame_1g=BASE, vector=2)
    space = AddressSpace(host.alloc, layout.pasid)
    map_windows(space, layout, rng)
    table = host.alloc(4096)
    for key, fields in akey_entries(layout).items():
        table.write(16 * key, AKEY_ENT.encode(**fields))
    for addr, size in layout.areas():
        host.bytes[addr - BASE:addr - BASE + size] = rng.randbytes(size)

    def read_fault(addr, n):
        hit = [kind for kind, base in layout.traps.items()
               if addr < base + PAGE and base < addr + n]
        return TRAP_ERRORS[hit[0]] if hit else None

    model = ContextModel(FlatMemory(BASE, host.bytes), akey_table=table.addr,
                         spaces={space.pasid: space}, read_fault=read_fault)
    csts = iter(range(host.alloc(1 << 16, 32).addr, 1 << 64, 32))
    return layout, model, TrafficGenerator(rng, layout, lambda: _Cst(next(csts)),
                                           fault_rate=0.3, drop_rate=1.0)


def _overlaps(ranges):
    ranges = sorted(ranges)
    return [(a, b) for a, b in zip(ranges, ranges[1:]) if a[0] + a[1] > b[0]]


def test_generated_batches_fail_exactly_where_planned_and_never_overlap():
    rng = random.Random(11)
    layout, model, generator = _context(rng)
    kinds, faults = set(), set()
    for _ in range(40):
        batch = generator.batch(rng.randrange(1, 33))
        effects = [model.execute_effect(p.raw) for p in batch]
        written = []
        for planned, effect in zip(batch, effects):
            assert bool(planned.fault) == bool(effect.error), (planned.kind, planned.fault,
                                                               effect.error)
            kinds.add(planned.kind)
            faults.add(planned.fault)
            if not planned.fault:
                written += effect.written
        assert not _overlaps(written)
        for addr, n in written:          # only the context's destination areas
            assert any(a <= addr and addr + n <= a + size for a, size in
                       ((layout.dst, layout.DST_BYTES), (layout.dst4k, layout.DST4K_BYTES)))
    assert kinds == {"copy", "fill", "imm", "repcopy", "nop", "intr", "fault"}
    assert faults - {None} == set(TrafficGenerator.FAULTS)


def test_translated_copy_writes_up_to_the_faulting_page():
    rng = random.Random(3)
    layout, model, _ = _context(rng)
    dst = layout.v_read_only - 100                     # 100 bytes before a read-only page
    before = model.mem.read(layout.spare, PAGE)
    effect = model.execute_effect(copy_descriptor(dst, layout.src, 300, src_akey=Key.BUS,
                                                  dst_akey=Key.USER))
    assert effect.error == ErrClass.ATF_WRITE
    assert sum(n for _, n in effect.written) == 100
    (paddr, _), = effect.written
    assert model.mem.read(paddr, 100) == model.mem.read(layout.src, 100)
    assert model.mem.read(layout.spare, PAGE) == before


def test_source_fault_is_reported_first_at_equal_offsets():
    rng = random.Random(4)
    layout, model, _ = _context(rng)
    effect = model.execute_effect(copy_descriptor(layout.v_read_only, layout.v_absent, 64,
                                                  src_akey=Key.USER, dst_akey=Key.USER))
    assert effect.error == ErrClass.ATF_NOT_PRESENT and not effect.written


def test_host_read_error_leaves_the_destination_undefined():
    rng = random.Random(5)
    layout, model, _ = _context(rng)
    before = model.mem.read(layout.dst, 512)
    effect = model.execute_effect(copy_descriptor(layout.dst, layout.traps["poison"] + 8, 512))
    assert effect.error == ErrClass.READ_POISONED
    assert effect.unknown == [(layout.dst, 512)] and not effect.written
    assert model.mem.read(layout.dst, 512) == before


def test_fill_and_repcopy_rules():
    rng = random.Random(6)
    layout, model, _ = _context(rng)
    effect = model.execute_effect(fill_descriptor(layout.v_absent - 8, bytes(range(16)), 64,
                                                  akey=Key.SUPERVISOR))
    assert effect.error == ErrClass.ATF_WRITE and not effect.written   # read-only first
    unaligned = repcopy_descriptor(layout.dst, 0x7100_0000_0010, 1, src_akey=Key.USER)
    assert model.execute_effect(unaligned).error == ErrClass.BAD_PARAMETER
    wrap = copy_descriptor((1 << 64) - 16, layout.src, 17)
    assert model.execute_effect(wrap).error == ErrClass.ADDRESS_WRAP


def _write_tlp(addr, length):
    tlp = Tlp()
    tlp.fmt_type = TlpType.MEM_WRITE_64
    tlp.set_addr_be_data(addr, bytes(length))
    return tlp


def test_write_monitor_checks_every_byte():
    monitor = WriteMonitor([(0x1000, 0x100)])
    monitor.allow([(0x2003, 5)])
    for addr, length in ((0x1000, 0x100), (0x1010, 3), (0x2003, 5), (0x2004, 1)):
        monitor(_write_tlp(addr, length))
    assert not monitor.violations
    for addr, length in ((0x10FF, 2), (0x2002, 2), (0x2007, 2), (0x3000, 4)):
        monitor(_write_tlp(addr, length))
    assert len(monitor.violations) == 4
    monitor.allow([])
    monitor(_write_tlp(0x2003, 5))
    assert len(monitor.violations) == 5
