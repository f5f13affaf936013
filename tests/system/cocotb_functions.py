"""Several SDXI functions in one engine (docs/spec-choices.md, "Functions"): each is brought up
by its own host through its own BARs and memory, and nothing one function's host does (copies,
stops, resets, errors, any MMIO write) changes what the other function does or reads.

Every destination has guard bytes around it that must survive.
"""

import random

import cocotb
from cocotb.triggers import Combine

from sdxi_defs.regmap import BAR0_REGISTERS, GSR, GSV, MSIX_TABLE_OFFSET, REGISTERS_BY_NAME
from sdxi_defs.structures import sfunc_of
from sim.tb import SdxiTb
from tests.system.cocotb_contexts import check_guarded, data, guarded


async def two_cards(dut):
    """The simulated card's functions 0 and 1, each started by its own host."""
    tb = SdxiTb(dut)
    assert tb.metadata["sdxi"]["functions"] >= 2, "this variant has one function"
    cards = [await tb.card(function=f) for f in range(2)]
    for card in cards:
        await card.start()
    return tb, cards


async def copies(card, cxt, count, size, seed):
    """``count`` copies of ``size`` bytes through ``cxt``, each checked with its guards."""
    t = card.transport
    rng = random.Random(seed)
    for i in range(count):
        payload = data(size, rng.randrange(1 << 30))
        src = t.alloc_dma(size)
        src.write(0, payload)
        offset = rng.randrange(64)
        dst, dst_addr = guarded(t, size, offset)
        await cxt.mem_copy(dst_addr, src.addr, size)
        check_guarded(dst, offset, payload)


@cocotb.test(timeout_time=400, timeout_unit="us")
async def functions_copy_at_once(dut):
    """Both functions active with a context each, copying at the same time: every byte lands
    where its own function's host asked. Each reads its own sfunc in CAP0."""
    tb, cards = await two_cards(dut)
    for f, card in enumerate(cards):
        assert card.caps.sfunc == sfunc_of(f), f"CAP0.sfunc of function {f}"
        assert await card.state() == GSV.ACTIVE
    cxts = [await card.create_context() for card in cards]
    runs = [cocotb.start_soon(copies(card, cxt, 6, 3000 + 1000 * f, seed=f))
            for f, (card, cxt) in enumerate(zip(cards, cxts))]
    await Combine(*runs)
    for card in cards:
        await card.stop()


@cocotb.test(timeout_time=400, timeout_unit="us")
async def same_pasid_in_two_functions(dut):
    """PASID 10 of function 0 and PASID 10 of function 1 are two address spaces: the same
    virtual addresses map to different pages, and each function's copy lands in its own."""
    tb, cards = await two_cards(dut)
    vsrc, vdst, n = 0x7F00_0000_0000, 0x5500_0000_0000, 9000
    results = []
    for f, card in enumerate(cards):
        space = await card.create_address_space(pasid=10)
        outbox = space.map_buffer(vsrc, 4 * 4096)
        inbox = space.map_buffer(vdst, 4 * 4096)
        message = data(n, 100 + f)
        outbox.write(5, message)
        cxt = await card.create_context()
        await cxt.copy_between(space, vdst + 9, space, vsrc + 5, n)
        results.append((inbox, message))
    for f, (inbox, message) in enumerate(results):
        assert inbox.read(9, n) == message, f"function {f}'s copy in its own PASID 10"
    for card in cards:
        await card.stop()


@cocotb.test(timeout_time=800, timeout_unit="us")
async def one_function_stops_resets_and_fails_while_the_other_copies(dut):
    """Function 0 copies all along; meanwhile function 1 is stopped softly, hard, reset out
    of an error and brought up again. Function 0's copies stay correct and its state ACTIVE."""
    tb, cards = await two_cards(dut)
    busy, other = cards
    cxt = await busy.create_context()
    run = cocotb.start_soon(copies(busy, cxt, 30, 4096, seed=7))

    side = await other.create_context()
    await copies(other, side, 2, 2000, seed=8)
    await other.request(GSR.STOP_SF)
    await other.wait_state({GSV.STOP}, "soft stop")
    await other.start()
    side = await other.create_context()
    await copies(other, side, 2, 2000, seed=9)
    await other.request(GSR.STOP_HD)
    await other.wait_state({GSV.STOP}, "hard stop")
    # A function-level error: activation finds the admin context's L1 entry invalid.
    other.l1_table.write(0, bytes(8))
    await other.request(GSR.ACTIVE)
    await other.wait_state({GSV.ERROR}, "activation with an invalid admin context")
    await other.request(GSR.RESET)
    await other.wait_state({GSV.STOP}, "reset from error")
    await other.start()
    side = await other.create_context()
    await copies(other, side, 2, 2000, seed=10)

    await run
    assert await busy.state() == GSV.ACTIVE
    await copies(busy, cxt, 1, 100, seed=11)
    for card in cards:
        await card.stop()


@cocotb.test(timeout_time=400, timeout_unit="us")
async def mmio_of_one_function_never_reaches_the_other(dut):
    """Random writes all over function 1's BAR0 and BAR2 leave every register of function 0
    as it was. (Not CTL0 and the interrupt self-test: a state request or an interrupt with
    random pointers would send function 1's DMA to random addresses, which the root-complex
    model does not always answer.)"""
    tb, cards = await two_cards(dut)
    mine, theirs = cards
    # Not the engine's shared counters and TLB status, which every function reads.
    shared = ("IMPL_CYCLES", "IMPL_PERF_DECODE", "IMPL_PERF_TLB", "IMPL_PERF_WALK",
              "IMPL_TLB_INV")
    names = [r.name for r in BAR0_REGISTERS if r.name not in shared]
    before = {name: await mine.read_reg(name) for name in names}
    rng = random.Random(5)
    t = theirs.transport
    avoided = {REGISTERS_BY_NAME[n].offset for n in ("CTL0", "IMPL_MSIX_RAISE")}
    targets = [REGISTERS_BY_NAME[n].offset for n in names if n not in ("CTL0",)]
    for _ in range(300):
        if rng.random() < 0.8:
            offset = rng.choice(targets + [rng.randrange(MSIX_TABLE_OFFSET) & ~7])
            if offset not in avoided:
                await t.write(0, offset, rng.getrandbits(64), 64)
        else:
            await t.write(2, rng.randrange(tb.metadata["sdxi"]["contexts"]) * 4096,
                          rng.getrandbits(64), 64)
    after = {name: await mine.read_reg(name) for name in names}
    assert after == before
    assert await mine.state() == GSV.ACTIVE
    cxt = await mine.create_context()
    await copies(mine, cxt, 1, 500, seed=12)


@cocotb.test(timeout_time=400, timeout_unit="us")
async def each_function_interrupts_its_own_host(dut):
    """INTR descriptors on both functions at once: each raises its own function's MSI-X
    vector at its own host, none the other's."""
    tb, cards = await two_cards(dut)
    cxts = [await card.create_context(vector=3 + f) for f, card in enumerate(cards)]
    for card in cards:
        for vector in (3, 4):
            card.transport.clear_interrupt(vector)
    runs = [cocotb.start_soon(cxt.interrupt(1)) for cxt in cxts]
    await Combine(*runs)
    assert [run.result() for run in runs] == [True, True]
    for f, card in enumerate(cards):
        other = 4 - f
        assert not await card.transport.wait_interrupt(other, 2000), \
            f"function {f} got vector {other}, the other function's"
