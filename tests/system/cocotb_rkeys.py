"""Copies between two SDXI functions through RKeys (docs/spec-choices.md, "RKeys"), as the
Linux authors' example has it: guest 2 (function 1) grants an RKey for one of its address
spaces to function 0; guest 1 (function 0) makes the AKey that names it and copies across;
guest 2 revokes it.

A monitor at the root complex records every memory access of the engine; where a key is
refused, no byte of the other function's memory is read or written but its RKey entry and
its error log.
"""

import itertools

import cocotb

from sdxi_defs.errors import ErrClass, ErrReaction, ErrStep, ErrSubStep
from sdxi_defs.regmap import REGISTERS_BY_NAME
from sdxi_defs.structures import sfunc_of
from sw.context import Completion
from sw.descriptors import interrupt_descriptor
from sw.device import RKEY_ENTRIES, RemoteKey
from sw.errors import SdxiOpError
from tests.system.cocotb_contexts import GUARD, check_guarded, data, guarded
from tests.system.cocotb_functions import two_cards


class AccessMonitor:
    """Every memory read and write the engine sends to the root complex, as (function,
    first byte, end byte, kind)."""

    def __init__(self, tb):
        self.accesses = []
        tb.rc.fault = self._read
        tb.rc.on_write = self._write

    def _note(self, tlp, kind):
        start = tlp.address
        self.accesses.append((tlp.requester_id.function, start, start + 4 * tlp.length, kind))

    def _read(self, tlp):
        self._note(tlp, "read")
        return None

    def _write(self, tlp):
        self._note(tlp, "write")

    def mark(self):
        return len(self.accesses)

    def touching(self, start, end, since=0):
        return [a for a in self.accesses[since:] if a[1] < end and start < a[2]]


def memory_of(card):
    m = card.transport.host_memory()
    return m.addr, m.addr + m.size


async def spaces(cards, pasid=20):
    """For each card a PASID space with scattered pages mapped at the same virtual address."""
    out = []
    for card in cards:
        space = await card.create_address_space(pasid=pasid)
        out.append(space)
    return out


@cocotb.test(timeout_time=900, timeout_unit="us")
async def copies_across_functions_every_pv(dut):
    """Function 0 copies between its own memory and function 1's (granted by RKeys for bus
    addresses and for a PASID space) with every combination of pv on both sides, over
    scattered pages and unaligned, with guard bytes around every destination."""
    tb, cards = await two_cards(dut)
    guest1, guest2 = cards
    cxt = await guest1.create_context()
    space1, space2 = await spaces(cards)
    bus_key = await guest2.grant_rkey(guest1.caps.sfunc)
    space_key = await guest2.grant_rkey(guest1.caps.sfunc, space2)
    n = 6000
    vsrc, vdst = 0x7F00_0000_0000, 0x5500_0000_0000

    def endpoint(kind, role, salt):
        """(AKey space, address, reader, checker) of one side of a copy."""
        if kind in ("local bus", "remote bus"):
            t = (guest1 if kind == "local bus" else guest2).transport
            if role == "src":
                buf = t.alloc_dma(n + 64)
                buf.write(5, data(n, salt))
                return None if kind == "local bus" else bus_key, buf.addr + 5, buf
            buf, addr = guarded(t, n, 3)
            return None if kind == "local bus" else bus_key, addr, buf
        space = space1 if kind == "local pasid" else space2
        base = (vsrc if role == "src" else vdst) + salt * 0x10_0000
        buf = space.map_buffer(base, 4 * 4096)
        if role == "src":
            buf.write(5, data(n, salt))
            return (space if kind == "local pasid" else space_key), base + 5, buf
        buf.write(0, bytes([GUARD]) * buf.size)
        return (space if kind == "local pasid" else space_key), base + 64 + 3, buf

    kinds = ("local bus", "local pasid", "remote bus", "remote pasid")
    for salt, (src_kind, dst_kind) in enumerate(itertools.product(kinds, kinds)):
        if "remote" not in src_kind + dst_kind:
            continue
        src_space, src, _ = endpoint(src_kind, "src", salt)
        dst_space, dst, dst_buf = endpoint(dst_kind, "dst", salt + 100)
        await cxt.copy_between(dst_space, dst, src_space, src, n)
        check_guarded(dst_buf, 3, data(n, salt))
    assert await guest2.read_error_log() == [] and await guest1.read_error_log() == []


async def refused(card, cxt, dst_space, dst, src, n):
    """Run a copy that must fail; return the requester's log entries."""
    try:
        await cxt.copy_between(dst_space, dst, None, src, n)
    except SdxiOpError as e:
        return e.log
    raise AssertionError("a copy through a bad RKey completed")


