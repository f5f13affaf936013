"""Host memory, address spaces (of one PCIe function, or the same PASID in several) and a
table-reading memory model for the MMU unit tests."""

from sdxi_defs.page_tables import Fault, Level
from sw.address_space import AddressSpace, PageFault, PasidTable
from sw.transport import DmaBuffer

BASE = 0x4000_0000            # host memory at 1 GiB, so one 1 GiB page can map it all
SIZE = 16 << 20
VA = 0x10_0000                # where ``function_spaces`` maps its pages


class FlatMemory:
    """Host memory for unit tests: a bump allocator over one byte array."""

    def __init__(self, base=BASE, size=SIZE):
        self.base, self.bytes, self.next = base, bytearray(size), 0

    def alloc(self, size, align=4096):
        start = (self.next + align - 1) & ~(align - 1)
        if start + size > len(self.bytes):
            raise MemoryError("test memory exhausted")
        self.next = start + size
        return _Buffer(self, self.base + start, size)

    def qword(self, addr):
        off = addr - self.base
        if not 0 <= off <= len(self.bytes) - 8:
            return None
        return int.from_bytes(self.bytes[off:off + 8], "little")


class _Buffer(DmaBuffer):
    def __init__(self, mem, addr, size):
        self._mem, self.addr, self.size = mem, addr, size

    def read(self, offset, length):
        off = self.addr - self._mem.base + offset
        return bytes(self._mem.bytes[off:off + length])

    def write(self, offset, data):
        off = self.addr - self._mem.base + offset
        self._mem.bytes[off:off + len(data)] = data


def reference_walk(space, va, *, write=False, user=False):
    """(fault, level, physical address) of an access to ``va`` by the driver's reference
    walk; ``space`` None is a PASID without an address space."""
    if space is None:
        return Fault.NO_PASID, 0, None
    try:
        return Fault.NONE, None, space.translate(va, write=write, user=user)
    except PageFault as e:
        return e.fault, e.level, None


def build(mem, rng):
    """Two address spaces over scattered memory with every page size, a hole, read-only and
    supervisor pages, and an upper-level entry cleared; the walks to try, with the PASID."""
    spaces = [AddressSpace(mem.alloc, pasid) for pasid in (1, 5)]
    table = PasidTable(mem.alloc, 8)
    for s in spaces:
        table.bind(s)
    frames = [mem.alloc(4096) for _ in range(48)]
    rng.shuffle(frames)
    a, b = spaces
    for i, f in enumerate(frames[:32]):
        a.map(0x10_0000 + 4096 * i, f.addr, 4096, writable=i % 5 != 0, user=i % 7 != 0)
    a.unmap(0x10_0000 + 4096 * 9, 4096)
    big = mem.alloc(2 << 20, 2 << 20)
    a.map(0x4000_0000, big.addr, 2 << 20, page_size=2 << 20)
    b.map(0x8000_0000, BASE, 1 << 30, page_size=1 << 30, writable=False)
    for i, f in enumerate(frames[32:]):
        b.map(0x7FFF_F000_0000 + 4096 * i, f.addr, 4096)
    pdpt, i = b.entry(0x7FFF_F000_0000, Level.PDPT)      # cut one PD off below an upper level
    b.map(0x7FFF_C000_0000 - (1 << 30), frames[0].addr, 4096)
    pdpt.write_u64(8 * (i - 1), pdpt.read_u64(8 * (i - 1)) & ~1)
    walks = []
    for _ in range(150):
        space = rng.choice(spaces)
        kind = rng.random()
        if space is a:
            va = (0x10_0000 + rng.randrange(34 * 4096) if kind < 0.6 else
                  0x4000_0000 + rng.randrange(2 << 20) if kind < 0.9 else rng.getrandbits(47))
        else:
            va = (0x8000_0000 + rng.randrange(1 << 30) if kind < 0.4 else
                  0x7FFF_F000_0000 + rng.randrange(18 * 4096) if kind < 0.8 else
                  0x7FFF_C000_0000 - (1 << 30) if kind < 0.9 else rng.getrandbits(64))
        walks.append((space.pasid, va, space))
    walks += [(6, 0x1000, None), (9, 0x1000, None)]        # PASID not bound; past the table
    return table, walks


