"""Demo: bring the simulated SDXI card up the way Linux does, then copy and fill buffers
through a client context, copy between two processes' virtual address spaces, copy from one
function's process into another function's (two guests, through an RKey), and check every
byte."""

import random

from sdxi_defs.regmap import GSV


async def main(card, *others):
    t = card.transport
    print(f"[demo] found {t.identity} with {t.interrupt_vectors} MSI-X vectors")
    print(f"[demo] state before bring-up: {(await card.state()).name}")
    await card.start()
    state = await card.state()
    print(f"[demo] bring-up done: function {state.name}, admin context jump-started")
    print(await card.describe())
    if state != GSV.ACTIVE:
        raise SystemExit("demo failed: the function did not activate")

    cxt = await card.create_context(vector=1)
    print(f"[demo] context {cxt.id} created and started through the admin ring")
    failures = []
    size = 64 * 1024
    src, dst = t.alloc_dma(size), t.alloc_dma(size + 64)
    payload = random.Random(1).randbytes(size)
    src.write(0, payload)
    await cxt.mem_copy(dst.addr + 3, src.addr, size)
    ok = dst.read(3, size) == payload
    failures += [] if ok else ["copy"]
    print(f"[demo] mem_copy of {size} bytes: {'verified' if ok else 'WRONG'}")

    pattern = bytes(range(0xA0, 0xB0))
    await cxt.fill(dst.addr, pattern, 10_000)
    ok = dst.read(0, 10_000) == (pattern * 625)[:10_000]
    failures += [] if ok else ["fill"]
    print(f"[demo] fill of 10000 bytes with a 16-byte pattern: {'verified' if ok else 'WRONG'}")

    # Two processes' address spaces: a buffer in one copied into the other's, both virtual,
    # over pages scattered in physical memory; the engine walks both sets of page tables.
    # The sender submits through a context of its own, whose ring, status, write index and
    # completions are in its address space too.
    sender = await card.create_address_space(pasid=10)
    receiver = await card.create_address_space(pasid=11)
    user_cxt = await card.create_context(space=sender)
    print(f"[demo] context {user_cxt.id} created with its ring at PASID {sender.pasid} virtual "
          f"{user_cxt.mem.ring.addr:#x}")
    n = 40_000
    outbox = sender.map_buffer(0x7F12_3400_0000, 12 * 4096)
    inbox = receiver.map_buffer(0x5600_0000_0000, 12 * 4096)
    message = random.Random(2).randbytes(n)
    outbox.write(100, message)
    await user_cxt.copy_between(receiver, inbox.vaddr + 7, sender, outbox.vaddr + 100, n)
    ok = inbox.read(7, n) == message
    failures += [] if ok else ["copy between address spaces"]
    hits, walks, _ = await card.tlb_counters()
    print(f"[demo] copy of {n} bytes from PASID {sender.pasid} virtual {outbox.vaddr + 100:#x} to "
          f"PASID {receiver.pasid} virtual {inbox.vaddr + 7:#x}: "
          f"{'verified' if ok else 'WRONG'} ({walks} page walks, {hits} TLB hits)")

    if others:
        failures += await across_functions(card, others[0])

    ok = await cxt.interrupt(1)
    failures += [] if ok else ["interrupt"]
    print(f"[demo] INTR descriptor on vector 1: {'delivered' if ok else 'NOT delivered'}")

    for c in (user_cxt, cxt):
        await card.destroy_context(c)
        print(f"[demo] context {c.id} stopped and destroyed")
    await card.stop()
    print(f"[demo] function stopped: {(await card.state()).name}")
    if failures:
        raise SystemExit(f"demo failed: {', '.join(failures)}")


async def across_functions(card, guest2):
    """Two guests on two functions of the card, as SDXI's authors show it: guest 2 grants an
    RKey for one of its address spaces to guest 1's function; guest 1 makes the AKey that names
    it and copies across; guest 2 revokes it, and the next copy is refused."""
    from sdxi_defs.errors import ErrClass
    from sw.errors import SdxiOpError

    await guest2.start()
    print(f"[demo] guest 2's function {guest2.transport.identity} (sfunc {guest2.caps.sfunc}) "
          f"brought up beside guest 1's (sfunc {card.caps.sfunc})")
    space = await guest2.create_address_space(pasid=30)
    inbox = space.map_buffer(0x6000_0000_0000, 4 * 4096)
    key = await guest2.grant_rkey(card.caps.sfunc, space)
    print(f"[demo] guest 2 granted RKey {key.index} for its PASID {space.pasid} to sfunc "
          f"{card.caps.sfunc}")
    n = 10_000
    message = random.Random(3).randbytes(n)
    outbox = card.transport.alloc_dma(n)
    outbox.write(0, message)
    cxt = await card.create_context()
    await cxt.copy_between(key, inbox.vaddr + 5, None, outbox.addr, n)
    ok = inbox.read(5, n) == message
    print(f"[demo] guest 1 copied {n} bytes into guest 2's virtual {inbox.vaddr + 5:#x} through "
          f"AKey {cxt.akey_for(key)}: {'verified' if ok else 'WRONG'}")
    failures = [] if ok else ["copy across functions"]
    await guest2.revoke_rkey(key)
    try:
        await cxt.copy_between(key, inbox.vaddr, None, outbox.addr, n)
        refused = False
    except SdxiOpError as e:
        refused = [x.err_class for x in e.log] == [ErrClass.RKEY_INVALID]
    print(f"[demo] guest 2 revoked it; guest 1's next copy: "
          f"{'refused (RKEY_INVALID)' if refused else 'NOT refused'}")
    failures += [] if refused else ["revocation"]
    await card.destroy_context(cxt)
    await guest2.stop()
    return failures