@cocotb.test(timeout_time=900, timeout_unit="us")
async def bad_rkeys_are_refused_and_nothing_moves(dut):
    """Out of range, revoked, granted to another function, and in a disabled table: each copy
    fails with its error class in the requester's log (step 12, the context stops) and an
    informative entry in the target's log, and nothing of the target's memory is read or
    written but that RKey entry and its log."""
    tb, cards = await two_cards(dut)
    guest1, guest2 = cards
    monitor = AccessMonitor(tb)
    t1 = guest1.transport
    n = 3000
    src = t1.alloc_dma(n)
    src.write(0, data(n, 1))
    target, target_addr = guarded(guest2.transport, n)
    good = await guest2.grant_rkey(guest1.caps.sfunc)
    revoked = await guest2.grant_rkey(guest1.caps.sfunc)
    await guest2.revoke_rkey(revoked)
    elsewhere = await guest2.grant_rkey(sfunc_of(3))          # not function 0's
    cases = [
        ("out of range", RemoteKey(guest2.caps.sfunc, RKEY_ENTRIES + 5), ErrClass.RKEY_RANGE),
        ("revoked", revoked, ErrClass.RKEY_INVALID),
        ("another function's", elsewhere, ErrClass.RKEY_DENIED),
    ]
    allowed = [(guest2.rkey_table.addr, guest2.rkey_table.addr + guest2.rkey_table.size),
               (guest2.error_log.addr, guest2.error_log.addr + guest2.error_log.size)]
    lo, hi = memory_of(guest2)
    for what, key, cls in cases + [("a disabled table", good, ErrClass.RKEY_RANGE)]:
        if what == "a disabled table":
            await guest2.write_reg("RKEY", 0)
        cxt = await guest1.create_context()
        since = monitor.mark()
        log = await refused(guest1, cxt, key, target_addr, src.addr, n)
        assert [(e.step, e.sub_step, e.err_class, e.re, e.cxt_num) for e in log] == [
            (ErrStep.RKEY, ErrSubStep.DVF, cls, ErrReaction.CONTEXT_STOPPED, cxt.id)], \
            (what, [str(e) for e in log])
        theirs = await guest2.read_error_log()
        assert [(e.step, e.err_class, e.re, e.cv, e.div) for e in theirs] == [
            (ErrStep.RKEY, cls, ErrReaction.INFORMATIVE, 0, 0)], (what, [str(e) for e in theirs])
        check_guarded(target, 0, bytes([GUARD]) * n)
        stray = [a for a in monitor.touching(lo, hi, since)
                 if not any(a[1] >= s and a[2] <= e for s, e in allowed)]
        assert stray == [], (what, stray)
        await guest1.stop_context(cxt)
    # The same copy through the good key, table enabled again, moves the bytes.
    await guest2.write_reg("RKEY", REGISTERS_BY_NAME["RKEY"].encode(
        en=1, sz=0, ptr=guest2.rkey_table.addr >> 12))
    cxt = await guest1.create_context()
    await cxt.copy_between(good, target_addr, None, src.addr, n)
    check_guarded(target, 0, data(n, 1))


@cocotb.test(timeout_time=600, timeout_unit="us")
async def revocation_and_target_faults(dut):
    """A key works, is revoked (RKEY_UPD completes), and the next copy through it is refused;
    a page absent from the target's space fails the copy with a translation fault in the
    requester's log, and the bytes before it arrive."""
    tb, cards = await two_cards(dut)
    guest1, guest2 = cards
    cxt = await guest1.create_context()
    t1 = guest1.transport
    (space2,) = await spaces([guest2])
    key = await guest2.grant_rkey(guest1.caps.sfunc, space2)
    inbox = space2.map_buffer(0x4000_0000, 3 * 4096)
    n = 5000
    src = t1.alloc_dma(3 * 4096)
    src.write(0, data(3 * 4096, 9))
    await cxt.copy_between(key, 0x4000_0000 + 17, None, src.addr, n)
    assert inbox.read(17, n) == data(3 * 4096, 9)[:n]

    # A page missing in the middle: the copy stops at it.
    space2.unmap(0x4000_0000 + 4096, 4096)
    await guest2.invalidate_tlb(space2.pasid)
    log = await refused(guest1, cxt, key, 0x4000_0000, src.addr, 3 * 4096)
    assert [(e.step, e.sub_step, e.err_class) for e in log] == [
        (ErrStep.DATA_BUFFER, ErrSubStep.ATF, ErrClass.ATF_NOT_PRESENT)], [str(e) for e in log]
    await guest1.stop_context(cxt)

    await guest2.revoke_rkey(key)
    cxt = await guest1.create_context()
    log = await refused(guest1, cxt, key, 0x4000_0000 + 17, src.addr, 100)
    assert [(e.step, e.err_class) for e in log] == [(ErrStep.RKEY, ErrClass.RKEY_INVALID)]


@cocotb.test(timeout_time=400, timeout_unit="us")
async def an_intr_through_an_rkey_rings_the_other_guest(dut):
    """Guest 2 grants an RKey with an interrupt (iv = 1, vector 6); guest 1's INTR through the
    AKey naming it raises vector 6 of guest 2's function, and nothing at guest 1."""
    tb, cards = await two_cards(dut)
    guest1, guest2 = cards
    key = await guest2.grant_rkey(guest1.caps.sfunc, vector=6)
    cxt = await guest1.create_context()
    for card in cards:
        card.transport.clear_interrupt(6)
    cst = Completion(guest1)
    await cxt.submit([interrupt_descriptor(cxt.akey_for(key), cst=cst)])
    await cst.wait("INTR through an RKey", guest1.timing.completion_timeout())
    assert await guest2.transport.wait_interrupt(6, 20_000), "guest 2's vector 6"
    assert not await guest1.transport.wait_interrupt(6, 2000), "guest 1 got it"