def function_spaces(pasid=5, pages=8):
    """The same PASID in PCIe functions 0 to 2, each in the function's own view of host
    memory (a ``FlatMemory`` each), mapping ``pages`` 4 KiB pages at ``VA`` to frames at
    different addresses in each. Functions 0 and 1 have every table at the same addresses (only
    their PTEs differ), function 2 has them elsewhere; function 3 has no PASID table (0
    entries). Return the memories, the PASID tables and the address spaces, by function."""
    mems, tables, spaces = {}, {}, {}
    for f, pad in [(0, 0), (1, 0), (2, 2 * 4096)]:
        mem = mems[f] = FlatMemory()
        if pad:
            mem.alloc(pad)
        tables[f] = PasidTable(mem.alloc, 8)
        spaces[f] = AddressSpace(mem.alloc, pasid)
        tables[f].bind(spaces[f])
        frames = [mem.alloc(4096) for _ in range(pages)]
        if f == 1:
            frames.reverse()
        for i, frame in enumerate(frames):
            spaces[f].map(VA + 4096 * i, frame.addr, 4096)
    return mems, tables, spaces


def set_pasid_tables(ctx, dut, tables):
    """Drive ``dut.pasid_table`` and ``dut.pasid_count`` from ``tables``: function 0's
    ``PasidTable``, or a dict of them by function; a function without one gets 0 entries."""
    if not isinstance(tables, dict):
        tables = {0: tables}
    for f in range(len(dut.pasid_table)):
        table = tables.get(f)
        ctx.set(dut.pasid_table[f], table.buffer.addr if table else 0)
        ctx.set(dut.pasid_count[f], table.count if table else 0)


def table_memory(dut, mem, rng, fail_addr, reads=None):
    """A testbench serving ``dut.read_addr`` / ``dut.read_data`` from ``mem`` (one
    ``FlatMemory`` every function sees, or a dict of each function's) with random stalls and
    latency; a read of ``fail_addr[0]`` or outside memory answers a bus error. Each read is
    appended to ``reads`` (if given) as (function, address)."""
    async def memory(ctx):
        while True:
            ready = rng.random() < 0.7
            ctx.set(dut.read_addr.ready, ready)
            _, _, valid, p = await ctx.tick().sample(dut.read_addr.valid,
                                                     dut.read_addr.payload)
            if valid and ready:
                addr = p.addr
                if reads is not None:
                    reads.append((p.function, addr))
                ctx.set(dut.read_addr.ready, 0)
                for _ in range(rng.randrange(4)):
                    await ctx.tick()
                view = mem.get(p.function) if isinstance(mem, dict) else mem
                value = view.qword(addr) if view is not None else None
                ctx.set(dut.read_data.payload.data, value or 0)
                ctx.set(dut.read_data.payload.error, value is None or addr == fail_addr[0])
                ctx.set(dut.read_data.valid, 1)
                await ctx.tick().until(dut.read_data.ready)
                ctx.set(dut.read_data.valid, 0)
    return memory


def run_bounded(sim, limit):
    """``sim.run()`` until the testbenches finish, failing if that takes longer than
    ``limit`` seconds of simulated time (a hung design fails instead of hanging)."""
    async def watchdog(ctx):
        await ctx.delay(limit)
        raise AssertionError(f"not finished after {limit * 1e6:.0f} us of simulated time")

    sim.add_testbench(watchdog, background=True)
    sim.run()


async def answer_lookups(ctx, ask, answer, rng, resolve, *, max_delay):
    """A TLB for a unit's ``translate``/``translated`` pair: one lookup at a time, answered
    1 to ``max_delay`` clocks after it is taken with ``resolve(vaddr) -> (fault, paddr)``."""
    pending, due = None, 0
    ctx.set(ask.ready, 1)
    async for _, _, valid, ready, p in ctx.tick().sample(ask.valid, ask.ready, ask.payload):
        ctx.set(answer.valid, 0)
        if pending is None and valid and ready:
            pending, due = p.vaddr, rng.randrange(1, max_delay + 1)
            ctx.set(ask.ready, 0)
        elif pending is not None:
            due -= 1
            if due == 0:
                fault, paddr = resolve(pending)
                ctx.set(answer.payload.fault, fault)
                ctx.set(answer.payload.paddr, paddr)
                ctx.set(answer.valid, 1)
                ctx.set(ask.ready, 1)
                pending = None
