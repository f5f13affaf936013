"""Address spaces the engine translates itself (AKey pv = 1): a PASID's x86-64 4-level page
tables in host memory, built as an operating system builds them, and the PASID table that
locates them. Formats: ``sdxi_defs/page_tables.py``; choices: docs/spec-choices.md.
"""

from sdxi_defs.page_tables import (ENTRY_BYTES, LEVELS, PAGE_SIZES, PASID_ENT, PTE, VA_BITS,
                                   Fault, Level, table_index)

from .transport import DmaBuffer


__all__ = ["AddressSpace", "PasidTable", "PageFault", "VirtualBuffer"]

TABLE_BYTES = 4096
HEAP_BASE = 0x7E00_0000_0000    #: where ``AddressSpace.allocate`` places its buffers


class PageFault(Exception):
    """A translation the engine must refuse: ``fault`` (``Fault``) at table ``level``."""

    def __init__(self, fault, level, vaddr):
        super().__init__(f"{fault.name} at level {int(level)} for {vaddr:#x}")
        self.fault, self.level, self.vaddr = fault, level, vaddr


class AddressSpace:
    """One PASID's page tables. Upper-level entries allow everything (present, writable,
    user), so a page's own entry decides its permissions, as Linux arranges it; leaves are
    written with the accessed and dirty bits set (the engine neither checks nor sets them).

    ``alloc(size, align)`` returns zeroed host memory (a ``DmaBuffer``); ``memory``, a
    ``DmaBuffer`` over all of host memory, lets ``VirtualBuffer`` reach the pages.
    """

    def __init__(self, alloc, pasid, memory=None):
        self.pasid = pasid
        self._alloc = alloc
        self._memory = memory
        self.root = alloc(TABLE_BYTES, TABLE_BYTES)
        self._tables = {self.root.addr: self.root}
        self._heap = HEAP_BASE

    # ---- building ----------------------------------------------------------------------------

    def map(self, vaddr, paddr, size, *, page_size=4096, writable=True, user=True):
        """Map ``size`` bytes at ``vaddr`` to ``paddr`` with pages of ``page_size``."""
        if page_size not in PAGE_SIZES:
            raise ValueError(f"page size {page_size} is not one of {sorted(PAGE_SIZES)}")
        if (vaddr | paddr | size) % page_size:
            raise ValueError(f"{vaddr:#x} -> {paddr:#x} ({size:#x} bytes) is not aligned to "
                             f"{page_size:#x}-byte pages")
        for off in range(0, size, page_size):
            table, index = self._walk_to(vaddr + off, PAGE_SIZES[page_size], create=True)
            table.write_u64(index * ENTRY_BYTES, self.leaf(paddr + off, PAGE_SIZES[page_size],
                                                           writable=writable, user=user))

    def map_buffer(self, vaddr, size, *, page_size=4096, writable=True, user=True):
        """Back ``size`` bytes at ``vaddr`` with newly allocated pages of ``page_size``, taken
        in reverse order so that neighbouring virtual pages are not neighbours in physical
        memory; return a ``VirtualBuffer`` over them."""
        pages = range(vaddr, vaddr + size, page_size)
        for page in reversed(pages):
            frame = self._alloc(page_size, page_size)
            self.map(page, frame.addr, page_size, page_size=page_size, writable=writable,
                     user=user)
        return VirtualBuffer(self, vaddr, size)

    def allocate(self, size, *, writable=True, user=True):
        """``size`` bytes of new memory on pages of their own (so that their permissions can
        be changed alone) at the next free address from ``HEAP_BASE``, as ``map_buffer``
        backs them."""
        pages = -(-size // TABLE_BYTES) * TABLE_BYTES
        vaddr, self._heap = self._heap, self._heap + pages
        self.map_buffer(vaddr, pages, writable=writable, user=user)
        return VirtualBuffer(self, vaddr, size)

    def unmap(self, vaddr, size, *, page_size=4096):
        """Clear the leaf entries of ``size`` bytes at ``vaddr`` (mapped with ``page_size``)."""
        for off in range(0, size, page_size):
            table, index = self._walk_to(vaddr + off, PAGE_SIZES[page_size], create=False)
            table.write_u64(index * ENTRY_BYTES, 0)

    def protect(self, vaddr, size, *, writable, user, page_size=4096):
        """Change the permissions of mapped pages."""
        for off in range(0, size, page_size):
            table, index = self._walk_to(vaddr + off, PAGE_SIZES[page_size], create=False)
            fields = PTE.decode(table.read(index * ENTRY_BYTES, ENTRY_BYTES))
            fields.update(rw=int(writable), us=int(user))
            table.write(index * ENTRY_BYTES, PTE.encode(**fields))

    def entry(self, vaddr, level):
        """The table buffer and index of ``vaddr``'s entry at ``level`` (which must exist),
        for a caller that edits entries directly."""
        return self._walk_to(vaddr, level, create=False)

    @staticmethod
    def leaf(paddr, level, *, writable=True, user=True):
        return int.from_bytes(PTE.encode(p=1, rw=int(writable), us=int(user), a=1, d=1,
                                         ps=int(level != Level.PT), addr=paddr >> 12), "little")

    def _walk_to(self, vaddr, leaf_level, *, create):
        table = self.root
        for level in LEVELS:
            index = table_index(vaddr, level)
            if level == leaf_level:
                return table, index
            e = PTE.decode(table.read(index * ENTRY_BYTES, ENTRY_BYTES))
            if not e["p"]:
                if not create:
                    raise KeyError(f"{vaddr:#x} is not mapped at level {int(level)}")
                new = self._alloc(TABLE_BYTES, TABLE_BYTES)
                self._tables[new.addr] = new
                table.write(index * ENTRY_BYTES, PTE.encode(p=1, rw=1, us=1, addr=new.addr >> 12))
                table = new
            elif e["ps"]:
                raise ValueError(f"{vaddr:#x} is inside a larger page (level {int(level)})")
            else:
                table = self._tables[e["addr"] << 12]
        raise AssertionError("unreachable")

    def read_physical(self, paddr, length):
        return self._memory.read(paddr - self._memory.addr, length)

    def write_physical(self, paddr, data):
        self._memory.write(paddr - self._memory.addr, data)

    # ---- the reference walk ------------------------------------------------------------------

    def translate(self, vaddr, *, write=False, user=True):
        """The physical address ``vaddr`` reaches, as the engine must find it; raise
        ``PageFault`` where it must refuse (docs/spec-choices.md, "Address spaces")."""
        top = vaddr >> (VA_BITS - 1)
        if top not in (0, (1 << (65 - VA_BITS)) - 1):
            raise PageFault(Fault.RESERVED, Level.PML4, vaddr)
        table, rw, us = self.root, 1, 1
        for level in LEVELS:
            e = PTE.decode(table.read(table_index(vaddr, level) * ENTRY_BYTES, ENTRY_BYTES))
            if not e["p"]:
                raise PageFault(Fault.NOT_PRESENT, level, vaddr)
            if level == Level.PML4 and e["ps"]:
                raise PageFault(Fault.RESERVED, level, vaddr)
            rw, us = rw & e["rw"], us & e["us"]
            if level == Level.PT or e["ps"]:
                if write and not rw:
                    raise PageFault(Fault.WRITE, level, vaddr)
                if user and not us:
                    raise PageFault(Fault.USER, level, vaddr)
                offset_bits = 12 + 9 * (level - 1)
                frame = (e["addr"] << 12) & ~((1 << offset_bits) - 1)
                return frame | (vaddr & ((1 << offset_bits) - 1))
            table = self._tables[e["addr"] << 12]
        raise AssertionError("unreachable")


class PasidTable:
    """The table the engine finds each PASID's root in: ``count`` entries of 8 bytes."""

    def __init__(self, alloc, count):
        self.count = count
        self.buffer = alloc(max(count * ENTRY_BYTES, TABLE_BYTES), TABLE_BYTES)

    def bind(self, space):
        self._check(space.pasid)
        self.buffer.write(space.pasid * ENTRY_BYTES,
                          PASID_ENT.encode(p=1, root=space.root.addr >> 12))

    def unbind(self, pasid):
        self._check(pasid)
        self.buffer.write(pasid * ENTRY_BYTES, bytes(ENTRY_BYTES))

    def _check(self, pasid):
        if not 0 <= pasid < self.count:
            raise ValueError(f"PASID {pasid} is outside a table of {self.count}")


class VirtualBuffer(DmaBuffer):
    """``size`` bytes at ``vaddr`` of an address space, read and written as the host sees them
    (through the page tables, whatever the pages' permissions); ``addr`` is ``vaddr``, the
    address the engine is given."""

    def __init__(self, space, vaddr, size):
        self.space, self.vaddr, self.size = space, vaddr, size
        self.addr = vaddr

    def _pieces(self, offset, length):
        if offset < 0 or offset + length > self.size:
            raise IndexError(f"{length} bytes at {offset:#x} outside a {self.size}-byte buffer")
        while length:
            va = self.vaddr + offset
            n = min(length, TABLE_BYTES - va % TABLE_BYTES)
            yield offset, self.space.translate(va, user=False), n
            offset += n
            length -= n

    def read(self, offset, length):
        return b"".join(self.space.read_physical(pa, n)
                        for _, pa, n in self._pieces(offset, length))

    def write(self, offset, data):
        for off, pa, n in self._pieces(offset, len(data)):
            self.space.write_physical(pa, data[off - offset:off - offset + n])
